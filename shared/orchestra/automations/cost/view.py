"""The cost automation's sections of the console's run page, drawn from the stored run alone.

- Daily cost: one chart per stored project × service series (those with anomalies first, then
  the largest; :data:`~.charts.MAX_SERIES` at most), each reported anomaly shaded on its day
  and named (series, cost, expected, excess); the anomalies as a table.
- Budgets: per budget, the month's cumulative cost so far, the forecast to month end and the
  budget as a line; forecast against budget as a table.

Runs stored before the charts were kept show the tables only.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import ValidationError

from ...console.views import Episode, LineChart, RunView, Section, Series, Table
from ...models import Run
from ...toolkit.series import from_ms
from .charts import CostCharts, DailyCost

DAY = dt.timedelta(days=1)


def _day_start(date: str) -> dt.datetime | None:
    try:
        day = dt.date.fromisoformat(date)
    except ValueError:
        return None
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def _money(value: Any, currency: str) -> str:
    return f"{float(value):,.2f} {currency}".strip() if isinstance(value, int | float) else "–"


def _anomaly_key(row: dict[str, Any]) -> tuple[str, str, str | None]:
    return (str(row.get("project")), str(row.get("service")), row.get("sku"))


def _anomaly_episode(row: dict[str, Any], currency: str) -> Episode | None:
    start = _day_start(str(row.get("date", "")))
    if start is None:
        return None
    label = (
        f"anomaly {row.get('severity', '')}: {_money(row.get('actual'), currency)}, expected "
        f"{_money(row.get('expected'), currency)} (+{_money(row.get('delta'), currency)})"
    )
    return Episode(start=start, end=start + DAY, label=label)


def daily_section(charts: CostCharts, anomalies: list[dict[str, Any]], count: int) -> Section:
    by_key: dict[tuple[str, str, str | None], list[dict[str, Any]]] = {}
    for row in anomalies:
        by_key.setdefault(_anomaly_key(row), []).append(row)
    items: list[Any] = []
    charted: set[tuple[str, str, str | None]] = set()
    for daily in charts.daily:
        items.append(_daily_chart(daily, by_key.get(daily.key(), []), charts.currency))
        charted.add(daily.key())
    rows = [
        [
            row.get("date"),
            row.get("severity"),
            row.get("project"),
            str(row.get("service")) + (f" / {row['sku']}" if row.get("sku") else ""),
            row.get("actual"),
            row.get("expected"),
            row.get("delta"),
            "yes" if _anomaly_key(row) in charted else "no",
        ]
        for row in sorted(anomalies, key=lambda r: (str(r.get("date")), str(r.get("project"))))
    ]
    caption = (
        f"Anomalies ({len(anomalies)} shown of {count} found)" if count > len(anomalies) else "Anomalies"
    )
    items.append(
        Table(
            caption=caption,
            columns=["date", "severity", "project", "service", "actual", "expected", "excess", "charted"],
            rows=rows,
        )
    )
    shown = len(charts.daily)
    title = (
        f"Daily cost ({shown} of {charts.series_total} series: those with anomalies, then the largest)"
        if charts.series_total > shown
        else "Daily cost"
    )
    return Section(title=title, items=items)


def _daily_chart(daily: DailyCost, anomalies: list[dict[str, Any]], currency: str) -> LineChart:
    episodes = [e for row in anomalies if (e := _anomaly_episode(row, currency)) is not None]
    return LineChart(
        title=f"Daily net cost of {daily.label}" + (f" ({len(episodes)} anomalies)" if episodes else ""),
        y_label=f"net cost per day ({currency})" if currency else "net cost per day",
        series=[Series(name=daily.label, points=daily.series.points())],
        episodes=episodes,
    )


def budget_section(charts: CostCharts, budgets: list[dict[str, Any]]) -> Section:
    items: list[Any] = []
    currency = charts.currency
    for month in charts.budgets:
        points = month.cumulative.points()
        forecast: list[tuple[dt.datetime | float, float]] = []
        if points:
            forecast = [points[-1], (from_ms(month.month_end_ms), month.forecast)]
        series = [Series(name="month to date", points=list(points))]
        if forecast:
            series.append(Series(name="forecast", points=forecast))
        items.append(
            LineChart(
                title=f"Budget {month.budget}, {month.month}: forecast {_money(month.forecast, currency)} "
                f"against {_money(month.amount, currency)}",
                y_label=f"cumulative net cost ({currency})" if currency else "cumulative net cost",
                series=series,
                threshold=month.amount,
                threshold_label=f"budget {month.budget}",
            )
        )
    items.append(
        Table(
            caption="Forecast against budget",
            columns=[
                "budget",
                "month",
                "month to date",
                "forecast",
                "budget amount",
                "forecast share",
                "alert",
            ],
            rows=[
                [
                    b.get("budget"),
                    b.get("month"),
                    b.get("month_to_date"),
                    b.get("forecast"),
                    b.get("amount"),
                    f"{b['forecast_share']:.0%}"
                    if isinstance(b.get("forecast_share"), int | float)
                    else None,
                    "yes" if b.get("alert") else "no",
                ]
                for b in budgets
            ],
        )
    )
    return Section(title="Budgets: month-end forecast", items=items)


def run_view(run: Run) -> RunView | None:
    summary = run.summary or {}
    if not summary:
        return None  # a failed run has no report; the run's error says why
    try:
        charts = CostCharts.model_validate(summary.get("charts") or {})
    except ValidationError:
        charts = CostCharts()  # not what this version stores: tables only
    anomalies_part = summary.get("anomalies") or {}
    anomalies = [a for a in anomalies_part.get("top") or [] if isinstance(a, dict)]
    budgets = [b for b in summary.get("budgets") or [] if isinstance(b, dict)]
    sections = [daily_section(charts, anomalies, int(anomalies_part.get("count") or 0))]
    if budgets:
        sections.append(budget_section(charts, budgets))
    return RunView(sections=sections)
