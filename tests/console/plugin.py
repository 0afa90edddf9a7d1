"""A plugin for the console's tests: findings and a high-risk action built from its parameters
(so hostile text reaches every page), and a run view using every chart primitive."""

from __future__ import annotations

import datetime as dt
from typing import Any

from orchestra.automation import Analysis, Automation, RunContext
from orchestra.console.views import (
    Bar,
    BarChart,
    Episode,
    Heatmap,
    LineChart,
    RunView,
    Section,
    Series,
    Table,
)
from orchestra.models import Action, Finding, Risk, Run, Severity
from orchestra.registry import Registry
from pydantic import BaseModel, ConfigDict

TASK = "console-demo"
T0 = dt.datetime(2026, 1, 5, 0, 0, tzinfo=dt.UTC)


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")

    branch: str = "main"
    message: str = "a commit"


class ConsoleDemo(Automation):
    name = TASK
    description = "console test plugin"
    Params = Params

    def analyze(self, ctx: RunContext) -> Analysis:
        params: Params = ctx.params
        return Analysis(
            findings=[
                Finding(
                    id="branch",
                    severity=Severity.high,
                    summary=f"branch {params.branch} is stale",
                    evidence={"branch": params.branch, "message": params.message},
                )
            ],
            actions=[
                Action(
                    id="delete-branch",
                    description=f"delete {params.branch}",
                    risk=Risk.high,
                    kind="delete",
                    params={"branch": params.branch},
                )
            ],
            summary={"cpu": [0.4, 0.9, 0.95, 0.5]},
        )

    def apply(self, ctx: RunContext, action: Action) -> dict[str, Any]:
        return {"deleted": action.params["branch"]}

    def run_view(self, run: Run) -> RunView:
        cpu = [float(v) for v in run.summary.get("cpu", [])]
        points = [(T0 + dt.timedelta(minutes=15 * i), v) for i, v in enumerate(cpu)]
        return RunView(
            sections=[
                Section(
                    title="CPU utilisation",
                    items=[
                        LineChart(
                            title="CPU of <svc>",
                            y_label="cpu",
                            series=[Series(name="cpu <p95>", points=points)],
                            threshold=0.7,
                            episodes=[Episode(start=points[1][0], end=points[2][0], label="breach")],
                        ),
                        BarChart(
                            title="Cost per day", bars=[Bar(label="mon", value=3), Bar(label="tue", value=5)]
                        ),
                        Heatmap(
                            title="Requests by hour",
                            rows=["mon", "tue"],
                            columns=["0", "1"],
                            values=[[1, 2], [3, None]],
                        ),
                        Table(caption="Raw", columns=["k", "v"], rows=[["branch", run.params.get("branch")]]),
                    ],
                )
            ]
        )


def register(registry: Registry) -> None:
    registry.register(ConsoleDemo)
