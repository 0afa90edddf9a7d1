"""The ``workspace`` automation: git repository analysis and safe optimizations.

Imports stay light (pydantic models only); git work loads when a run analyses or applies.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

from ...automation import Analysis, Automation, RunContext, Verification
from ...models import Action, Run, TriggerKind
from .settings import WorkspaceParams, WorkspaceSettings

if TYPE_CHECKING:
    import click


class WorkspaceAutomation(Automation):
    name: ClassVar[str] = "workspace"
    description: ClassVar[str] = (
        "Analyse a git repository (size against the limit, loose objects and packs, largest blobs in "
        "history, checkout shape, LFS candidates, merged branches, stale remote refs) and apply safe "
        "optimizations (gc, prune stale refs, delete merged branches, remove ignored caches)"
    )
    Settings: ClassVar[type[BaseModel]] = WorkspaceSettings
    Params: ClassVar[type[BaseModel]] = WorkspaceParams

    @classmethod
    def cli(cls) -> tuple[click.Command, ...]:
        """`orchestra workspace …` and `orchestra hooks …`."""
        from .cli import hooks_group, workspace_group

        return (workspace_group, hooks_group)

    def analyze(self, ctx: RunContext) -> Analysis:
        from .analysis import analyze_repository

        params: WorkspaceParams = ctx.params
        ctx.progress(f"workspace: analysing {params.repo}")
        # The weekly scheduled run is the full optimization: fresh history walk and git gc.
        scheduled = ctx.run.trigger_kind == TriggerKind.scheduled
        result = analyze_repository(
            params.repo,
            ctx.settings,
            full=params.full or scheduled,
            query_remotes=params.query_remotes,
            scheduled=scheduled,
        )
        return Analysis(findings=result.findings, actions=result.actions, summary=result.report)

    def prepare(self, ctx: RunContext, action: Action) -> dict[str, Any]:
        from . import actions

        return actions.prepare(action)

    def apply(self, ctx: RunContext, action: Action) -> dict[str, Any]:
        from . import actions

        ctx.progress(f"workspace: {action.description}")
        return actions.apply(action)

    def verify(self, ctx: RunContext, action: Action) -> Verification:
        from . import actions

        return actions.verify(action)

    def rollback(self, ctx: RunContext, action: Action) -> None:
        from . import actions

        evidence = actions.rollback(action)
        action.result = {**action.result, "rollback": evidence}

    def render(self, run: Run, console: Any) -> None:
        from .render import render_report

        if run.summary:
            render_report(run.summary, console)
