"""The runner's ``noop`` test automation as an operator plugin (ORCHESTRA_EXTRA_AUTOMATIONS), for
tests that drive the `orchestra` command in a separate process. Only ``noop``: it takes no
required parameter, so `run all` can run it."""

from __future__ import annotations

from orchestra.registry import Registry

from tests.runner.automations import Noop


def register(registry: Registry) -> None:
    registry.register(Noop)
