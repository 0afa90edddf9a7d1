"""The soak automation: one low-risk action per event, whose effect is countable.

``apply`` writes the event's target file and appends ``apply`` to an append-only ledger;
``rollback`` restores the target and appends ``rollback``. The invariant checker reads both, so an
action applied twice, or a rolled-back run that left its target changed, is visible.

Failures are seeded (``settings.seed``) and drawn per run and attempt, so a soak is repeatable:
``analyze`` fails transiently at ``transient_rate`` per attempt; ``apply`` fails after writing at
``apply_failure_rate`` (the runner must roll the partial change back); ``verify`` fails at
``verify_failure_rate`` (rolled back too) after ``verify_delay_seconds``, which widens the window
between apply and verify for the chaos to kill a process in. An event with ``doom: true`` fails
transiently until ``heal_file`` exists: it exhausts its deliveries and is dead-lettered, and its
replay succeeds once the checker creates the file.

Loaded into the functions through ``ORCHESTRA_EXTRA_AUTOMATIONS=soak.plugin``; :func:`register`
also removes the built-in handlers of pushes and breaches from that registry, so every pushed
commit and Monitoring incident of the soak becomes a soak run.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import time
from pathlib import Path
from typing import Any

from orchestra.automation import Analysis, Automation, EventContext, EventKind, EventOutcome, RunContext
from orchestra.automation import Verification as Verdict
from orchestra.errors import TransientError
from orchestra.models import Action, Finding, Mode, Risk, Severity, TriggerKind
from orchestra.registry import Registry
from orchestra.runner import RunRequest
from pydantic import BaseModel, ConfigDict, Field

NAME = "soak"
KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9:._-]{0,199}$"
# Built-in automations that would also answer the soak's pushes and incidents.
DISPLACED = ("performance", "deployment", "testing")


class SoakSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ledger: str = Field(description="append-only side-effect log (one line per apply or rollback)")
    targets: str = Field(description="directory of the targets: one file per event key")
    heal_file: str = Field(description="doomed events fail transiently until this file exists")
    seed: int = 0
    transient_rate: float = Field(0.0, ge=0, le=1, description="per analyze attempt")
    apply_failure_rate: float = Field(0.0, ge=0, le=1, description="apply writes, then fails")
    verify_failure_rate: float = Field(0.0, ge=0, le=1)
    verify_delay_seconds: float = Field(0.0, ge=0, le=30)


class SoakParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(pattern=KEY_PATTERN, description="the published event's key")
    doom: bool = False


def target_path(targets: str | Path, key: str) -> Path:
    """The target file of an event key (hashed: keys carry ':' and may be long)."""
    return Path(targets) / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.json"


def append_line(path: str | Path, fields: dict[str, Any]) -> None:
    """One JSON line appended with a single O_APPEND write: concurrent processes never interleave."""
    line = (json.dumps(fields, sort_keys=True) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def draw(seed: int, *parts: object) -> float:
    """A uniform number in [0, 1) fixed by the seed and ``parts`` (a run id, an attempt, a step)."""
    return random.Random(":".join(str(p) for p in (seed, *parts))).random()


class SoakAutomation(Automation):
    name = NAME
    description = "soak test automation: one countable action per event"
    Settings = SoakSettings
    Params = SoakParams
    handles = frozenset({EventKind.push, EventKind.breach})

    # ------------------------------------------------------------------ events
    @classmethod
    def request_for_event(cls, kind: EventKind, event: BaseModel, config: Any) -> RunRequest | None:
        if kind != EventKind.breach:
            return None
        trigger_id = str(event.trigger_id)  # type: ignore[attr-defined]
        # The incident id is the published event's key.
        key = str(event.source_event or trigger_id)  # type: ignore[attr-defined]
        return RunRequest(
            task=NAME,
            environment=event.environment,  # type: ignore[attr-defined]
            mode=Mode.apply,
            params={"key": key},
            trigger_kind=TriggerKind.alert,
            trigger_id=trigger_id,
            requested_by=event.requested_by,  # type: ignore[attr-defined]
            source_event=event.source_event,  # type: ignore[attr-defined]
        )

    @classmethod
    def handle_event(cls, kind: EventKind, event: BaseModel, ctx: EventContext) -> EventOutcome:
        if kind != EventKind.push:
            return super().handle_event(kind, event, ctx)
        delivery = ctx.source_event or ""
        request = RunRequest(
            task=NAME,
            environment=ctx.config.default_environment,
            mode=Mode.apply,
            params={"key": delivery},
            trigger_kind=TriggerKind.webhook,
            trigger_id=delivery,
            requested_by="github:soak",
            source_event=delivery,
        )
        return EventOutcome(request=request)

    # ------------------------------------------------------------------ the run
    def analyze(self, ctx: RunContext[SoakSettings, SoakParams]) -> Analysis:
        s, p = ctx.settings, ctx.params
        if p.doom and not Path(s.heal_file).exists():
            raise TransientError(f"soak: event {p.key} is doomed until {s.heal_file} exists")
        if draw(s.seed, ctx.run.id, ctx.run.attempts, "analyze") < s.transient_rate:
            raise TransientError(f"soak: injected transient failure (attempt {ctx.run.attempts})")
        action = Action(id="mark", description=f"mark the target of {p.key}", risk=Risk.low, kind="mark")
        finding = Finding(id="soak.event", severity=Severity.info, summary=f"event {p.key}")
        return Analysis(findings=[finding], actions=[action], summary={"key": p.key})

    def prepare(self, ctx: RunContext[SoakSettings, SoakParams], action: Action) -> dict[str, Any]:
        path = target_path(ctx.settings.targets, ctx.params.key)
        previous = path.read_text() if path.exists() else None
        return {"key": ctx.params.key, "previous": previous}

    def apply(self, ctx: RunContext[SoakSettings, SoakParams], action: Action) -> dict[str, Any]:
        s, key = ctx.settings, ctx.params.key
        path = target_path(s.targets, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"key": key, "run": ctx.run.id}))
        append_line(
            s.ledger, {"op": "apply", "key": key, "run": ctx.run.id, "pid": os.getpid(), "at": time.time()}
        )
        if draw(s.seed, ctx.run.id, "apply") < s.apply_failure_rate:
            raise RuntimeError(f"soak: injected apply failure after writing the target of {key}")
        return {"target": path.name}

    def verify(self, ctx: RunContext[SoakSettings, SoakParams], action: Action) -> Verdict:
        s, key = ctx.settings, ctx.params.key
        if s.verify_delay_seconds:
            ctx.heartbeat()
            time.sleep(s.verify_delay_seconds)  # the window between apply and verify, widened
        path = target_path(s.targets, key)
        current = json.loads(path.read_text()) if path.exists() else None
        if current is None or current.get("run") != ctx.run.id:
            return Verdict(ok=False, evidence={"target": "missing or written by another run"})
        if draw(s.seed, ctx.run.id, "verify") < s.verify_failure_rate:
            return Verdict(ok=False, evidence={"injected": "verification failure"})
        return Verdict(ok=True, evidence={"target": path.name})

    def rollback(self, ctx: RunContext[SoakSettings, SoakParams], action: Action) -> None:
        s = ctx.settings
        key = str((action.rollback or {}).get("key") or ctx.params.key)
        previous = (action.rollback or {}).get("previous")
        path = target_path(s.targets, key)
        current = json.loads(path.read_text()) if path.exists() else None
        if current is not None and current.get("run") != ctx.run.id:
            return  # another run's write: not this run's to undo
        if previous is None:
            path.unlink(missing_ok=True)
        else:
            path.write_text(previous)
        if current is not None:
            append_line(
                s.ledger,
                {"op": "rollback", "key": key, "run": ctx.run.id, "pid": os.getpid(), "at": time.time()},
            )


def register(registry: Registry) -> None:
    """Hook of ``ORCHESTRA_EXTRA_AUTOMATIONS``: the soak automation answers pushes and breaches."""
    for name in DISPLACED:
        registry.unregister(name)
    registry.register(SoakAutomation)
