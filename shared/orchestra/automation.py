"""The automation plugin contract.

An automation is a named plugin with a settings model (from the config file), a parameter model
(from the trigger), an ``analyze`` step that returns findings and proposed actions, and, for each
action kind it proposes, ``prepare`` / ``apply`` / ``verify`` / ``rollback``. The runner owns
everything else: dedupe, leases, retries, breakers, gates, recording.

Actions are stored as data (``kind`` + ``params`` + ``rollback``) so that a different process can
finish or undo them after a crash: handlers must work from the stored action alone.

A plugin also brings what the core would otherwise have to know about it, all optional:

- ``default_schedule`` / ``default_environments``: used when ``automations.<name>`` in the
  configuration sets no ``schedule`` / ``environments``;
- ``schedule_blocker()``: why a scheduled run cannot succeed where schedules are derived for (the
  cloud, or the continuous controller here), so that no schedule is created that fails every time;
- ``cli()``: a click command or group mounted under ``orchestra``;
- ``handles`` + ``request_for_event()`` / ``handle_event()``: the :class:`EventKind` s the
  plugin turns into runs or requests (a GitHub push, a threshold breach, the end of a run); a
  push and a finished run go to every plugin that handles them (``registry.dispatch``), a
  breach to the first by name;
- ``collections``: store collections the plugin writes, with their retention, so that the
  store's expiry sweep and Firestore's TTL policies cover them;
- ``health_checks()``: extra checks for ``orchestra health`` and the controller's ``/healthz``;
- ``approvable`` + ``decide()``: kinds of subject the plugin keeps waiting for a person (a
  deployment), so that ``orchestra approve|reject ID`` and ``POST /approvals/{id}`` reach them
  as they reach runs, through the one approval rule of :mod:`orchestra.approvals`.
- ``run_view()``: sections (tables, charts as data) for the console's page of one of its runs;
- ``environment_gates()``: for a plugin with approvable subjects, the time gates they wait for in
  an environment (a deployment window: open or not, and its next opening), for the console.

Plugins are discovered through the ``orchestra.automations`` entry-point group (see
:mod:`orchestra.registry`).
"""

from __future__ import annotations

import datetime as dt
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .models import Action, Finding, VerificationOutcome

if TYPE_CHECKING:
    import click

    from .approvals import Decided, DecisionRequest
    from .clock import Clock, IdSource
    from .config import Config, EnvironmentConfig
    from .console.views import RunView
    from .health import Check
    from .models import Run
    from .runner import RunRequest
    from .store.base import StateStore


T = TypeVar("T")
ScheduleTarget = Literal["cloud", "local"]
"""Where derived schedules run: ``cloud`` (Cloud Scheduler jobs calling the functions, which have no
working copy) or ``local`` (the continuous controller or ``make dev`` in its working directory)."""
SettingsT = TypeVar("SettingsT", bound=BaseModel)
ParamsT = TypeVar("ParamsT", bound=BaseModel)


class NoSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)


class Analysis(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    findings: list[Finding] = Field(default_factory=list)
    actions: list[Action] = Field(default_factory=list)
    summary: dict[str, Any] = Field(default_factory=dict, description="automation-specific report")


class Verification(BaseModel):
    """What ``verify`` found: ``passed``, ``failed`` or ``inconclusive`` (nothing worse, but nothing
    proves the change yet, e.g. no samples after it). ``Verification(ok=True|False)`` still reads as
    passed / failed; give ``outcome`` for inconclusive. ``ok`` is True only for passed."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    ok: bool = False
    outcome: VerificationOutcome = VerificationOutcome.failed
    evidence: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _one_meaning(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        ok, outcome = data.get("ok"), data.get("outcome")
        if outcome is None:
            data["outcome"] = VerificationOutcome.passed if ok else VerificationOutcome.failed
        elif ok is None:
            data["ok"] = VerificationOutcome(outcome) == VerificationOutcome.passed
        elif bool(ok) != (VerificationOutcome(outcome) == VerificationOutcome.passed):
            raise ValueError(f"ok={ok} contradicts outcome={outcome}; ok is true only for passed")
        return data

    @property
    def inconclusive(self) -> bool:
        return self.outcome == VerificationOutcome.inconclusive


@dataclass
class RunContext(Generic[SettingsT, ParamsT]):
    """What an automation sees while it works on one run: ``settings`` is its Settings model
    (validated once, when the configuration was loaded), ``params`` its Params model (validated
    from the trigger). An automation annotates ``ctx: RunContext[MySettings, MyParams]`` to have
    both typed; a bare ``RunContext`` leaves them ``Any``."""

    run: Run
    config: Config
    environment: EnvironmentConfig
    settings: SettingsT
    params: ParamsT
    store: StateStore
    clock: Clock
    ids: IdSource
    log: logging.LoggerAdapter[logging.Logger]
    heartbeat: Callable[[], None] = field(default=lambda: None)
    progress: Callable[[str], None] = field(default=lambda message: None)
    owner: str = "unknown"

    def call_dependency(self, dependency: str, fn: Callable[[], T]) -> T:
        """Call an external API or tool behind its circuit breaker (``dependency:<name>``)."""
        # Here, not at the top: a plugin's module imports this one at a function's cold start,
        # and the breakers (with the store's base) are needed only once a run calls out.
        from .breaker import call_dependency

        return call_dependency(self.store, self.config.runner.breaker, self.clock, self.owner, dependency, fn)


class EventKind(StrEnum):
    """Events the core knows how to receive and hands to the plugin that declares it handles them."""

    push = "push"
    """A verified GitHub ``push`` webhook: the event is ``orchestra.events.github.PushEvent``."""
    breach = "breach"
    """A threshold breach (a Monitoring incident, or the continuous watch) asking for a focused
    run: the event is a :class:`BreachEvent`."""
    run_finished = "run_finished"
    """A run reached a final status (the runner announces it to every plugin that handles the
    kind): the event is a :class:`RunFinished`."""


class RunFinished(BaseModel):
    """A run that reached a final status, as the runner announces it (:attr:`EventKind.run_finished`)."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    run_id: str
    task: str
    status: str = Field(description="succeeded, failed, skipped or rolled_back")
    environment: str
    trigger_kind: str
    trigger_id: str


class BreachEvent(BaseModel):
    """A metric past a configured threshold rule (a Cloud Monitoring incident, or the continuous
    controller's own watch) asking for a run focused on it."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    rule: str = Field(description="name of the rule in the configuration's thresholds")
    metric: str
    focus: str = Field(description="what the run should concentrate on (the rule's focus)")
    environment: str
    service: str | None = None
    trigger_id: str = Field(description="idempotency key: one run per incident or breach episode")
    requested_by: str
    source_event: str | None = None


class EventOutcome(BaseModel):
    """What a plugin did with an event: a run for the core to submit, or work it did itself (a
    queued deployment) described for the event record."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, defer_build=True)

    status: Literal["accepted", "duplicate", "ignored"] = "accepted"
    reason: str | None = None
    request: Any = Field(None, description="a RunRequest the core submits")
    requests: list[Any] = Field(
        default_factory=list, description="more RunRequests the core submits (after ``request``)"
    )
    payload: dict[str, Any] = Field(default_factory=dict, description="facts added to the event record")
    extra: dict[str, Any] = Field(default_factory=dict, description="facts returned to the caller")


class WatchSource(BaseModel):
    """Where the continuous controller's metrics watch reads live metrics for breaches."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    spec: dict[str, Any] = Field(description="a metrics source spec (orchestra.metrics.source_from_spec)")
    services: list[str] = Field(min_length=1)


@dataclass
class EventContext:
    """What a plugin may use while handling an event."""

    config: Config
    store: StateStore
    clock: Clock
    ids: IdSource
    source_event: str | None = None
    """The id the event arrived with (a webhook delivery id, a Pub/Sub message id)."""


@dataclass
class DecisionContext:
    """What a plugin may use while deciding one of its approvable subjects."""

    config: Config
    store: StateStore
    clock: Clock


class Collection(BaseModel):
    """A store collection a plugin writes. Its documents carry ``expires_at`` (the plugin sets it
    from ``retention``), so the expiry sweep and Firestore's TTL policy cover the collection."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")
    retention: str = Field(description="the configuration key the retention comes from")


class GateStatus(BaseModel):
    """A time gate of an environment at one instant (a deployment window, a change freeze)."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    name: str = Field(min_length=1, description="what gates, e.g. 'deployment window'")
    open: bool
    reason: str = Field(description="why it is open or closed now")
    next_open: dt.datetime | None = Field(None, description="when closed: its next opening, if known")


class Automation(ABC):
    name: ClassVar[str]
    description: ClassVar[str] = ""
    Settings: ClassVar[type[BaseModel]] = NoSettings
    Params: ClassVar[type[BaseModel]] = NoParams
    default_schedule: ClassVar[str | None] = None
    """Cron (5 fields, UTC) used when the configuration lists the automation without a schedule."""
    default_environments: ClassVar[tuple[str, ...]] = ()
    """Scheduled runs target these (those configured) when the configuration names none."""
    handles: ClassVar[frozenset[EventKind]] = frozenset()
    """Event kinds :meth:`request_for_event` turns into runs."""
    collections: ClassVar[tuple[Collection, ...]] = ()
    read_only_analysis: ClassVar[bool] = False
    """True when :meth:`analyze` only reads (no store writes, files, processes or calls with
    effects; the runner's own bookkeeping, such as a dependency's breaker counting a failed call,
    does not count). The runner then stores a run that changes nothing in one commit when it ends,
    claiming it earlier (stored ``running`` under a lease) only before its first change or once
    it has lasted ``runner.lease.claim_after_seconds``; a duplicate delivery arriving meanwhile
    may analyse too, and is recorded as the duplicate it is. Leave it False when analysing has an
    effect that must happen once (running test suites, requesting a deployment)."""
    approvable: ClassVar[tuple[str, ...]] = ()
    """Kinds of subject besides runs (e.g. ``("deployment",)``) that wait for a person's decision
    and that :meth:`decide` looks up by id."""

    @classmethod
    def cli(cls) -> click.Command | Sequence[click.Command] | None:
        """A command or group (or several) mounted under ``orchestra``; asked only when the
        command line names a command the core does not have, or lists them all (``--help``)."""
        return None

    @classmethod
    def request_for_event(cls, kind: EventKind, event: BaseModel, config: Config) -> RunRequest | None:
        """The run of this automation an event of a kind in :attr:`handles` asks for, or None.
        Raise :class:`~orchestra.errors.InputError` naming the field when the event is unusable."""
        return None

    @classmethod
    def handle_event(cls, kind: EventKind, event: BaseModel, ctx: EventContext) -> EventOutcome:
        """Handle an event of a kind in :attr:`handles`. The default asks
        :meth:`request_for_event` for a run; a plugin that acts otherwise (queues a request of its
        own) overrides this and reports what it did."""
        request = cls.request_for_event(kind, event, ctx.config)
        if request is None:
            return EventOutcome(status="ignored", reason=f"{cls.name}: nothing to run for this {kind} event")
        return EventOutcome(request=request)

    @classmethod
    def watch_source(cls, config: Config, services: Sequence[str]) -> WatchSource:
        """For an automation that handles breaches: the live metrics the controller's watch reads
        (``services``: the ones named on the command line, else the plugin's own)."""
        from .errors import InputError

        raise InputError(
            f"the {cls.name} automation names no live metrics source; pass --metric NAME=PATH files",
            where="--watch-metrics",
        )

    @classmethod
    def decide(cls, subject_id: str, request: DecisionRequest, ctx: DecisionContext) -> Decided | None:
        """For a plugin with :attr:`approvable` kinds: take ``request`` on the subject
        ``subject_id`` names, through :func:`orchestra.approvals.decide`, and record it. None when
        no subject of this plugin has that id (the core then asks the next plugin)."""
        return None

    @classmethod
    def schedule_blocker(cls, config: Config, target: ScheduleTarget) -> str | None:
        """Why a scheduled run of this automation cannot succeed on ``target``, as what to set or
        where the work runs instead; None when it can (the default). A blocked schedule is not
        derived, and ``orchestra config validate`` shows the reason."""
        return None

    @classmethod
    def health_checks(cls, config: Config, store: StateStore, clock: Clock) -> list[Check]:
        """Extra health checks (e.g. a backlog this plugin keeps); the default has none."""
        return []

    @abstractmethod
    def analyze(self, ctx: RunContext) -> Analysis:
        """Look, never touch: return findings and the actions that would help."""

    def prepare(self, ctx: RunContext, action: Action) -> dict[str, Any]:
        """Capture what rollback needs (stored before apply). Empty means nothing to undo."""
        return {}

    def apply(self, ctx: RunContext, action: Action) -> dict[str, Any]:
        raise NotImplementedError(f"{self.name}: action kind {action.kind!r} cannot be applied")

    def verify(self, ctx: RunContext, action: Action) -> Verification:
        return Verification(ok=True)

    def rollback(self, ctx: RunContext, action: Action) -> None:
        """Undo ``apply`` using ``action.rollback``; must be safe to call twice."""

    def render(self, run: Run, console: Any) -> None:
        """Optional: print the automation-specific part of ``run.summary`` (a rich Console)."""

    @classmethod
    def environment_gates(cls, config: Config, environment: str, now: dt.datetime) -> list[GateStatus]:
        """Optional, for a plugin with :attr:`approvable` kinds: the time gates its subjects in
        ``environment`` wait for at ``now``, computed from its settings (the console's deployments
        page shows them); none by default."""
        return []

    def run_view(self, run: Run) -> RunView | None:
        """Optional: the automation's sections of the console's run page (tables and charts as
        data, see :mod:`orchestra.console.views`), shown after the generic findings and actions.
        None (the default) shows only those."""
        return None
