"""Registry of automations: name -> plugin class, imported only when first used.

Automations are discovered through the ``orchestra.automations`` entry-point group: every
installed distribution may declare ``name = "module:Class"`` there (the built-ins are declared by
this package's own ``pyproject.toml``). Discovery reads distribution metadata only; a plugin's
module is imported the first time its class is needed. That keeps the functions' cold start
small: a function that only records dead letters never imports numpy or git helpers.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Iterator
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from .automation import Automation, BreachEvent, Collection, EventKind
from .errors import ConfigError, UnknownTaskError
from .inputs import Origin
from .models import Mode

if TYPE_CHECKING:
    from .config import Config
    from .runner import RunRequest

ENTRY_POINT_GROUP = "orchestra.automations"


def discover(group: str = ENTRY_POINT_GROUP) -> dict[str, str]:
    """name -> "module:Class" for every entry point of ``group`` in the installed distributions.

    Sorted by name (installers do not keep the declared order); when two distributions declare
    the same name, the first one found on ``sys.path`` wins, as for any import."""
    found: dict[str, str] = {}
    for ep in entry_points(group=group):
        found.setdefault(ep.name, ep.value)
    return dict(sorted(found.items()))


class Registry:
    """Automations known by name.

    ``Registry()`` discovers them from entry points (on first use); ``Registry({...})`` knows
    exactly the given ``name -> "module:Class"`` paths (tests, embedding)."""

    def __init__(self, paths: dict[str, str] | None = None) -> None:
        self._paths: dict[str, str] | None = dict(paths) if paths is not None else None
        self._classes: dict[str, type[Automation]] = {}
        self._handlers: dict[EventKind, type[Automation] | None] = {}
        self._approvable: list[type[Automation]] | None = None

    def _known_paths(self) -> dict[str, str]:
        if self._paths is None:
            self._paths = discover()
        return self._paths

    def register(self, cls: type[Automation]) -> type[Automation]:
        self._classes[cls.name] = cls
        self._handlers.clear()
        self._approvable = None
        return cls

    def unregister(self, name: str) -> None:
        self._classes.pop(name, None)
        self._handlers.clear()
        self._approvable = None
        self._known_paths().pop(name, None)

    def names(self) -> list[str]:
        """Every known name, sorted."""
        return sorted(set(self._known_paths()) | set(self._classes))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (name in self._classes or name in self._known_paths())

    def get_class(self, name: str) -> type[Automation] | None:
        if name in self._classes:
            return self._classes[name]
        path = self._known_paths().get(name)
        if path is None:
            return None
        module_name, _, attr = path.partition(":")
        # A plugin that does not import is an installation problem, not the caller's: it is
        # raised as is (the functions then let the platform redeliver).
        cls = getattr(importlib.import_module(module_name), attr)
        self._classes[name] = cls
        return cls

    def classes(self) -> Iterator[type[Automation]]:
        """Every known plugin class, importing each (only for whole-registry questions)."""
        for name in self.names():
            cls = self.get_class(name)
            if cls is not None:
                yield cls

    def handler(self, kind: EventKind) -> type[Automation] | None:
        """The automation that handles events of ``kind`` (the first by name), or None.

        Imports plugins until one declares the kind; the answer is kept for the registry's life."""
        if kind not in self._handlers:
            self._handlers[kind] = next((c for c in self.classes() if kind in c.handles), None)
        return self._handlers[kind]

    def approvable(self) -> list[type[Automation]]:
        """The automations that declare approvable subjects (imports every plugin once; the
        answer is kept for the registry's life)."""
        if self._approvable is None:
            self._approvable = [c for c in self.classes() if c.approvable]
        return self._approvable

    def approvable_kinds(self) -> list[str]:
        """Every approvable subject kind the plugins declare, in registry order."""
        return [kind for cls in self.approvable() for kind in cls.approvable]

    def collections(self) -> list[Collection]:
        """The store collections every known automation declares (imports each plugin)."""
        return [c for cls in self.classes() for c in cls.collections]

    def create(self, name: str) -> Automation:
        cls = self.get_class(name)
        if cls is None:
            raise UnknownTaskError(
                f"unknown automation {name!r}; accepted: {', '.join(self.names()) or 'none registered'}",
                where="task",
            )
        return cls()

    def check_config(self, config: Config, source: str = "<config>") -> Config:
        """Check ``config.automations`` against the automations this registry knows, once: each
        key must name one, and its settings become that automation's typed Settings model, held
        by the configuration (:meth:`Config.settings_for`). Returns ``config``.

        Imports the plugins the configuration lists (not the others). Raises
        :class:`ConfigError` listing every problem as ``automations.<name>...: what is wrong``."""
        # Here, not at the top: loading a plugin (a function's cold start) must not load the
        # configuration's parsers (YAML, cron).
        from .config import check_cron, printable

        problems: list[str] = []
        accepted = ", ".join(self.names()) or "none registered"
        for name, auto in config.automations.items():
            plugin = self.get_class(name)
            if plugin is None:
                problems.append(f"automations.{name}: unknown automation {name!r}; accepted: {accepted}")
                continue
            try:
                config.settings_for(name, plugin.Settings)
            except ConfigError as exc:
                problems.extend(exc.problems)
            if not auto.schedule and plugin.default_schedule:
                try:
                    check_cron(plugin.default_schedule)
                except ValueError as exc:
                    problems.append(
                        f"automations.{name}.schedule: the automation's default schedule is {exc}"
                    )
        if problems:
            raise ConfigError(source, [printable(p) for p in problems])
        return config


registry = Registry()

# ------------------------------------------------------------------------------ breaches

NO_BREACH_HANDLER = "no registered automation handles threshold breaches"


def breach_request(
    registry: Registry,
    config: Config,
    event: BreachEvent,
    *,
    mode: Mode = Mode.apply,
    automation_level: int | None = None,
    origin: Origin = Origin.remote,
    extra_params: dict[str, Any] | None = None,
) -> RunRequest | None:
    """Threshold breach -> the focused run the automation that handles breaches asks for.

    The one translator for both places a breach comes from: a Cloud Monitoring incident
    (:mod:`orchestra.events.alerts`) and the continuous controller's metrics watch
    (:mod:`orchestra.continuous`). None when no automation handles breaches or the handler asks
    for nothing. ``extra_params`` (a local trigger's input files) come first: the handler's own
    parameters win."""
    plugin = registry.handler(EventKind.breach)
    if plugin is None:
        return None
    request = plugin.request_for_event(EventKind.breach, event, config)
    if request is None:
        return None
    return dataclasses.replace(
        request,
        mode=mode,
        automation_level=automation_level,
        origin=origin,
        params={**(extra_params or {}), **request.params},
    )
