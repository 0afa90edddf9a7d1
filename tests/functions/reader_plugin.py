"""A probe whose analysis only reads (``read_only_analysis``), for the function benchmark and
tests: its runs are stored in one commit when they end. It counts its analyses in a file (a
measurement, not an effect the run guards: a duplicate delivery may analyse too)."""

from __future__ import annotations

from orchestra.automation import Analysis, Automation, RunContext
from orchestra.models import Finding, Severity
from orchestra.registry import Registry
from pydantic import BaseModel, ConfigDict

from tests.functions.plugins import bump


class ReaderParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    counter: str | None = None


class ReaderProbe(Automation):
    """Finds nothing to change; proposes no action."""

    name = "probe-reader"
    Params = ReaderParams
    read_only_analysis = True

    def analyze(self, ctx: RunContext) -> Analysis:
        bump(ctx.params.counter, f"analyze:{ctx.run.trigger_id}")
        return Analysis(
            findings=[
                Finding(id="probe.read", severity=Severity.info, summary=f"read for {ctx.run.trigger_id}")
            ]
        )


def register(registry: Registry) -> None:
    """Hook called by ``orchestra.app`` for ORCHESTRA_EXTRA_AUTOMATIONS."""
    registry.register(ReaderProbe)
