"""The ``infrastructure`` automation: warm capacity ahead of weekly demand peaks.

Imports stay light here; numpy and the Google clients load when a run needs them.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel

from ...automation import Analysis, Automation, RunContext, Verification
from ...models import Action, Run
from .models import InfrastructureParams, InfrastructureSettings


class InfrastructureAutomation(Automation):
    name: ClassVar[str] = "infrastructure"
    description: ClassVar[str] = (
        "Build an hour-of-week demand profile from request counts and schedule Cloud Run min "
        "instances an hour ahead of peaks (floor at quiet hours), with a max-instances ceiling"
    )
    Settings: ClassVar[type[BaseModel]] = InfrastructureSettings
    Params: ClassVar[type[BaseModel]] = InfrastructureParams

    def __init__(self, *, monitoring_client: Any = None, run_client: Any = None) -> None:
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

        return engine.verify(ctx, action, self.run_client)

    def rollback(self, ctx: RunContext, action: Action) -> None:
        from . import engine

        evidence = engine.rollback(ctx, action, self.run_client)
        action.result = {**action.result, "rollback": evidence}

    def render(self, run: Run, console: Any) -> None:
        from .render import render

        render(run, console)
