"""Automations for controller tests: they count their executions in files so threads and
separate processes agree, and take their behaviour from a JSON file beside the counter."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from orchestra.automation import Analysis, Automation, EventKind, RunContext
from orchestra.errors import TransientError
from orchestra.models import Finding, Severity
from orchestra.registry import Registry
from orchestra.runner import RunRequest
from pydantic import BaseModel, ConfigDict, Field

from tests.plugins.helpers import focused_run_request
from tests.runner.automations import Counter

# The subprocess entry point finds its working directory here.
WORKDIR_ENV = "ORCHESTRA_TEST_WORKDIR"


class Behaviour(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sleep: float = 0.0
    fail_times: int = 0
    permanent_failure: bool = False


def set_behaviour(workdir: Path, **values: object) -> None:
    (workdir / "behaviour.json").write_text(json.dumps(Behaviour.model_validate(values).model_dump()))


def behaviour(workdir: Path) -> Behaviour:
    path = workdir / "behaviour.json"
    return Behaviour.model_validate_json(path.read_text()) if path.exists() else Behaviour()


def calls(workdir: Path) -> list[str]:
    path = workdir / "calls.log"
    return path.read_text().splitlines() if path.exists() else []


class PerformanceParams(BaseModel):
    """The parameter shape of the real performance automation's focused runs."""

    model_config = ConfigDict(extra="forbid")
    metrics: dict[str, str] = Field(default_factory=dict)
    service: str | None = None
    focus: str | None = None


def build_registry(workdir: Path) -> Registry:
    counter = Counter(workdir / "calls.log")

    class Probe(Automation):
        """Scheduled work: records each execution as `start <trigger>` / `end <trigger>`."""

        name = "testing"

        def analyze(self, ctx: RunContext) -> Analysis:
            b = behaviour(workdir)
            key = ctx.run.trigger_id
            count = counter.bump(f"start {key}")
            if count <= b.fail_times:
                raise TransientError(f"dependency unavailable (call {count})")
            if b.permanent_failure:
                raise RuntimeError("automation bug")
            if b.sleep:
                time.sleep(b.sleep)
            counter.bump(f"end {key}")
            return Analysis(
                findings=[Finding(id="probe.ok", severity=Severity.info, summary=f"pid {os.getpid()}")]
            )

    class Cost(Probe):
        name = "cost"

    class Performance(Automation):
        name = "performance"
        Params = PerformanceParams
        handles = frozenset({EventKind.breach})

        @classmethod
        def request_for_event(cls, kind: EventKind, event: Any, config: Any) -> RunRequest | None:
            return focused_run_request(cls.name, event)

        @classmethod
        def watch_source(cls, config: Any, services: Any) -> Any:
            # The real automation's reading of automations.performance.settings.
            from orchestra.automations.performance import PerformanceAutomation

            return PerformanceAutomation.watch_source(config, services)

        def analyze(self, ctx: RunContext) -> Analysis:
            p: PerformanceParams = ctx.params
            counter.bump(f"performance {p.focus} {p.service}")
            return Analysis(summary={"focus": p.focus, "service": p.service})

    reg = Registry({})
    for cls in (Probe, Cost, Performance):
        reg.register(cls)
    return reg
