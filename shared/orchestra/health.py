"""Health: one report for `orchestra health`, the controller's GET /health and /healthz.

unhealthy — the store cannot be opened or reached (nothing can work): a bad store URL, a state
            file that is empty or not an Orchestra store, a database that does not answer;
degraded  — something needs an operator: an open breaker, a run whose owner died (stale lease),
            an automation whose last success is older than twice its schedule interval, an
            approval about to expire;
healthy   — none of the above.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from croniter import croniter
from pydantic import BaseModel, Field

from .breaker import BreakerState, list_breakers
from .clock import Clock
from .config import Config
from .errors import OrchestraError, StoreConfigError
from .models import RunStatus, Timestamp
from .registry import Registry
from .scheduling import configured_schedules
from .store.base import StateStore


class Status(StrEnum):
    healthy = "healthy"
    degraded = "degraded"
    unhealthy = "unhealthy"


class Check(BaseModel):
    name: str
    ok: bool
    detail: str
    data: dict[str, Any] = Field(default_factory=dict)


class HealthReport(BaseModel):
    status: Status
    checked_at: Timestamp
    checks: list[Check]


def schedule_interval(cron: str, now: dt.datetime) -> dt.timedelta:
    it = croniter(cron, now)
    first = it.get_next(dt.datetime)
    return it.get_next(dt.datetime) - first


def check_health_opening(
    config: Config, open_store: Callable[[], StateStore], clock: Clock, registry: Registry
) -> HealthReport:
    """``check_health`` of the store ``open_store`` opens; a store that cannot be opened (bad
    URL, a state file that is not an Orchestra store) makes the report unhealthy."""
    try:
        store = open_store()
    except StoreConfigError as exc:
        check = Check(name="store", ok=False, detail=f"store unusable: {exc}")
        return HealthReport(status=Status.unhealthy, checked_at=clock.now(), checks=[check])
    return check_health(config, store, clock, registry)


def check_health(config: Config, store: StateStore, clock: Clock, registry: Registry) -> HealthReport:
    now = clock.now()
    checks: list[Check] = []
    try:
        store.ping()
    except (OrchestraError, OSError) as exc:
        checks.append(Check(name="store", ok=False, detail=f"store unreachable: {exc}"))
        return HealthReport(status=Status.unhealthy, checked_at=now, checks=checks)
    checks.append(Check(name="store", ok=True, detail=f"reachable ({store.url})"))

    opened = [b for b in list_breakers(store) if b.state != BreakerState.closed]
    checks.append(
        Check(
            name="breakers",
            ok=not opened,
            detail=f"{len(opened)} open: {', '.join(b.name for b in opened)}" if opened else "all closed",
            data={"open": [b.model_dump(mode="json") for b in opened]},
        )
    )

    running = store.list_runs(status=RunStatus.running, limit=None)
    stale = [r for r in running if r.lease is None or r.lease.expires_at <= now]
    checks.append(
        Check(
            name="leases",
            ok=not stale,
            detail=(
                f"{len(stale)} run(s) whose owner stopped renewing its lease; run `orchestra runs recover`"
                if stale
                else f"{len(running)} running, none stale"
            ),
            data={"stale": [r.id for r in stale]},
        )
    )

    overdue: list[str] = []
    never: list[str] = []
    crons = {s.task: s.cron for s in configured_schedules(config, registry=registry).schedules}
    for name, cron in crons.items():
        interval = schedule_interval(cron, now)
        last = store.list_runs(task=name, status=RunStatus.succeeded, limit=1)
        if not last:
            never.append(name)
            continue
        finished = last[0].finished_at or last[0].created_at
        if now - finished > 2 * interval:
            overdue.append(f"{name} (last success {finished.isoformat()}, schedule {cron})")
    checks.append(
        Check(
            name="schedules",
            ok=not overdue,
            detail=("overdue: " + "; ".join(overdue)) if overdue else "every scheduled automation is on time",
            data={"overdue": overdue, "never_ran": never},
        )
    )

    waiting = store.list_runs(status=RunStatus.awaiting_approval, limit=None)
    expiring = [r for r in waiting if r.approval_expires_at and r.approval_expires_at <= now]
    checks.append(
        Check(
            name="approvals",
            ok=not expiring,
            detail=f"{len(waiting)} pending, {len(expiring)} expired",
            data={"pending": [r.id for r in waiting], "expired": [r.id for r in expiring]},
        )
    )
    for name in config.automations:
        plugin = registry.get_class(name)
        if plugin is not None:
            checks.extend(plugin.health_checks(config, store, clock))
    status = Status.healthy if all(c.ok for c in checks) else Status.degraded
    return HealthReport(status=status, checked_at=now, checks=checks)
