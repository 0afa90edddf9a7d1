"""Cron slots for configured schedules (``automations.<name>.schedule``, UTC).

A *slot* is one firing of one schedule for one environment. Its trigger id,
``schedule:{task}:{environment}:{slot time}``, is what makes scheduling safe to run in several
places at once: the runner derives the run id from it, so two controller replicas (or a replica
and a redelivered Cloud Scheduler message carrying the same id) execute the slot once.

Missed slots collapse: after downtime only the most recent due slot of each schedule is run,
never one run per slot missed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from croniter import croniter

from .clock import isoformat
from .config import Config
from .errors import InputError

if TYPE_CHECKING:
    from .automation import ScheduleTarget
    from .registry import Registry

TARGET_WORDS: dict[str, str] = {"cloud": "in the cloud", "local": "in continuous mode here"}

_EPSILON = dt.timedelta(microseconds=1)


def _utc(when: dt.datetime) -> dt.datetime:
    if when.tzinfo is None:
        raise ValueError(f"naive datetime {when!r}: schedules are evaluated in UTC, pass an aware datetime")
    return when.astimezone(dt.UTC)


def latest_slot(cron: str, now: dt.datetime) -> dt.datetime:
    """The most recent firing time at or before ``now``."""
    # croniter's get_prev is strictly before its start; start just after now so a slot at
    # exactly ``now`` counts as due.
    return croniter(cron, _utc(now) + _EPSILON).get_prev(dt.datetime).astimezone(dt.UTC)


def next_slot(cron: str, now: dt.datetime) -> dt.datetime:
    """The first firing time strictly after ``now``."""
    return croniter(cron, _utc(now)).get_next(dt.datetime).astimezone(dt.UTC)


def slots_between(
    cron: str, after: dt.datetime, until: dt.datetime, *, limit: int = 10_000
) -> list[dt.datetime]:
    """Firing times t with after < t <= until (bounded by ``limit`` as a guard against '* * * * *'
    over years)."""
    out: list[dt.datetime] = []
    it = croniter(cron, _utc(after))
    end = _utc(until)
    while len(out) < limit:
        when = it.get_next(dt.datetime).astimezone(dt.UTC)
        if when > end:
            break
        out.append(when)
    return out


def schedule_trigger_id(task: str, environment: str, at: dt.datetime) -> str:
    return f"schedule:{task}:{environment}:{isoformat(_utc(at))}"


@dataclass(frozen=True)
class Slot:
    task: str
    environment: str
    at: dt.datetime

    @property
    def trigger_id(self) -> str:
        return schedule_trigger_id(self.task, self.environment, self.at)


@dataclass(frozen=True)
class Schedule:
    """One automation's cron expression, targeting one environment."""

    task: str
    cron: str
    environment: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.task, self.environment)

    def latest_due(self, now: dt.datetime) -> Slot:
        return Slot(self.task, self.environment, latest_slot(self.cron, now))

    def next_after(self, now: dt.datetime) -> Slot:
        return Slot(self.task, self.environment, next_slot(self.cron, now))

    def slots_between(self, after: dt.datetime, until: dt.datetime) -> list[Slot]:
        return [Slot(self.task, self.environment, at) for at in slots_between(self.cron, after, until)]


@dataclass(frozen=True)
class ScheduleSet:
    schedules: list[Schedule]
    unavailable: list[str]
    """Automations with a schedule in the configuration that are not installed (not scheduled)."""
    blocked: dict[str, str] = field(default_factory=dict)
    """Automations whose scheduled run could not succeed where the schedules run (not scheduled):
    name -> a note saying why and what to set."""

    @property
    def notes(self) -> list[str]:
        return list(self.blocked.values())


def configured_schedules(
    config: Config,
    environment: str | None = None,
    available: Iterable[str] | None = None,
    registry: Registry | None = None,
    target: ScheduleTarget = "local",
) -> ScheduleSet:
    """Every enabled, scheduled automation, once per target environment.

    The schedule is ``automations.<name>.schedule``, else (with ``registry``) the plugin's
    ``default_schedule``. Targets are ``automations.<name>.environments`` when set, else the
    plugin's ``default_environments`` that the configuration has, else ``environment`` (the
    controller's ``--environment``), else the configuration's default environment. With
    ``available`` (default: the registry's names), automations not in it are left out and listed
    in ``unavailable``.

    With ``registry``, each plugin is asked whether its scheduled run can succeed on ``target``
    (``cloud``: Cloud Scheduler and the functions; ``local``: the continuous controller in this
    working directory); a schedule that cannot is left out and its reason is in ``blocked``. The
    Terraform module terraform/modules/orchestra-config derives the cloud's jobs by the same rule.
    """
    fallback = environment or config.default_environment
    if fallback not in config.environments:
        raise InputError(
            f"unknown environment {fallback!r}; accepted: {', '.join(config.environments)}",
            where="--environment",
        )
    if available is None and registry is not None:
        available = registry.names()
    allowed = None if available is None else set(available)
    schedules: list[Schedule] = []
    unavailable: list[str] = []
    blocked: dict[str, str] = {}
    for name, auto in config.automations.items():
        if not auto.enabled:
            continue
        if allowed is not None and name not in allowed:
            if auto.schedule:
                unavailable.append(name)
            continue
        plugin = registry.get_class(name) if registry is not None else None
        cron = auto.schedule or (plugin.default_schedule if plugin is not None else None)
        if not cron:
            continue
        reason = plugin.schedule_blocker(config, target) if plugin is not None else None
        if reason:
            blocked[name] = f"{name}: no schedule {TARGET_WORDS[target]}: {reason}"
            continue
        own = plugin.default_environments if plugin is not None and not auto.schedule else ()
        defaults = [e for e in own if e in config.environments]
        for env in auto.environments or defaults or [fallback]:
            schedules.append(Schedule(task=name, cron=cron, environment=env))
    return ScheduleSet(schedules, unavailable, blocked)
