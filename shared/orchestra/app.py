"""The process-wide application a Cloud Function (or any long-lived process) works with.

Built lazily on first use, then cached for the life of the instance, so a warm function reuses
its configuration, store client and runner across requests and a cold start pays only for what
the first request needs.

Environment:
- ``CONFIG_PATH``: the YAML configuration (default: the built-in defaults).
- ``ORCHESTRA_STORE``: ``sqlite:///PATH`` or ``firestore://PROJECT[/DATABASE]`` (default: the
  configuration's ``store``).
- ``ORCHESTRA_EXTRA_AUTOMATIONS``: comma-separated module names imported before the first run,
  for automations that are not installed distributions (installed ones are found through the
  ``orchestra.automations`` entry points, see :mod:`orchestra.registry`). A listed module either
  registers its plugin classes when imported (``orchestra.registry.registry.register(MyAutomation)``)
  or defines ``register(registry)``, which is called with the registry this application uses. The
  module must be importable from the function's source (e.g. shipped beside ``main.py``).

A failure to build the application (bad configuration, unusable store URL, a plugin that does not
import) is raised to the caller: it is not the fault of the event being handled, so event
functions let the platform redeliver instead of recording the event as rejected.
"""

from __future__ import annotations

import importlib
import os
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import ConfigError

if TYPE_CHECKING:
    from .clock import Clock, IdSource
    from .config import Config
    from .registry import Registry
    from .runner import Runner
    from .store import StateStore

EXTRA_AUTOMATIONS_ENV = "ORCHESTRA_EXTRA_AUTOMATIONS"


@dataclass
class App:
    config: Config
    store: StateStore
    runner: Runner
    clock: Clock
    ids: IdSource
    registry: Registry

    def close(self) -> None:
        self.store.close()


_lock = threading.Lock()
_app: App | None = None


def load_extra_automations(spec: str | None, registry: Registry) -> list[str]:
    """Import the modules named in ``spec`` (comma-separated); returns their names."""
    loaded: list[str] = []
    for raw in (spec or "").split(","):
        name = raw.strip()
        if not name:
            continue
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            raise ConfigError(
                EXTRA_AUTOMATIONS_ENV,
                [f"{name}: cannot import ({exc}); give importable module names separated by commas"],
            ) from None
        hook = getattr(module, "register", None)
        if callable(hook):
            hook(registry)
        loaded.append(name)
    return loaded


def build_app(
    *,
    config: Config | None = None,
    store: StateStore | None = None,
    clock: Clock | None = None,
    ids: IdSource | None = None,
    registry: Registry | None = None,
) -> App:
    """Assemble an application from the environment; any part can be given instead (tests)."""
    # Imported here so that the CLI, which only needs load_extra_automations from this module
    # on every invocation, does not pay for the runner and the store.
    from .clock import RandomIds, SystemClock
    from .config import load_config
    from .registry import registry as default_registry
    from .runner import Runner
    from .store import open_store, store_url

    registry = registry or default_registry
    load_extra_automations(os.environ.get(EXTRA_AUTOMATIONS_ENV), registry)
    config = config or load_config(None)
    store = store or open_store(store_url(config.store))
    clock = clock or SystemClock()
    ids = ids or RandomIds()
    runner = Runner(config, store, clock=clock, ids=ids, registry=registry)
    return App(config=config, store=store, runner=runner, clock=clock, ids=ids, registry=registry)


def get_app() -> App:
    """The cached application of this process, built on first call."""
    global _app
    current = _app
    if current is not None:
        return current
    with _lock:
        if _app is None:
            from .logs import configure_logging

            configure_logging()
            _app = build_app()
        return _app


def set_app(app: App | None) -> App | None:
    """Replace the cached application (tests, embedding); returns the previous one."""
    global _app
    with _lock:
        previous, _app = _app, app
    return previous


def reset_app() -> None:
    """Drop the cached application and close its store; the next ``get_app`` rebuilds it."""
    previous = set_app(None)
    if previous is not None:
        previous.close()
