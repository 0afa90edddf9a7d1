"""The testing automation's sections of the console's run page, drawn from the stored report.

- Flaky tests: flake rate and flip rate of the top :data:`MAX_BARS` flaky tests as bars, and
  their outcomes over the last runs as a grid (failed, passed after a rerun, passed); every
  flaky test the run kept in a table.
- Suites run: each suite's counts and duration as a table.
"""

from __future__ import annotations

from typing import Any

from ...console.views import Bar, BarChart, Heatmap, RunView, Section, Table
from ...models import Run

MAX_BARS = 10
# Shade of each outcome letter in the outcome grid (see flaky.outcome_letter).
OUTCOME_VALUE = {"F": 1.0, "R": 0.5, "P": 0.0}


def _rate(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _name(item: dict[str, Any]) -> str:
    return f"{item.get('test')} ({item.get('suite')})"


def _percent_bars(items: list[dict[str, Any]], field: str) -> list[Bar]:
    return [
        Bar(label=_name(i), value=round(rate * 100, 1))
        for i in items[:MAX_BARS]
        if (rate := _rate(i.get(field))) is not None
    ]


def outcome_grid(items: list[dict[str, Any]]) -> Heatmap | None:
    """Rows: the top flaky tests; columns: their last runs, oldest first, aligned on the newest
    (a test with a shorter history has empty cells on the left)."""
    rows = [(i, str(i.get("recent") or "")) for i in items[:MAX_BARS]]
    rows = [(i, recent) for i, recent in rows if recent]
    if not rows:
        return None
    width = max(len(recent) for _, recent in rows)
    values: list[list[float | None]] = [
        [None] * (width - len(recent)) + [OUTCOME_VALUE.get(letter) for letter in recent]
        for _, recent in rows
    ]
    return Heatmap(
        title="Outcomes over the last runs (1 failed, 0.5 passed after a rerun, 0 passed; newest on the right)",
        rows=[_name(i) for i, _ in rows],
        columns=[str(n) for n in range(width - 1, -1, -1)],
        values=values,
    )


def flaky_section(items: list[dict[str, Any]], runs: int) -> Section:
    charts: list[Any] = []
    flake = _percent_bars(items, "flake_rate")
    if flake:
        charts.append(
            BarChart(title="Flake rate of the flakiest tests", y_label="flake rate (%)", bars=flake)
        )
    flips = _percent_bars(items, "flip_rate")
    if flips:
        charts.append(
            BarChart(
                title="Flip rate of the same tests (outcome changes per run)",
                y_label="flip rate (%)",
                bars=flips,
            )
        )
    grid = outcome_grid(items)
    if grid is not None:
        charts.append(grid)
    table = Table(
        caption=f"Flaky tests ({len(items)}, from {runs} stored suite runs)",
        columns=["test", "suite", "flake rate", "flip rate", "runs", "failures", "quarantine", "why"],
        rows=[
            [
                str(i.get("test")),
                str(i.get("suite")),
                _rate(i.get("flake_rate")),
                _rate(i.get("flip_rate")),
                i.get("runs"),
                i.get("failures"),
                "suggested" if i.get("quarantine") else "",
                "; ".join(str(r) for r in i.get("reasons") or []),
            ]
            for i in items
        ],
    )
    return Section(title="Flaky tests", items=[*charts, table])


def suites_section(suites: list[dict[str, Any]]) -> Section:
    rows = []
    for s in suites:
        counts = s.get("counts") if isinstance(s.get("counts"), dict) else {}
        rows.append(
            [
                str(s.get("suite")),
                str(s.get("status")),
                counts.get("tests", 0),
                counts.get("failed", 0) + counts.get("error", 0),
                counts.get("skipped", 0),
                _rate(s.get("duration_seconds")),
                str(s.get("revision") or ""),
            ]
        )
    return Section(
        title="Suites run",
        items=[
            Table(
                caption="Suites run",
                columns=["suite", "status", "tests", "failed", "skipped", "seconds", "revision"],
                rows=rows,
            )
        ],
    )


def run_view(run: Run) -> RunView | None:
    summary = run.summary or {}
    if not summary:
        return None  # a failed run has no report; the run's error says why
    flaky = [i for i in summary.get("flaky") or [] if isinstance(i, dict)]
    suites = [s for s in summary.get("suites_run") or [] if isinstance(s, dict)]
    sections = []
    if suites:
        sections.append(suites_section(suites))
    sections.append(flaky_section(flaky, int(summary.get("history_runs") or 0)))
    return RunView(sections=sections)
