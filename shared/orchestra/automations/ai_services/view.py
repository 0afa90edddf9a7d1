"""The ai-services automation's sections of the console's run page, drawn from the stored report.

Per model and per route × model: monthly cost and P95 latency as bars (the costliest
:data:`MAX_BARS`), every stored row in a table beneath. Models without a configured price have
no cost bar; the table says "–" for them.
"""

from __future__ import annotations

from typing import Any

from ...console.views import Bar, BarChart, RunView, Section, Table
from ...models import Run

MAX_BARS = 12


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _bars(rows: list[dict[str, Any]], label: Any, field: str) -> list[Bar]:
    return [
        Bar(label=label(r), value=value)
        for r in rows[:MAX_BARS]
        if (value := _number(r.get(field))) is not None
    ]


def _section(
    title: str, rows: list[dict[str, Any]], label: Any, key_columns: list[str], total: int
) -> Section:
    items: list[Any] = []
    shown = f" (the costliest {min(len(rows), MAX_BARS)} of {total})" if total > MAX_BARS else ""
    cost = _bars(rows, label, "monthly_cost")
    if cost:
        items.append(BarChart(title=f"Monthly cost {title}{shown}", y_label="USD per month", bars=cost))
    latency = _bars(rows, label, "latency_p95_ms")
    if latency:
        items.append(BarChart(title=f"P95 latency {title}{shown}", y_label="P95 latency (ms)", bars=latency))
    items.append(
        Table(
            caption=f"Usage {title}",
            columns=[*key_columns, "requests", "USD per month", "P50 ms", "P95 ms", "errors", "429s"],
            rows=[
                [
                    *(str(r.get(k)) for k in key_columns),
                    r.get("requests"),
                    _number(r.get("monthly_cost")),
                    _number(r.get("latency_p50_ms")),
                    _number(r.get("latency_p95_ms")),
                    _number(r.get("error_rate")),
                    _number(r.get("throttle_rate")),
                ]
                for r in rows
            ],
        )
    )
    return Section(title=f"Cost and latency {title}", items=items)


def _rows(summary: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [r for r in summary.get(name) or [] if isinstance(r, dict)]


def run_view(run: Run) -> RunView | None:
    summary = run.summary or {}
    if not summary:
        return None  # a failed run has no report; the run's error says why
    models = _rows(summary, "by_model")
    pairs = _rows(summary, "by_route_model")
    sections = [
        _section(
            "per model",
            models,
            lambda r: str(r.get("model")),
            ["model"],
            int(summary.get("models_total") or len(models)),
        )
    ]
    if pairs:
        sections.append(
            _section(
                "per route and model",
                pairs,
                lambda r: f"{r.get('route')} · {r.get('model')}",
                ["route", "model"],
                len(pairs),
            )
        )
    else:  # a run stored before pairs were kept: per route
        routes = _rows(summary, "by_route")
        sections.append(
            _section(
                "per route",
                routes,
                lambda r: str(r.get("route")),
                ["route"],
                int(summary.get("routes_total") or len(routes)),
            )
        )
    return RunView(sections=sections)
