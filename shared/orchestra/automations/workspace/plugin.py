"""The ``workspace`` automation: git repository analysis and safe optimizations.

Imports stay light (pydantic models only); git work loads when a run analyses or applies.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

from ...automation import Analysis, Automation, RunContext, ScheduleTarget, Verification
from ...models import Action, Run, TriggerKind
from .settings import WorkspaceParams, WorkspaceSettings

if TYPE_CHECKING:
    import click

    from ...config import Config
    from ...console.views import RunView

NO_SOURCE = (
    "set automations.workspace.settings.source (a repository to clone); weekly maintenance runs in "
    "GitHub Actions (.github/workflows/workspace.yml)"
)


class WorkspaceAutomation(Automation):
    name: ClassVar[str] = "workspace"
    description: ClassVar[str] = (
        "Analyse a git repository (size against the limit, loose objects and packs, largest blobs in "
        "history, checkout shape, LFS candidates, merged branches, stale remote refs) and apply safe "
        "optimizations (gc, prune stale refs, delete merged branches, remove ignored caches)"
    )
    Settings: ClassVar[type[BaseModel]] = WorkspaceSettings
    Params: ClassVar[type[BaseModel]] = WorkspaceParams
    # Analysis runs read-only git commands (offline, no optional locks; `remote prune --dry-run`)
    # and reads earlier sizes from the store. It writes only its caches in
    # $GIT_COMMON_DIR/orchestra/, accepted as optimisations: each is replaced atomically, checked on
    # read (version, fingerprint, tree or pack identity) and holds the same facts for the same
    # repository, so a duplicate analysis rewrites them harmlessly. A configured source is cloned
    # into a temporary directory removed when the analysis ends.
    read_only_analysis: ClassVar[bool] = True

    @classmethod
    def schedule_blocker(cls, config: Config, target: ScheduleTarget) -> str | None:
        """A scheduled run names no repository: it clones ``settings.source``, else it analyses
        the working directory. A function in the cloud has no working copy; a continuous
        controller has one only when it runs inside a git repository."""
        settings = config.settings_for(cls.name, WorkspaceSettings)
        if settings.source is not None:
            return None
        if target == "cloud":
            return NO_SOURCE
        from .gitio import Git, GitError

        try:
            Git(os.getcwd()).run("rev-parse", "--git-dir", timeout=30)
        except (GitError, OSError, TimeoutError):
            return f"the working directory is not in a git repository; {NO_SOURCE}"
        return None

    @classmethod
    def cli(cls) -> tuple[click.Command, ...]:
        """`orchestra workspace …` and `orchestra hooks …`."""
        from .cli import hooks_group, workspace_group

        return (workspace_group, hooks_group)

    def analyze(self, ctx: RunContext) -> Analysis:
        from .analysis import analyze_repository

        params: WorkspaceParams = ctx.params
        settings: WorkspaceSettings = ctx.settings
        # The weekly scheduled run is the full optimization: fresh history walk and git gc.
        scheduled = ctx.run.trigger_kind == TriggerKind.scheduled
        if settings.source is not None and "repo" not in params.model_fields_set:
            return self._analyze_source(ctx, settings, params, scheduled)
        ctx.progress(f"workspace: analysing {params.repo}")
        result = analyze_repository(
            params.repo,
            settings,
            full=params.full or scheduled,
            query_remotes=params.query_remotes,
            scheduled=scheduled,
        )
        return Analysis(
            findings=result.findings, actions=result.actions, summary=self._with_sizes(ctx, result.report)
        )

    def _with_sizes(self, ctx: RunContext, report: dict[str, Any]) -> dict[str, Any]:
        """The report with ``size_history`` (see :mod:`.sizes`): the console charts the size over
        runs. The history is optional: a store that cannot be read leaves this run's size alone."""
        from pydantic import ValidationError

        from ...errors import TransientError
        from .sizes import point_of, size_history

        try:
            history = size_history(ctx.store, self.name, report, ctx.run.id, ctx.run.created_at)
        except (TransientError, ValidationError) as exc:  # unreachable store, unreadable earlier run
            ctx.log.warning("workspace: earlier sizes not read (%s: %s)", type(exc).__name__, exc)
            point = point_of(report, ctx.run.id, ctx.run.created_at)
            history = [point.model_dump(mode="json")] if point is not None else []
        return {**report, "size_history": history}

    def _analyze_source(
        self, ctx: RunContext, settings: WorkspaceSettings, params: WorkspaceParams, scheduled: bool
    ) -> Analysis:
        """Clone ``settings.source`` into temporary storage and analyse the clone. Nothing is
        proposed: the clone is gone once the run ends, so an action could act on nothing (the
        report says what an analysis of a working copy would propose)."""
        from .analysis import analyze_repository
        from .source import cloned

        assert settings.source is not None
        with cloned(settings.source, progress=ctx.progress) as clone:
            ctx.heartbeat()
            ctx.progress(f"workspace: analysing the clone of {clone.url}")
            result = analyze_repository(
                clone.path, settings, full=True, query_remotes=False, scheduled=scheduled
            )
        summary = {
            **result.report,
            "repo": clone.url,
            "source": {
                **clone.describe(),
                "actions_not_proposed": [a.description for a in result.actions],
            },
        }
        return Analysis(findings=result.findings, actions=[], summary=self._with_sizes(ctx, summary))

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

    def run_view(self, run: Run) -> RunView | None:
        """The largest blobs and the repository's size over runs."""
        from .view import run_view

        return run_view(run)

    def render(self, run: Run, console: Any) -> None:
        from .render import render_report

        if run.summary:
            render_report(run.summary, console)
