"""The application: configuration, store, runner, clock, ids and registry, assembled in one place.

:func:`build_app` is the one assembly: the functions, every CLI command that runs, approves or
recovers runs, the continuous controller, dead-letter replay and the git hooks build their
application with it, and :func:`load_config` is how each of them (and ``make dev``) loads the
configuration: extra automations first, then the file, checked against the registry with each
automation's settings validated once into its Settings model.

A function's application (:func:`get_app`) is built lazily on first use, then cached for the
life of the instance, so a warm function reuses its configuration, store client and runner across
requests and a cold start pays only for what the first request needs.

Environment:
- ``CONFIG_PATH``: the YAML configuration (default: the built-in defaults).
- ``ORCHESTRA_STORE``: ``sqlite:///PATH`` or ``firestore://PROJECT[/DATABASE]`` (default: the
  configuration's ``store``).
- ``ORCHESTRA_EVENTS_TOPIC``: the Pub/Sub topic announcements are published to (default: the
  configuration's ``events.topic``; empty or unset in both: announcements are only logged). The
  application's announcer is installed as the process's (:func:`orchestra.announcements.install`),
  so breakers and plugins announce through it too.
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
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import ConfigError

if TYPE_CHECKING:
    from .announcements import Announcer, EventPublisher
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
    announcer: Announcer

    def close(self) -> None:
        self.announcer.close()
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


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    registry: Registry | None = None,
    extras: bool = True,
) -> Config:
    """The configuration every assembly uses: the file at ``path`` (else ``CONFIG_PATH``, else
    the built-in defaults), checked against the automations ``registry`` knows, each one's
    settings validated once into its Settings model (see :meth:`Config.settings_for`).

    The modules of ``ORCHESTRA_EXTRA_AUTOMATIONS`` are loaded first, since the configuration may
    name their automations; ``extras=False`` when the caller has loaded them already (the CLI
    does, for its command list). Raises :class:`ConfigError` listing every problem."""
    # Imported here: see the module docstring (the CLI's cold path imports this module).
    from .config import load_config as read_config
    from .config import resolve_config_path
    from .registry import registry as default_registry

    registry = registry or default_registry
    if extras:
        load_extra_automations(os.environ.get(EXTRA_AUTOMATIONS_ENV), registry)
    config = read_config(path, automations=registry)
    return registry.check_config(config, str(resolve_config_path(path)))


def build_app(
    *,
    config: Config | None = None,
    config_path: str | os.PathLike[str] | None = None,
    store: StateStore | None = None,
    store_url: str | None = None,
    clock: Clock | None = None,
    ids: IdSource | None = None,
    registry: Registry | None = None,
    progress: Callable[[str], None] | None = None,
    publisher: EventPublisher | None = None,
) -> App:
    """The one assembly of an application: the functions, every CLI command that runs, approves
    or recovers runs, the continuous controller, dead-letter replay and the git hooks build
    theirs here. Any part can be given instead of built:

    - ``config``: used as given (already loaded with :func:`load_config`, or built by a test;
      settings it did not validate are validated on first use); else :func:`load_config` of
      ``config_path``, which also loads the extra automations;
    - ``store``: else the store at ``store_url``, else ``ORCHESTRA_STORE``, else the
      configuration's;
    - ``clock`` / ``ids``: the system's by default (tests inject fakes);
    - ``registry``: the process-wide registry by default;
    - ``progress``: called with a short message as a run goes (the CLI's status line);
    - ``publisher``: where announcements are published besides the log (tests); else Pub/Sub
      when an events topic is configured, else none."""
    # Imported here, not at the top: the CLI imports this module on every invocation (for
    # load_config and the extra automations) and must not pay for the runner and the store.
    from .announcements import build_announcer, install
    from .clock import RandomIds, SystemClock
    from .registry import registry as default_registry
    from .runner import Runner
    from .store import open_store
    from .store import store_url as configured_store_url

    registry = registry or default_registry
    if config is None:
        config = load_config(config_path, registry=registry)
    store = store or open_store(store_url or configured_store_url(config.store))
    clock = clock or SystemClock()
    ids = ids or RandomIds()
    announcer = build_announcer(config.events, clock=clock, ids=ids, publisher=publisher)
    install(announcer)
    runner = Runner(
        config, store, clock=clock, ids=ids, registry=registry, progress=progress, announcer=announcer
    )
    return App(
        config=config,
        store=store,
        runner=runner,
        clock=clock,
        ids=ids,
        registry=registry,
        announcer=announcer,
    )


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
