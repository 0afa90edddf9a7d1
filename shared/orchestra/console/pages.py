"""What each console page shows, read from the store through the library's own functions, and the
three things the console changes: decisions (the one approval path, :meth:`Runner.decide`),
breaker resets and dead-letter replays. Templates only lay these out."""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

from markupsafe import Markup
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..automation import GateStatus
from ..breaker import BreakerRecord, BreakerState, CircuitBreaker, find_breaker, list_breakers
from ..errors import InputError, NotFound
from ..health import HealthReport, check_health
from ..models import (
    ActionStatus,
    Decision,
    DecisionKind,
    EventRecord,
    Run,
    RunStatus,
    TriggerKind,
    format_timestamp,
)
from ..store.base import EVENTS, RunPage
from . import svg
from .views import BarChart, Heatmap, LineChart, RunView, Table

if TYPE_CHECKING:
    from ..app import App
    from ..events.dead_letters import Replay

log = logging.getLogger("orchestra.console")

CONSOLE_SOURCE = "console"
BREAKER_RESET = "breaker-reset"
RECENT_DAYS = 7
RECENT_RUNS = 12
PENDING_SUBJECT_STATES = ("requested", "awaiting_approval", "approved", "waiting_for_window")
AWAITING_DECISION_STATES = ("requested", "awaiting_approval")


# ------------------------------------------------------------------------------ overview


class Recent(BaseModel):
    task: str
    runs: list[Run]


class Overview(BaseModel):
    health: HealthReport
    open_breakers: list[BreakerRecord]
    pending_runs: list[Run]
    pending_subjects: list[dict[str, Any]]
    recent: list[Recent]
    days: int


def overview(app: App) -> Overview:
    now = app.clock.now()
    since = now - dt.timedelta(days=RECENT_DAYS)
    recent = []
    for name in app.registry.names():
        runs = [r for r in app.store.list_runs(task=name, limit=RECENT_RUNS) if r.created_at >= since]
        recent.append(Recent(task=name, runs=runs))
    return Overview(
        health=check_health(app.config, app.store, app.clock, app.registry),
        open_breakers=[b for b in list_breakers(app.store) if b.state != BreakerState.closed],
        pending_runs=app.store.list_runs(status=RunStatus.awaiting_approval, limit=100),
        pending_subjects=[s for s in subjects(app, limit=100) if s.get("state") in PENDING_SUBJECT_STATES],
        recent=recent,
        days=RECENT_DAYS,
    )


# ---------------------------------------------------------------------------------- runs


class RunFilters(BaseModel):
    """The runs page's query string."""

    model_config = ConfigDict(extra="ignore")

    task: str | None = Field(None, max_length=100)
    environment: str | None = Field(None, max_length=100)
    status: RunStatus | None = None
    trigger_kind: TriggerKind | None = None
    trigger_id: str | None = Field(None, max_length=500)
    after: str | None = Field(None, max_length=600)
    limit: int = Field(50, ge=1, le=200)

    @field_validator("*", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @classmethod
    def parse(cls, args: dict[str, str]) -> RunFilters:
        try:
            return cls.model_validate(args)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "query"
            accepted = ""
            if field == "status":
                accepted = "; accepted: " + ", ".join(s.value for s in RunStatus)
            elif field == "trigger_kind":
                accepted = "; accepted: " + ", ".join(k.value for k in TriggerKind)
            raise InputError(f"{first['msg']}{accepted}", where=field) from None

    def query(self, **changes: Any) -> dict[str, str]:
        """The query string of this filter with ``changes`` (for links), without empty fields."""
        data = self.model_dump(mode="json") | changes
        return {k: str(v) for k, v in data.items() if v not in (None, "") and not (k == "limit" and v == 50)}


def runs_page(app: App, filters: RunFilters) -> RunPage:
    return app.store.list_runs_page(
        task=filters.task,
        environment=filters.environment,
        status=filters.status,
        trigger_kind=filters.trigger_kind,
        trigger_id=filters.trigger_id,
        after=filters.after,
        limit=filters.limit,
    )


class TimelineEntry(BaseModel):
    at: dt.datetime | None
    what: str


class RenderedItem(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    kind: str
    svg: Markup | None = None
    table: Table


class RenderedSection(BaseModel):
    title: str
    items: list[RenderedItem]


class RunDetail(BaseModel):
    run: Run
    timeline: list[TimelineEntry]
    events: list[EventRecord]
    sections: list[RenderedSection]
    view_error: str | None = None
    replayed_from: list[str] = Field(default_factory=list)


def run_detail(app: App, run_id: str) -> RunDetail:
    run = app.store.get_run(run_id)
    if run is None:
        raise NotFound(f"no run with id {run_id!r}", where="run_id")
    sections, view_error = plugin_sections(app, run)
    return RunDetail(
        run=run, timeline=timeline(run), events=run_events(app, run), sections=sections, view_error=view_error
    )


def timeline(run: Run) -> list[TimelineEntry]:
    """What the run record tells about its life, in order."""
    entries = [TimelineEntry(at=run.created_at, what=f"requested by {run.requested_by} ({run.trigger_kind})")]
    if run.started_at:
        entries.append(TimelineEntry(at=run.started_at, what=f"claimed; {run.attempts} attempt(s) so far"))
    if run.lease:
        entries.append(
            TimelineEntry(
                at=run.lease.heartbeat_at,
                what=f"last heartbeat of {run.lease.owner} (lease until {format_timestamp(run.lease.expires_at)})",
            )
        )
    for action in run.actions:
        if action.applied_at:
            entries.append(TimelineEntry(at=action.applied_at, what=f"applied {action.id} ({action.kind})"))
        if action.verified is not None:
            verdict = "verified" if action.verified else "verification failed"
            entries.append(TimelineEntry(at=action.applied_at, what=f"{verdict}: {action.id}"))
        if action.status == ActionStatus.rolled_back:
            entries.append(
                TimelineEntry(at=None, what=f"rolled back {action.id}: {action.reason or ''}".strip())
            )
    if run.decision:
        entries.append(TimelineEntry(at=run.decision.at, what=run.decision.describe()))
    if run.approval_expires_at and run.status == RunStatus.awaiting_approval:
        entries.append(TimelineEntry(at=run.approval_expires_at, what="approval expires"))
    if run.finished_at:
        entries.append(TimelineEntry(at=run.finished_at, what=f"finished: {run.status}"))
    known = [e for e in entries if e.at is not None]
    unknown = [e for e in entries if e.at is None]
    return sorted(known, key=lambda e: e.at or run.created_at) + unknown


def run_events(app: App, run: Run) -> list[EventRecord]:
    """Event records that caused the run: the record named by ``source_event`` (a record id or
    the delivery id it was received under)."""
    if not run.source_event:
        return []
    found: dict[str, EventRecord] = {}
    direct = app.store.get_event(run.source_event)
    if direct is not None:
        found[direct.id] = direct
    for doc in app.store.query(EVENTS, where=[("event_id", "==", run.source_event)], limit=20):
        record = EventRecord.model_validate(doc)
        found.setdefault(record.id, record)
    return sorted(found.values(), key=lambda e: e.received_at)


def render_view(view: RunView) -> list[RenderedSection]:
    sections: list[RenderedSection] = []
    counter = 0
    for section in view.sections:
        items: list[RenderedItem] = []
        for item in section.items:
            counter += 1
            if isinstance(item, Table):
                items.append(RenderedItem(kind="table", table=item))
            elif isinstance(item, LineChart | BarChart | Heatmap):
                items.append(
                    RenderedItem(
                        kind=item.type,
                        svg=svg.draw(item, f"chart{counter}"),
                        table=svg.text_alternative(item),
                    )
                )
        sections.append(RenderedSection(title=section.title, items=items))
    return sections


def plugin_sections(app: App, run: Run) -> tuple[list[RenderedSection], str | None]:
    """The automation's own sections (``run_view``); a failing view never hides the run."""
    if app.registry.get_class(run.task) is None:
        return [], None
    try:
        view = app.registry.create(run.task).run_view(run)
        return (render_view(view) if view is not None else []), None
    except Exception as exc:  # a plugin's view must never hide the run itself
        log.warning("run view of %s failed for %s", run.task, run.id, exc_info=exc)
        return [], f"the {run.task} automation's view could not be drawn ({type(exc).__name__}); see the logs"


# ---------------------------------------------------------------- approvals and subjects


def subjects(app: App, *, limit: int = 200, environment: str | None = None) -> list[dict[str, Any]]:
    """Records of the plugins' approvable subjects (deployments), newest first. A plugin keeps a
    kind ``K`` in its collection ``Ks`` (whether or not ``Automation.collections`` declares it:
    that declaration is about expiry, and deployments do not expire); its documents carry
    ``id``, ``environment``, ``state``, ``created_at`` and may carry ``requested_by``,
    ``revision``, ``ref``, ``history`` and ``decisions``."""
    found: list[dict[str, Any]] = []
    for kind in app.registry.approvable_kinds():
        name = f"{kind}s"
        where: list[Any] = [("environment", "==", environment)] if environment else []
        for doc in app.store.query(name, where=where, order_by="created_at", descending=True, limit=limit):
            found.append({"kind": kind, **doc})
    return found


def decide(app: App, subject_id: str, decision: str, identity: str, comment: str | None) -> str:
    """Approve or reject through the one decision path; returns the subject's state after it."""
    try:
        kind = DecisionKind(decision)
    except ValueError:
        raise InputError(
            f"unknown decision {decision!r}; accepted: " + ", ".join(k.value for k in DecisionKind),
            where="decision",
        ) from None
    text = (comment or "").strip() or None
    if text is not None and len(text) > 2000:
        raise InputError(f"the comment has {len(text)} characters; accepted: at most 2000", where="comment")
    decided = app.runner.decide(subject_id, kind, identity, text)
    return decided.status


class Gate(BaseModel):
    """A plugin's time gate of one environment as the deployments page shows it."""

    automation: str
    status: GateStatus
    opens_in: str | None = Field(None, description="time from the page's instant to the next opening")


class EnvironmentGates(BaseModel):
    gates: list[Gate] = Field(default_factory=list)
    errors: list[str] = Field(default_factory=list)

    @property
    def closed(self) -> list[Gate]:
        return [g for g in self.gates if not g.status.open]

    @property
    def next_open(self) -> dt.datetime | None:
        """When every closed gate is open again, as far as the plugins know: the latest of their
        next openings (None when one of them names none)."""
        closed = self.closed
        if not closed or any(g.status.next_open is None for g in closed):
            return None
        return max(g.status.next_open for g in closed if g.status.next_open is not None)


class Deployments(BaseModel):
    environments: dict[str, list[dict[str, Any]]]
    gates: dict[str, EnvironmentGates] = Field(default_factory=dict)
    now: dt.datetime | None = None


def deployments(app: App) -> Deployments:
    grouped: dict[str, list[dict[str, Any]]] = {name: [] for name in app.config.environments}
    for record in subjects(app, limit=500):
        grouped.setdefault(str(record.get("environment", "?")), []).append(record)
    now = app.clock.now()
    return Deployments(
        environments=grouped, gates={env: environment_gates(app, env, now) for env in grouped}, now=now
    )


def environment_gates(app: App, environment: str, now: dt.datetime) -> EnvironmentGates:
    """What the plugins with approvable subjects say gates ``environment`` at ``now`` (their
    ``environment_gates``: a deployment window and its next opening). A failing plugin never
    hides the page: it is named, the details go to the log."""
    found = EnvironmentGates()
    for cls in app.registry.approvable():
        try:
            statuses = cls.environment_gates(app.config, environment, now)
            found.gates.extend(
                Gate(
                    automation=cls.name,
                    status=s,
                    opens_in=duration(s.next_open - now) if s.next_open and not s.open else None,
                )
                for s in statuses
            )
        except Exception as exc:  # a plugin's gates must never hide the deployments
            log.warning("environment gates of %s failed for %s", cls.name, environment, exc_info=exc)
            found.errors.append(
                f"the {cls.name} automation could not tell its gates for {environment} "
                f"({type(exc).__name__}); see the logs"
            )
    return found


def duration(delta: dt.timedelta) -> str:
    """A wait as people say it: "2 d 3 h", "3 h 5 min", "4 min" (under a minute: "< 1 min")."""
    total = int(delta.total_seconds()) // 60
    if total < 1:
        return "< 1 min"
    days, rest = divmod(total, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{minutes} min"


def decision_of(raw: dict[str, Any]) -> Decision | None:
    try:
        return Decision.model_validate(raw)
    except ValidationError:
        return None


# ------------------------------------------------------------------------------ breakers


class BreakerRow(BaseModel):
    record: BreakerRecord
    last_reset: EventRecord | None = None


def breakers(app: App) -> list[BreakerRow]:
    resets: dict[str, EventRecord] = {}
    for record in app.store.list_events(source=CONSOLE_SOURCE, limit=200):
        name = record.payload.get("breaker")
        if record.kind == BREAKER_RESET and isinstance(name, str):
            resets.setdefault(name, record)
    return [BreakerRow(record=b, last_reset=resets.get(b.name)) for b in list_breakers(app.store)]


def reset_breaker(app: App, name: str, identity: str) -> None:
    """Close breaker ``name`` and record who did it (an event record of the console)."""
    before = find_breaker(app.store, name)
    if before is None:
        known = ", ".join(b.name for b in list_breakers(app.store)) or "none recorded"
        raise NotFound(f"no breaker named {name!r}; known: {known}", where="name")
    CircuitBreaker(app.store, name, app.config.runner.breaker, app.clock).reset()
    now = app.clock.now()
    app.store.record_event(
        EventRecord(
            id=app.ids.new_id("console-reset-"),
            source=CONSOLE_SOURCE,
            event_id=f"{BREAKER_RESET}:{name}:{format_timestamp(now)}",
            kind=BREAKER_RESET,
            status="accepted",
            reason=f"breaker {name} reset by {identity} (was {before.state}, {before.failures} failure(s))",
            received_at=now,
            payload={"breaker": name, "by": identity, "previous_state": before.state.value},
            expires_at=now + dt.timedelta(days=app.config.runner.retention.events_days),
        )
    )
    log.info("breaker %s reset by %s", name, identity)


# -------------------------------------------------------------------------- dead letters


def replay(app: App, letter_id: str, identity: str) -> Replay:
    from ..events.dead_letters import replay_dead_letter

    return replay_dead_letter(app, letter_id, identity)


def original_attributes(app: App, letter_id: str) -> tuple[Any, dict[str, str]]:
    from ..events.dead_letters import original_attributes as attributes

    letter = app.store.get_dead_letter(letter_id)
    if letter is None:
        raise NotFound(f"no dead letter with id {letter_id!r}", where="id")
    return letter, attributes(letter)
