"""Registry of automations: name -> plugin class, imported only when first used.

Automations are discovered through the ``orchestra.automations`` entry-point group: every
installed distribution may declare ``name = "module:Class"`` there (the built-ins are declared by
this package's own ``pyproject.toml``). Discovery reads distribution metadata only; a plugin's
module is imported the first time its class is needed. That keeps the functions' cold start
small: a function that only records dead letters never imports numpy or git helpers.

Which event kinds a plugin handles is declared beside it, in the ``orchestra.handles`` group, so
the registry can answer "who handles ``run_finished``?" (asked whenever a run finishes) without
importing every plugin:

- ``"<name>.<kind>" = "module:Class"`` declares that automation ``<name>`` handles ``<kind>`` (an
  :class:`~orchestra.automation.EventKind` value), one entry per kind;
- ``"<name>" = "module:Class"`` declares an automation that handles no event kind.

The value must be the automation's own ``orchestra.automations`` value; a declaration that names
another class is ignored. The class's ``handles`` stays the truth: a declared handler is imported
and asked, and an automation without any declaration is imported to learn its kinds, as before.

A kind's declaration may add a precondition on the automation's own configuration:
``"<name>.<kind> if <path>"``, where ``<path>`` is dotted into ``automations.<name>`` of the
configuration (``*`` for every key of a mapping or item of a list), e.g.
``"gate.run_finished if settings.environments.*.required_checks"``. While no value at the
path is set and non-empty, the automation is neither imported nor asked about events of that kind
(:meth:`Registry.handlers` given the configuration): the declaration promises that its handler
would ignore them then. A malformed precondition makes the whole entry unreadable, so the
automation is imported to learn its kinds, as without a declaration.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib
import logging
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib.metadata import EntryPoints, entry_points
from typing import TYPE_CHECKING, Any, Protocol

from .automation import (
    Automation,
    BreachEvent,
    Collection,
    EventContext,
    EventKind,
    EventOutcome,
    RunFinished,
)
from .errors import ConfigError, InputError, UnknownTaskError, is_transient
from .inputs import Origin
from .models import TERMINAL_STATUSES, EventRecord, Mode, Run, safe_doc_id

if TYPE_CHECKING:
    from pydantic import BaseModel

    from .config import Config
    from .runner import Runner, RunRequest

ENTRY_POINT_GROUP = "orchestra.automations"
HANDLES_GROUP = "orchestra.handles"
_KINDS = {kind.value: kind for kind in EventKind}
_CONDITION = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*(\.([A-Za-z_][A-Za-z0-9_-]*|\*))*")


class Installed(Protocol):
    """Every installed entry point, read once (``importlib.metadata.entry_points()``)."""

    def select(self, *, group: str) -> EntryPoints: ...


def discover(group: str = ENTRY_POINT_GROUP, installed: Installed | None = None) -> dict[str, str]:
    """name -> "module:Class" for every entry point of ``group`` in the installed distributions
    (or in ``installed``, every entry point read once for several groups).

    Sorted by name (installers do not keep the declared order); when two distributions declare
    the same name, the first one found on ``sys.path`` wins, as for any import."""
    found: dict[str, str] = {}
    for ep in _select(group, installed):
        found.setdefault(ep.name, ep.value)
    return dict(sorted(found.items()))


@dataclass(frozen=True)
class Declaration:
    """What an automation's distribution declares it handles, without importing it, and the
    precondition (a dotted path into its configuration) under which it handles a kind."""

    path: str
    kinds: frozenset[EventKind]
    conditions: tuple[tuple[EventKind, str], ...] = ()

    def condition(self, kind: EventKind) -> str | None:
        return next((path for k, path in self.conditions if k == kind), None)


def parse_declaration(entry: str) -> tuple[str, EventKind | None]:
    """``"<name>.<kind>"`` -> (name, kind); a name not ending in a known kind -> (name, None)."""
    name, dot, suffix = entry.rpartition(".")
    if dot and name and suffix in _KINDS:
        return name, _KINDS[suffix]
    return entry, None


def split_condition(entry: str) -> tuple[str, str | None]:
    """``"<name>.<kind> if <path>"`` -> (``"<name>.<kind>"``, path); an entry without `` if `` ->
    (entry, None). A malformed path leaves the entry whole (it then names no automation)."""
    head, sep, path = entry.partition(" if ")
    if not sep:
        return entry, None
    path = path.strip()
    if not _CONDITION.fullmatch(path):
        return entry, None
    return head.strip(), path


def condition_holds(root: object, path: str) -> bool:
    """Whether some value at dotted ``path`` under ``root`` (attributes of an object, keys of a
    mapping; ``*`` every value of a mapping or item of a list) is set and non-empty."""
    values: list[object] = [root]
    for part in path.split("."):
        found: list[object] = []
        for value in values:
            if part == "*":
                if isinstance(value, dict):
                    found.extend(value.values())
                elif isinstance(value, list | tuple):
                    found.extend(value)
            elif isinstance(value, dict):
                if part in value:
                    found.append(value[part])
            elif not isinstance(value, list | tuple | str | int | float | bool) and value is not None:
                found.append(getattr(value, part, None))
        values = found
    return any(v not in (None, False, "", [], {}) for v in values)


def _select(group: str, installed: Installed | None) -> EntryPoints:
    return entry_points(group=group) if installed is None else installed.select(group=group)


def discover_declarations(
    group: str = HANDLES_GROUP, installed: Installed | None = None
) -> dict[str, Declaration]:
    """automation name -> the event kinds its distribution declares in ``group`` (see the module
    docstring). Reads distribution metadata only (or ``installed``, as for :func:`discover`)."""
    paths: dict[str, str] = {}
    kinds: dict[str, set[EventKind]] = {}
    conditions: dict[str, dict[EventKind, str]] = {}
    for ep in _select(group, installed):
        entry, condition = split_condition(ep.name)
        name, kind = parse_declaration(entry)
        # As for the automations themselves: the first distribution on sys.path wins.
        if paths.setdefault(name, ep.value) != ep.value:
            continue
        declared = kinds.setdefault(name, set())
        if kind is not None:
            declared.add(kind)
            if condition is not None:
                conditions.setdefault(name, {})[kind] = condition
    return {
        name: Declaration(
            paths[name],
            frozenset(kinds[name]),
            tuple(sorted(conditions.get(name, {}).items())),
        )
        for name in sorted(paths)
    }


class Registry:
    """Automations known by name.

    ``Registry()`` discovers them from entry points (on first use), with the event kinds their
    distributions declare; ``Registry({...})`` knows exactly the given ``name -> "module:Class"``
    paths (tests, embedding), and the kinds in ``declarations`` if given (else it imports a plugin
    to learn its kinds)."""

    def __init__(
        self, paths: dict[str, str] | None = None, declarations: dict[str, Declaration] | None = None
    ) -> None:
        self._paths: dict[str, str] | None = dict(paths) if paths is not None else None
        self._declarations: dict[str, Declaration] | None = (
            dict(declarations) if declarations is not None else None if paths is None else {}
        )
        self._classes: dict[str, type[Automation]] = {}
        self._registered: set[str] = set()
        self._handlers: dict[EventKind, list[type[Automation]]] = {}
        self._approvable: list[type[Automation]] | None = None

    def _discover(self) -> None:
        """Read the installed distributions' entry points once for both groups (each read scans
        every distribution's metadata: a few ms of a fresh instance's first response)."""
        installed = entry_points()
        if self._paths is None:
            self._paths = discover(installed=installed)
        if self._declarations is None:
            self._declarations = discover_declarations(installed=installed)

    def _known_paths(self) -> dict[str, str]:
        if self._paths is None:
            self._discover()
            assert self._paths is not None
        return self._paths

    def _declaration(self, name: str) -> Declaration | None:
        if self._declarations is None:
            self._discover()
            assert self._declarations is not None
        found = self._declarations.get(name)
        if found is None or found.path != self._known_paths().get(name):
            return None
        return found

    def declared_kinds(self, name: str) -> frozenset[EventKind] | None:
        """The event kinds ``name``'s distribution declares it handles, or None when it declares
        nothing (or declares another class than the one this registry would import)."""
        found = self._declaration(name)
        return None if found is None else found.kinds

    def declared_condition(self, name: str, kind: EventKind) -> str | None:
        """The precondition ``name``'s distribution declares for handling ``kind`` (a dotted path
        into ``automations.<name>`` of the configuration), or None: unconditional, or a class
        registered in place of the declared one."""
        if name in self._registered:
            return None
        found = self._declaration(name)
        return None if found is None else found.condition(kind)

    def may_handle(self, name: str, kind: EventKind, config: Config) -> bool:
        """False when ``name`` declares a precondition for ``kind`` that ``config`` does not meet
        (nothing set at its path under ``automations.<name>``); True otherwise. Never imports."""
        condition = self.declared_condition(name, kind)
        return condition is None or condition_holds(config.automation(name), condition)

    def register(self, cls: type[Automation]) -> type[Automation]:
        self._classes[cls.name] = cls
        self._registered.add(cls.name)
        self._handlers.clear()
        self._approvable = None
        return cls

    def unregister(self, name: str) -> None:
        self._classes.pop(name, None)
        self._registered.discard(name)
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

    def handlers(self, kind: EventKind, config: Config | None = None) -> list[type[Automation]]:
        """Every automation that handles events of ``kind``, by name.

        Imports only the plugins that are already loaded, that declare ``kind`` or that declare
        nothing; each imported one answers with its class's ``handles``. The answer is kept for the
        registry's life (until a plugin is registered or unregistered). Given ``config``, the
        automations whose declared precondition for ``kind`` it does not meet are left out, and
        not imported to answer."""
        if kind in self._handlers:
            found = list(self._handlers[kind])
            return found if config is None else [c for c in found if self.may_handle(c.name, kind, config)]
        names = self.names()
        if config is not None:
            names = [name for name in names if self.may_handle(name, kind, config)]
        found = [cls for name in names if (cls := self._handler_class(name, kind)) is not None]
        if config is None:
            self._handlers[kind] = found
        return list(found)

    def _handler_class(self, name: str, kind: EventKind) -> type[Automation] | None:
        """``name``'s class if it handles ``kind`` (imported unless its declaration rules it out)."""
        declared = None if name in self._classes else self.declared_kinds(name)
        if declared is not None and kind not in declared:
            return None
        cls = self.get_class(name)
        if cls is None:
            return None
        if declared is not None and declared != cls.handles:
            log.warning(
                "automation %s declares it handles %s in its %s entry points, but its "
                "class handles %s: the class is followed; correct the declaration",
                name,
                sorted(k.value for k in declared),
                HANDLES_GROUP,
                sorted(k.value for k in cls.handles),
            )
        return cls if kind in cls.handles else None

    def handler(self, kind: EventKind) -> type[Automation] | None:
        """The first automation by name that handles events of ``kind``, or None: for kinds one
        plugin answers (a breach asks for one focused run)."""
        found = self.handlers(kind)
        return found[0] if found else None

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
        for name, auto in config.automations.items():
            plugin = self.get_class(name)
            if plugin is None:
                accepted = ", ".join(self.names()) or "none registered"
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


# ------------------------------------------------------------------------------ dispatch

log = logging.getLogger("orchestra.registry")


@dataclass
class Dispatched:
    """What one handler did with an event: its outcome and the runs the core submitted for it,
    or the error it (or one of its runs' submission) raised."""

    name: str
    outcome: EventOutcome | None = None
    runs: list[Run] = field(default_factory=list)
    duplicates: int = 0
    error: Exception | None = None

    @property
    def transient(self) -> bool:
        return self.error is not None and is_transient(self.error)

    @property
    def status(self) -> str:
        """accepted, duplicate, ignored, rejected (the event or a run it asked for is bad input)
        or failed."""
        if self.error is not None:
            return "rejected" if isinstance(self.error, InputError) else "failed"
        assert self.outcome is not None
        if self.runs and self.duplicates == len(self.runs):
            return "duplicate"
        return self.outcome.status

    @property
    def reason(self) -> str:
        if self.error is not None:
            return f"{type(self.error).__name__}: {self.error}"
        assert self.outcome is not None
        if self.runs and self.duplicates == len(self.runs):
            return "already handled: " + ", ".join(f"run {r.id} is {r.status.value}" for r in self.runs)
        runs = ", ".join(f"run {r.id} {r.status.value}" for r in self.runs)
        if self.outcome.reason:
            return f"{self.outcome.reason} ({runs})" if runs else self.outcome.reason
        return runs or f"{self.name}: {self.outcome.status}"

    def describe(self) -> dict[str, Any]:
        """For the event record: what this handler did."""
        out: dict[str, Any] = {"status": self.status, "reason": self.reason[:1000]}
        if self.runs:
            out["run_ids"] = [r.id for r in self.runs]
        if self.error is not None:
            out["transient"] = self.transient
        return out


def dispatch(
    registry: Registry, runner: Runner, kind: EventKind, event: BaseModel, ctx: EventContext
) -> list[Dispatched]:
    """Hand ``event`` to every automation that handles ``kind`` (by name), then submit the runs
    they ask for (an automation whose declared precondition for ``kind`` the configuration does
    not meet is not asked, nor imported). Every handler is asked before any run starts, so work a handler records itself
    (a deployment request) exists when another handler's run ends. One handler failing is kept in
    its :class:`Dispatched` and never stops the others."""
    done: list[Dispatched] = []
    for plugin in registry.handlers(kind, ctx.config):
        item = Dispatched(plugin.name)
        try:
            item.outcome = plugin.handle_event(kind, event, ctx)
        except Exception as exc:  # noqa: BLE001 - recorded per handler; the others go on
            log.warning("%s could not handle a %s event: %s", plugin.name, kind, exc)
            item.error = exc
        done.append(item)
    for item in done:
        if item.outcome is None:
            continue
        requests = [r for r in (item.outcome.request, *item.outcome.requests) if r is not None]
        for request in requests:
            try:
                submitted = runner.submit(request)
            except Exception as exc:  # noqa: BLE001 - recorded per handler; the others go on
                log.warning("%s: run %s for a %s event not submitted: %s", item.name, request.task, kind, exc)
                item.error = item.error or exc
                continue
            item.runs.append(submitted.run)
            item.duplicates += int(submitted.duplicate)
    return done


_announcing = threading.local()
MAX_ANNOUNCE_DEPTH = 3


def announce_run_finished(runner: Runner, run: Run) -> list[Dispatched]:
    """Tell the automations that handle :attr:`EventKind.run_finished` that ``run`` ended, submit
    the runs they ask for, and record an event (``runner:run-finished:<run id>``) when one of them
    acted or failed. A run that failed transiently (it will be retried) is not announced.

    Never raises: the finished run's outcome stands whatever its listeners do. Runs started by a
    listener are announced in turn, up to a few levels deep."""
    if run.status not in TERMINAL_STATUSES or (run.error is not None and run.error.transient):
        return []
    depth = getattr(_announcing, "depth", 0)
    if depth >= MAX_ANNOUNCE_DEPTH:
        log.warning("run %s finished %d announcements deep: not announced", run.id, depth)
        return []
    _announcing.depth = depth + 1
    try:
        event = RunFinished(
            run_id=run.id,
            task=run.task,
            status=run.status.value,
            environment=run.environment,
            trigger_kind=run.trigger_kind.value,
            trigger_id=run.trigger_id,
        )
        ctx = EventContext(
            config=runner.config,
            store=runner.store,
            clock=runner.clock,
            ids=runner.ids,
            source_event=f"run:{run.id}",
        )
        done = dispatch(runner.registry, runner, EventKind.run_finished, event, ctx)
        if any(d.status != "ignored" for d in done):
            _record_announcement(runner, run, done)
        return done
    except Exception as exc:  # noqa: BLE001 - a listener never changes the finished run
        log.warning("announcing the end of run %s failed: %s", run.id, exc, extra={"run_id": run.id})
        return []
    finally:
        _announcing.depth = depth


def _record_announcement(runner: Runner, run: Run, done: list[Dispatched]) -> None:
    now = runner.clock.now()
    key = f"run-finished:{run.id}"
    acted = [d for d in done if d.status != "ignored"]
    record = EventRecord(
        # The id an event record of this source and key has (orchestra.events.records.record_id).
        id=safe_doc_id(f"runner:{key}"),
        source="runner",
        event_id=key,
        kind="run-finished",
        status="accepted" if any(d.status == "accepted" for d in acted) else acted[0].status,
        reason="; ".join(f"{d.name}: {d.reason}" for d in acted)[:2000],
        run_ids=[r.id for d in done for r in d.runs],
        received_at=now,
        payload={
            "run_id": run.id,
            "task": run.task,
            "status": run.status.value,
            "handlers": {d.name: d.describe() for d in done},
        },
        expires_at=now + dt.timedelta(days=runner.config.runner.retention.events_days),
    )
    runner.store.save_event(record)
