"""The ``performance`` automation: sustained threshold breaches -> Cloud Run setting changes.

Imports stay light here (pydantic models only); numpy and the Google clients load when a run
analyses, applies or verifies.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel

from ...automation import Analysis, Automation, RunContext, Verification
from ...models import Action, Run
from .models import PerformanceParams, PerformanceSettings


class PerformanceAutomation(Automation):
    name: ClassVar[str] = "performance"
    description: ClassVar[str] = (
        "Find sustained CPU, memory, P95 latency and error-rate breaches in Cloud Run metrics and "
        "change vCPU, memory, concurrency, min/max instances or startup CPU boost to fix them"
    )
    Settings: ClassVar[type[BaseModel]] = PerformanceSettings
    Params: ClassVar[type[BaseModel]] = PerformanceParams

    def __init__(self, *, monitoring_client: Any = None, run_client: Any = None) -> None:
        # Injected in tests; None means the real Google clients, created on first use.
        self.monitoring_client = monitoring_client
        self.run_client = run_client

    def analyze(self, ctx: RunContext) -> Analysis:
        from . import engine

        return engine.analyze(ctx, monitoring_client=self.monitoring_client, run_client=self.run_client)

    def prepare(self, ctx: RunContext, action: Action) -> dict[str, Any]:
        from . import engine

        return engine.prepare(ctx, action, self.run_client)

    def apply(self, ctx: RunContext, action: Action) -> dict[str, Any]:
        from . import engine

        return engine.apply(ctx, action, self.run_client)

    def verify(self, ctx: RunContext, action: Action) -> Verification:
        from . import engine

        return engine.verify(ctx, action, self.monitoring_client, self.run_client)

    def rollback(self, ctx: RunContext, action: Action) -> None:
        from . import engine

        evidence = engine.rollback(ctx, action, self.run_client)
        action.result = {**action.result, "rollback": evidence}

    def render(self, run: Run, console: Any) -> None:
        from .render import render

        render(run, console)
