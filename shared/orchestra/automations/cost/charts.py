"""What a cost run stores for its console page: bounded copies of the daily series and of each
budget's month so far.

The console draws a run from its stored document alone, so the analysis keeps, next to its
report, the daily net cost of at most :data:`MAX_SERIES` project × service series (those with a
reported anomaly first, then the largest), each downsampled to at most :data:`MAX_POINTS` days,
and per budget the cumulative cost of the month up to the last day of the data. Everything here
is well below Firestore's 1 MiB document limit (a few tens of kilobytes at most).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from ...toolkit.series import StoredSeries, downsample

if TYPE_CHECKING:
    from . import Budget
    from .analysis import DailySeries
    from .billing import BillingData

MAX_SERIES = 8
"""Daily series stored per run (and drawn, one chart each)."""
MAX_POINTS = 300
"""Days kept per stored series (min/max-preserving downsampling beyond that)."""
MAX_BUDGETS = 20
DAY_MS = 86_400_000


class _Stored(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DailyCost(_Stored):
    """One project × service (× SKU) series: net cost per day, at noon UTC of each day."""

    project: str
    service: str
    sku: str | None = None
    total: float = Field(description="net cost over the whole analysed period")
    series: StoredSeries

    @property
    def label(self) -> str:
        return f"{self.project} / {self.service}" + (f" / {self.sku}" if self.sku else "")

    def key(self) -> tuple[str, str, str | None]:
        return (self.project, self.service, self.sku)


class BudgetMonth(_Stored):
    """A budget's month: cumulative net cost per day so far, and the forecast at month end."""

    budget: str
    amount: float
    month: str
    month_to_date: float
    forecast: float
    month_end_ms: int = Field(description="noon UTC of the month's last day, epoch ms")
    cumulative: StoredSeries


class CostCharts(_Stored):
    currency: str = ""
    series_total: int = Field(0, ge=0, description="series in the analysis, of which `daily` are stored")
    daily: list[DailyCost] = Field(default_factory=list, max_length=MAX_SERIES)
    budgets: list[BudgetMonth] = Field(default_factory=list, max_length=MAX_BUDGETS)


def _noon_ms(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, 12, tzinfo=dt.UTC).timestamp() * 1000)


def _key_names(series: DailySeries, data: BillingData, row: int) -> tuple[str, str, str | None]:
    key = series.keys[row]
    sku = data.sku_names[int(key[2])] if len(key) > 2 else None
    return data.project_names[int(key[0])], data.service_names[int(key[1])], sku


def chart_series(
    series: DailySeries, data: BillingData, anomalies: list[dict[str, Any]], *, limit: int = MAX_SERIES
) -> list[int]:
    """Rows of ``series`` to store: those with a reported anomaly (largest cost first), then the
    largest others, at most ``limit``."""
    totals = series.values.sum(axis=1)
    flagged = {(a["project"], a["service"], a.get("sku")) for a in anomalies}
    ranked = sorted(range(len(series.keys)), key=lambda r: (-float(totals[r]), r))
    first = [r for r in ranked if _key_names(series, data, r) in flagged]
    chosen = set(first)
    return (first + [r for r in ranked if r not in chosen])[:limit]


def daily_costs(
    series: DailySeries, data: BillingData, anomalies: list[dict[str, Any]], *, max_points: int = MAX_POINTS
) -> list[DailyCost]:
    times = [_noon_ms(series.date(c)) for c in range(series.days)]
    out: list[DailyCost] = []
    for row in chart_series(series, data, anomalies):
        project, service, sku = _key_names(series, data, row)
        values = series.values[row]
        label = f"{project} / {service}" + (f" / {sku}" if sku else "")
        out.append(
            DailyCost(
                project=project,
                service=service,
                sku=sku,
                total=round(float(values.sum()), 2),
                series=downsample(label, times, values, unit=data.currency, max_points=max_points),
            )
        )
    return out


def _covered(series: DailySeries, data: BillingData, budget: Budget) -> Any:
    """The rows of ``series`` a budget covers (its projects and services; all when unset)."""
    import numpy as np

    select = np.ones(len(series.keys), dtype=bool)
    if budget.projects is not None:
        wanted = [i for i, name in enumerate(data.project_names) if name in set(budget.projects)]
        select &= np.isin(series.keys[:, 0], wanted)
    if budget.services is not None:
        wanted = [i for i, name in enumerate(data.service_names) if name in set(budget.services)]
        select &= np.isin(series.keys[:, 1], wanted)
    return select


def budget_months(
    series: DailySeries, data: BillingData, budgets: list[Budget], statuses: list[dict[str, Any]]
) -> list[BudgetMonth]:
    """Per budget (as many as :data:`MAX_BUDGETS`): the month's cumulative cost up to the last
    day of the data, and its forecast at month end (``statuses``: the report's budget rows)."""
    import calendar

    import numpy as np

    as_of_column = series.days - 1
    as_of = series.date(as_of_column)
    month_start = max(0, as_of_column - (as_of.day - 1))
    last_day = as_of.replace(day=calendar.monthrange(as_of.year, as_of.month)[1])
    out: list[BudgetMonth] = []
    for budget, status in list(zip(budgets, statuses, strict=True))[:MAX_BUDGETS]:
        total = series.values[_covered(series, data, budget)].sum(axis=0)
        cumulative = np.cumsum(total[month_start : as_of_column + 1])
        times = [_noon_ms(series.date(c)) for c in range(month_start, as_of_column + 1)]
        out.append(
            BudgetMonth(
                budget=budget.name,
                amount=budget.amount,
                month=status["month"],
                month_to_date=status["month_to_date"],
                forecast=status["forecast"],
                month_end_ms=_noon_ms(last_day),
                cumulative=downsample("month to date", times, cumulative, unit=data.currency),
            )
        )
    return out


def cost_charts(
    series: DailySeries,
    totals: DailySeries,
    data: BillingData,
    anomalies: list[dict[str, Any]],
    budgets: list[Budget],
    statuses: list[dict[str, Any]],
) -> dict[str, Any]:
    """The ``charts`` entry of a cost run's summary (JSON-ready). ``series``: the analysed series
    (per SKU or not); ``totals``: per project × service, as budgets read them."""
    charts = CostCharts(
        currency=data.currency,
        series_total=len(series.keys),
        daily=daily_costs(series, data, anomalies),
        budgets=budget_months(totals, data, budgets, statuses),
    )
    return charts.model_dump(mode="json")
