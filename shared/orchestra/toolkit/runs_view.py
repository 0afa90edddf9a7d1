"""Rich text output for runs.

Every value that comes from a run (task and environment names, reasons, errors, finding
summaries, action descriptions) is printed literally: as ``Text``, never parsed as markup or
emoji codes, whatever console it is printed on.
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..models import SEVERITY_ORDER, Run

STATUS_STYLE = {
    "succeeded": "green",
    "failed": "bold red",
    "skipped": "yellow",
    "awaiting_approval": "magenta",
    "awaiting_verification": "magenta",
    "rolled_back": "red",
    "running": "cyan",
    "queued": "cyan",
}
SEVERITY_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan", "info": "dim"}


def _duration(run: Run) -> str:
    if run.started_at and run.finished_at:
        return f"{(run.finished_at - run.started_at).total_seconds():.2f}s"
    return "-"


def runs_table(runs: list[Run], title: str = "Runs") -> Table:
    table = Table(title=title, title_justify="left")
    for col in ("run id", "task", "env", "mode", "lvl", "status", "findings", "actions", "time"):
        table.add_column(col, no_wrap=col in ("run id", "status", "task", "env", "mode"))
    for run in runs:
        style = STATUS_STYLE.get(run.status, "")
        table.add_row(
            Text(run.id),
            Text(run.task),
            Text(run.environment),
            Text(run.mode),
            Text(str(run.automation_level)),
            Text(run.status, style=style),
            Text(str(len(run.findings))),
            Text(str(len(run.actions))),
            Text(_duration(run)),
        )
    return table


def print_run_details(console: Console, run: Run, max_findings: int = 15) -> None:
    head = Text.assemble((run.task, "bold"), f" — {run.status}")
    if run.reason:
        head.append(f" — {run.reason}")
    console.print(head)
    if run.error:
        console.print(Text(f"  {run.error.type}: {run.error.message}", style="red"))
    if run.findings:
        table = Table(show_header=True, box=None, pad_edge=False)
        table.add_column("severity")
        table.add_column("finding")
        ordered = sorted(run.findings, key=lambda f: -SEVERITY_ORDER[f.severity])
        for finding in ordered[:max_findings]:
            style = SEVERITY_STYLE.get(finding.severity, "")
            table.add_row(Text(finding.severity, style=style), Text(finding.summary))
        console.print(table)
        if len(ordered) > max_findings:
            console.print(Text(f"  … and {len(ordered) - max_findings} more (use --format json)"))
    if run.actions:
        table = Table(show_header=True, box=None, pad_edge=False)
        for col in ("action", "risk", "status", "why"):
            table.add_column(col)
        for action in run.actions:
            table.add_row(
                Text(action.description), Text(action.risk), Text(action.status), Text(action.reason or "")
            )
        console.print(table)
