"""An operator's plugin module, loaded through ORCHESTRA_EXTRA_AUTOMATIONS."""

from orchestra.registry import Registry

from tests.runner.automations import Noop


def register(registry: Registry) -> None:
    registry.register(Noop)
