"""`orchestra workspace …` and `orchestra hooks …`: repository analysis, the pre-commit check,
safe optimizations, and git hook installation (the workspace automation's ``cli()``)."""

from __future__ import annotations

import sys
from typing import Any

import click
from rich.markup import escape

from ...config import Config
from ...models import Mode, TriggerKind
from ...toolkit.cli import (
    EXIT_FAILED,
    EXIT_OK,
    config_option,
    console,
    current_identity,
    format_option,
    handle_errors,
    open_config,
    print_json,
    run_exit_code,
    store_options,
)
from .hook import TASK, execute


def _settings(config: Config) -> Any:
    from .settings import WorkspaceSettings

    return config.settings_for(TASK, WorkspaceSettings)


def _repo_option(fn: Any) -> Any:
    return click.option(
        "--repo",
        default=".",
        show_default=True,
        type=click.Path(file_okay=False),
        help="Repository (work tree or bare).",
    )(fn)


@click.group("workspace")
def workspace_group() -> None:
    """Git repository analysis, the pre-commit check and safe optimizations."""


@workspace_group.command("analyze")
@_repo_option
@click.option("--full", is_flag=True, help="Walk all history again instead of updating the cached walk.")
@click.option(
    "--query-remotes/--no-query-remotes",
    default=None,
    help="Ask remotes which remote-tracking refs are stale (network; default from settings).",
)
@config_option
@format_option
@handle_errors
def analyze_cmd(
    repo: str, full: bool, query_remotes: bool | None, config_path: str | None, output_format: str
) -> None:
    """Analyse REPO: size against the limit, objects, largest blobs, checkout, branches, caches.

    Analysis never changes the repository; it keeps a cache of the history walk in
    $GIT_COMMON_DIR/orchestra/ so the next run only walks new commits.
    """
    from .analysis import analyze_repository

    settings = _settings(open_config(config_path))
    result = analyze_repository(repo, settings, full=full, query_remotes=query_remotes)
    if output_format == "json":
        print_json(result.to_json())
        return
    from .render import render_report

    render_report(result.report, console)
    console.print()
    _print_findings(result.findings, result.actions)


def _print_findings(findings: list[Any], actions: list[Any]) -> None:
    from rich.table import Table

    from ...models import SEVERITY_ORDER
    from ...toolkit.runs_view import SEVERITY_STYLE

    if findings:
        table = Table(box=None, pad_edge=False, show_header=True, header_style="bold")
        table.add_column("severity")
        table.add_column("finding")
        for finding in sorted(findings, key=lambda f: -SEVERITY_ORDER[f.severity]):
            style = SEVERITY_STYLE.get(finding.severity, "")
            table.add_row(f"[{style}]{finding.severity}[/]", escape(finding.summary))
        console.print(table)
    else:
        console.print("[green]no findings[/]")
    if actions:
        table = Table(box=None, pad_edge=False, show_header=True, header_style="bold", title_justify="left")
        table.add_column("proposed action")
        table.add_column("risk")
        for action in actions:
            table.add_row(escape(action.description), action.risk)
        console.print(table)
        console.print("[dim]apply with: orchestra workspace optimize (level 1: low risk, 2: + medium)[/]")


@workspace_group.command("check")
@click.option(
    "--analyze-only", is_flag=True, help="Accepted for the pre-commit hook; the check never changes anything."
)
@_repo_option
@click.option(
    "--max-kb", type=click.IntRange(min=1), help="Size limit for staged files (default from settings)."
)
@config_option
@format_option
@handle_errors
def check_cmd(
    analyze_only: bool, repo: str, max_kb: int | None, config_path: str | None, output_format: str
) -> None:
    """Pre-commit check of the STAGED changes: exit 1 on a file above the size limit or a
    merge-conflict marker (with why and how to fix), else exit 0 quietly."""
    from .precommit import check_staged, report

    del analyze_only
    settings = _settings(open_config(config_path))
    result = check_staged(
        repo,
        max_kb=max_kb or settings.precommit_max_kb,
        conflict_markers=settings.precommit_conflict_markers,
        inherit_repo_env=repo == ".",
    )
    if output_format == "json":
        print_json(
            {
                "blocked": result.blocked,
                "staged": result.staged,
                "problems": [problem.__dict__ for problem in result.problems],
            }
        )
    else:
        report(result)
    sys.exit(EXIT_FAILED if result.blocked else EXIT_OK)


@workspace_group.command("optimize")
@_repo_option
@click.option("--environment", help="Environment whose gates apply (default from config).")
@click.option(
    "--automation-level",
    type=click.IntRange(0, 3),
    help="1: low-risk actions (gc, stale refs, caches); 2: also delete merged branches (default from config).",
)
@click.option("--mode", type=click.Choice([m.value for m in Mode]), default="apply", show_default=True)
@click.option("--full", is_flag=True, help="Full optimization: git gc and a fresh history walk.")
@click.option(
    "--query-remotes/--no-query-remotes", default=None, help="Ask remotes for stale refs (network)."
)
@click.option(
    "--trigger",
    type=click.Choice(["manual", "hook", "scheduled"]),
    default="manual",
    show_default=True,
    help="How this run was triggered (recorded with the run).",
)
@store_options
def optimize_cmd(
    repo: str,
    environment: str | None,
    automation_level: int | None,
    mode: str,
    full: bool,
    query_remotes: bool | None,
    trigger: str,
    config_path: str | None,
    store_url_opt: str | None,
    output_format: str,
) -> None:
    """Apply the safe optimizations the analysis proposes, within the automation level: gc when
    git's thresholds say so, prune stale remote-tracking refs, delete merged branches (level 2),
    remove ignored cache directories. Every change is recorded with its rollback data."""
    config = open_config(config_path)
    run, sizes = execute(
        config,
        store_url_opt,
        repo=repo,
        mode=Mode(mode),
        environment=environment,
        automation_level=automation_level,
        trigger_kind=TriggerKind(trigger),
        requested_by=current_identity(),
        full=full,
        query_remotes=query_remotes,
    )
    if output_format == "json":
        print_json({"run": run.model_dump(mode="json"), "sizes": sizes})
    else:
        from ...toolkit.runs_view import print_run_details, runs_table

        console.print(runs_table([run]))
        print_run_details(console, run)
        if sizes:
            console.print(sizes["summary"], highlight=False)
    sys.exit(run_exit_code([run]))


@click.group("hooks")
def hooks_group() -> None:
    """Install or remove the git hooks (pre-commit check, post-merge optimize)."""


_HOOK_CHOICE = click.Choice(["pre-commit", "post-merge"])


@hooks_group.command("install")
@_repo_option
@click.option(
    "--hook", "hooks", multiple=True, type=_HOOK_CHOICE, help="Only this hook (repeatable; default both)."
)
@format_option
@handle_errors
def hooks_install(repo: str, hooks: tuple[str, ...], output_format: str) -> None:
    """Install the hooks into REPO (honours core.hooksPath). An existing hook is kept as
    <hook>.local and runs first; re-running updates the hooks in place."""
    from . import hooks as hooks_module

    results = hooks_module.install(repo, hooks or hooks_module.HOOKS)
    _print_hooks(results, output_format)


@hooks_group.command("uninstall")
@_repo_option
@click.option(
    "--hook", "hooks", multiple=True, type=_HOOK_CHOICE, help="Only this hook (repeatable; default both)."
)
@format_option
@handle_errors
def hooks_uninstall(repo: str, hooks: tuple[str, ...], output_format: str) -> None:
    """Remove our hooks from REPO, putting back any hook they had chained."""
    from . import hooks as hooks_module

    results = hooks_module.uninstall(repo, hooks or hooks_module.HOOKS)
    _print_hooks(results, output_format)


def _print_hooks(results: list[Any], output_format: str) -> None:
    if output_format == "json":
        print_json([r.__dict__ for r in results])
        return
    for result in results:
        console.print(f"{result.name}: {result.status} ({escape(result.path)})", highlight=False)


@click.group()
def _standalone() -> None:
    """Workspace commands without the rest of the CLI."""


_standalone.add_command(workspace_group)
_standalone.add_command(hooks_group)

if __name__ == "__main__":
    _standalone(prog_name="orchestra")
