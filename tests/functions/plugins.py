"""Test automations for the function tests.

Loaded into function processes with ``ORCHESTRA_EXTRA_AUTOMATIONS=tests.functions.plugins`` (the
hook operators use for their own plugins), and into in-process tests through ``build_registry``.
Executions are counted in a file so separate processes agree.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

from orchestra.automation import (
    Analysis,
    Automation,
    EventKind,
    RunContext,
    Verification,
)
from orchestra.errors import TransientError
from orchestra.models import Action, Finding, Risk, Severity
from orchestra.registry import Registry
from orchestra.runner import RunRequest
from pydantic import BaseModel, ConfigDict

from tests.plugins.helpers import focused_run_request


def bump(counter: str | None, key: str) -> None:
    if not counter:
        return
    # One short O_APPEND write is atomic: concurrent processes never lose a count.
    fd = os.open(counter, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{key}\n".encode())
    finally:
        os.close(fd)


def count(counter: Path, key: str) -> int:
    return counter.read_text().splitlines().count(key) if counter.exists() else 0


class ProbeParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    counter: str | None = None
    fail: Literal["transient", "permanent"] | None = None
    note: str | None = None


class Probe(Automation):
    """Records that it ran; fails on request."""

    name = "probe"
    Params = ProbeParams

    def analyze(self, ctx: RunContext) -> Analysis:
        p: ProbeParams = ctx.params
        bump(p.counter, f"analyze:{ctx.run.trigger_id}")
        if p.fail == "transient":
            raise TransientError("dependency unavailable (probe asked to fail transiently)")
        if p.fail == "permanent":
            raise RuntimeError("probe asked to fail permanently")
        return Analysis(
            findings=[
                Finding(id="probe.ran", severity=Severity.info, summary=f"ran for {ctx.run.trigger_id}")
            ],
            summary={"note": p.note},
        )


class GateParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    target: str
    value: int = 1


class Gatekeeper(Automation):
    """Proposes one high-risk change to a JSON file (held for approval in production)."""

    name = "gatekeeper"
    Params = GateParams

    def analyze(self, ctx: RunContext) -> Analysis:
        p: GateParams = ctx.params
        return Analysis(
            actions=[
                Action(id="set-value", description=f"set value to {p.value}", risk=Risk.high, kind="set")
            ]
        )

    def _read(self, ctx: RunContext) -> dict[str, Any]:
        path = Path(ctx.params.target)
        return json.loads(path.read_text()) if path.exists() else {}

    def prepare(self, ctx: RunContext, action: Action) -> dict[str, Any]:
        return {"previous": self._read(ctx).get("value")}

    def apply(self, ctx: RunContext, action: Action) -> dict[str, Any]:
        data = self._read(ctx)
        data["value"] = ctx.params.value
        Path(ctx.params.target).write_text(json.dumps(data))
        return {"written": ctx.params.value}

    def verify(self, ctx: RunContext, action: Action) -> Verification:
        current = self._read(ctx).get("value")
        return Verification(ok=current == ctx.params.value, evidence={"current": current})


class FocusParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    focus: str | None = None
    service: str | None = None
    metrics: dict[str, str] = {}


class FocusedPerformance(Automation):
    """Stands in for the performance automation: reports the focus it was asked for."""

    name = "performance"
    Params = FocusParams
    handles = frozenset({EventKind.breach})

    @classmethod
    def request_for_event(cls, kind: EventKind, event: Any, config: Any) -> RunRequest | None:
        return focused_run_request(cls.name, event)

    def analyze(self, ctx: RunContext) -> Analysis:
        p: FocusParams = ctx.params
        return Analysis(
            findings=[Finding(id=f"focus.{p.focus}", severity=Severity.info, summary=f"focus {p.focus}")],
            summary={"focus": p.focus, "service": p.service},
        )


def register(registry: Registry) -> None:
    """Hook called by ``orchestra.app`` for ORCHESTRA_EXTRA_AUTOMATIONS."""
    registry.register(Probe)


def build_registry() -> Registry:
    # The real deployment automation handles pushes (the webhook tests request deployments).
    registry = Registry({"deployment": "orchestra.automations.deployment.plugin:DeploymentAutomation"})
    for cls in (Probe, Gatekeeper, FocusedPerformance):
        registry.register(cls)
    return registry
