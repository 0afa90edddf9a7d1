"""Daily cost series, anomaly detection and month-end forecasts, vectorised with numpy.

Baseline (per series, per evaluated day): the trailing ``window_days`` days, split by weekday.
The expected value is the median of the same weekday in the window (weekday-aware) or of the
whole window; the noise scale is 1.4826 x the median absolute deviation of the window from its
weekday medians. A day is anomalous when it exceeds the expectation by *all* of: a relative
margin, an absolute margin (currency units) and ``noise_sigmas`` noise scales. Medians keep an
earlier spike from raising the baseline of the days after it.

Two shapes of a real export are not anomalies day after day:

- a series that starts (a new service, or one back after a week or more without cost) has no
  baseline yet: its first day with cost is judged against the window as it is (for a new
  service: zero, so new spend above the margins is reported once), the next
  ``window_days - 1`` days are not judged, until a full window of its history exists;
- a charge billed on the first of each month (subscriptions, support, licences): on the 1st the
  expectation is at least the cost of the previous month's 1st, when the data covers it.

A step up that stays (credits that ended, a larger deployment) is reported on each day until the
trailing medians reach the new level (weekday-aware, 28 days: until three of the four same
weekdays hold it): each of those days costs more than the history says it should.
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ...models import Severity

if TYPE_CHECKING:
    from . import AnomalySettings, Budget
    from .billing import BillingData


@dataclass
class DailySeries:
    """A dense [series x day] matrix of net cost; ``keys`` is (project, service[, sku]) codes."""

    values: np.ndarray
    keys: np.ndarray  # shape (n, 2) or (n, 3)
    first_day: int  # date ordinal of column 0

    @property
    def days(self) -> int:
        return int(self.values.shape[1])

    def date(self, column: int) -> dt.date:
        return dt.date.fromordinal(self.first_day + column)


def daily_series(data: BillingData, *, by_sku: bool = False) -> DailySeries:
    first = int(data.day.min())
    ndays = int(data.day.max()) - first + 1
    nproj, nsvc, nsku = len(data.project_names), len(data.service_names), len(data.sku_names)
    key = data.project.astype(np.int64) * nsvc + data.service
    if by_sku:
        key = key * nsku + data.sku
    uniq, inverse = np.unique(key, return_inverse=True)
    flat = inverse.astype(np.int64) * ndays + (data.day - first)
    values = np.bincount(flat, weights=data.net, minlength=len(uniq) * ndays).reshape(len(uniq), ndays)
    if by_sku:
        sku = uniq % nsku
        rest = uniq // nsku
        keys = np.stack([rest // nsvc, rest % nsvc, sku], axis=1)
    else:
        keys = np.stack([uniq // nsvc, uniq % nsvc], axis=1)
    del nproj
    return DailySeries(values=values, keys=keys, first_day=first)


@dataclass
class Baseline:
    """For days ``start..days-1``: expected value and noise scale per series."""

    start: int
    expected: np.ndarray  # (n, days - start)
    scale: np.ndarray


def baseline(values: np.ndarray, window: int, weekday_aware: bool, *, block: int = 4_000_000) -> Baseline:
    n, ndays = values.shape
    count = ndays - window
    if count <= 0:
        empty = np.zeros((n, 0))
        return Baseline(start=window, expected=empty, scale=empty)
    expected = np.empty((n, count))
    scale = np.empty((n, count))
    weeks = window // 7
    # windows[i, t] covers days t .. t+window-1, the history of day t+window
    windows = sliding_window_view(values[:, :-1], window, axis=1)
    rows_per_block = max(1, block // max(1, count * window))
    for lo in range(0, n, rows_per_block):
        hi = min(n, lo + rows_per_block)
        # reverse to lags 1..window, then [week, lag-in-week]: column 6 is the same weekday
        lagged = windows[lo:hi, :, ::-1].reshape(hi - lo, count, weeks, 7)
        per_weekday = np.median(lagged, axis=2)  # (rows, count, 7)
        residual = np.abs(lagged - per_weekday[:, :, None, :])
        scale[lo:hi] = 1.4826 * np.median(residual.reshape(hi - lo, count, window), axis=2)
        if weekday_aware:
            expected[lo:hi] = per_weekday[:, :, 6]
        else:
            expected[lo:hi] = np.median(lagged.reshape(hi - lo, count, window), axis=2)
    return Baseline(start=window, expected=expected, scale=scale)


@dataclass
class Anomaly:
    series: int
    column: int
    actual: float
    expected: float
    scale: float

    @property
    def delta(self) -> float:
        return self.actual - self.expected


def detect(series: DailySeries, settings: AnomalySettings, *, last_days: int | None) -> list[Anomaly]:
    """Anomalous (series, day) cells in the last ``last_days`` evaluable days (None: all)."""
    base = baseline(series.values, settings.window_days, settings.weekday_aware)
    if base.expected.shape[1] == 0:
        return []
    actual = series.values[:, base.start :]
    expected = _with_monthly_charges(series, base)
    delta = actual - expected
    flagged = (
        (delta > settings.relative_margin * np.maximum(expected, 0.0))
        & (delta > settings.absolute_margin)
        & (delta > settings.noise_sigmas * base.scale)
        & _judged(series.values, settings.window_days)[:, base.start :]
    )
    if last_days is not None:
        flagged[:, : max(0, flagged.shape[1] - last_days)] = False
    rows, cols = np.nonzero(flagged)
    found = [
        Anomaly(
            series=int(r),
            column=int(c) + base.start,
            actual=float(actual[r, c]),
            expected=float(expected[r, c]),
            scale=float(base.scale[r, c]),
        )
        for r, c in zip(rows, cols, strict=True)
    ]
    found.sort(key=lambda a: (-a.delta, a.column, a.series))
    return found


# A day "has cost" from one cent (either sign): sub-cent rounding rows do not start a series.
ACTIVE_COST = 0.01
# Days without cost after which cost again is a new start: a whole week leaves a hole in the
# history of every weekday.
QUIET_DAYS = 7


def _judged(values: np.ndarray, window: int) -> np.ndarray:
    """[series x day]: False for the days after a series starts, until a full window of its history.

    A series starts on a day with cost preceded by no cost at all since the data began, or by at
    least ``QUIET_DAYS`` days without cost. The start day itself is judged.
    """
    n, ndays = values.shape
    idx = np.broadcast_to(np.arange(ndays), (n, ndays))
    active = np.abs(values) >= ACTIVE_COST
    last_active = np.maximum.accumulate(np.where(active, idx, -1), axis=1)
    before = np.full((n, ndays), -1)
    before[:, 1:] = last_active[:, :-1]  # last day with cost strictly before each day
    starts = active & (idx >= 1) & ((before < 0) | (idx - before > QUIET_DAYS))
    last_start = np.maximum.accumulate(np.where(starts, idx, -1), axis=1)
    young = (last_start >= 0) & (idx - last_start < window) & (idx != last_start)
    return ~young


def _with_monthly_charges(series: DailySeries, base: Baseline) -> np.ndarray:
    """The expectation, raised on each 1st of a month to the previous month's 1st when known."""
    expected = base.expected
    raised: np.ndarray | None = None
    for offset in range(expected.shape[1]):
        column = base.start + offset
        date = series.date(column)
        if date.day != 1:
            continue
        previous = (
            date.replace(year=date.year - 1, month=12)
            if date.month == 1
            else date.replace(month=date.month - 1)
        )
        prior = previous.toordinal() - series.first_day
        if prior < 0:
            continue
        if raised is None:
            raised = expected.copy()
        raised[:, offset] = np.maximum(expected[:, offset], series.values[:, prior])
    return expected if raised is None else raised


def evaluable_days(series: DailySeries, settings: AnomalySettings) -> int:
    return max(0, series.days - settings.window_days)


def severity_for(delta: float, settings: AnomalySettings) -> Severity:
    levels = settings.severity
    if delta >= levels.critical:
        return Severity.critical
    if delta >= levels.high:
        return Severity.high
    if delta >= levels.medium:
        return Severity.medium
    return Severity.low


def top_skus(
    data: BillingData, project: int, service: int, column: int, first_day: int, settings: AnomalySettings
) -> list[dict[str, Any]]:
    """The SKUs of one project/service whose increase explains an anomalous day."""
    window = settings.window_days
    day = first_day + column
    mask = (
        (data.project == project) & (data.service == service) & (data.day >= day - window) & (data.day <= day)
    )
    if not mask.any():
        return []
    skus = data.sku[mask]
    uniq, inverse = np.unique(skus, return_inverse=True)
    offset = data.day[mask] - (day - window)
    values = np.bincount(
        inverse.astype(np.int64) * (window + 1) + offset,
        weights=data.net[mask],
        minlength=len(uniq) * (window + 1),
    ).reshape(len(uniq), window + 1)
    base = baseline(values, window, settings.weekday_aware)
    actual = values[:, -1]
    expected = base.expected[:, -1]
    deltas = actual - expected
    order = np.argsort(-deltas, kind="stable")[: settings.top_skus]
    return [
        {
            "sku": data.sku_names[int(uniq[i])],
            "actual": round(float(actual[i]), 2),
            "expected": round(float(expected[i]), 2),
            "delta": round(float(deltas[i]), 2),
        }
        for i in order
        if deltas[i] > 0
    ]


@dataclass
class BudgetStatus:
    name: str
    amount: float
    month: str
    as_of: str
    month_to_date: float
    forecast: float
    days_elapsed: int
    days_in_month: int
    alert_threshold: float
    method: str

    @property
    def alert(self) -> bool:
        return self.forecast > self.amount * self.alert_threshold

    def severity(self) -> Severity:
        if self.month_to_date > self.amount:
            return Severity.critical
        if self.forecast > self.amount:
            return Severity.high
        return Severity.medium

    def as_dict(self) -> dict[str, Any]:
        return {
            "budget": self.name,
            "amount": round(self.amount, 2),
            "month": self.month,
            "as_of": self.as_of,
            "month_to_date": round(self.month_to_date, 2),
            "forecast": round(self.forecast, 2),
            "forecast_share": round(self.forecast / self.amount, 4),
            "days_elapsed": self.days_elapsed,
            "days_in_month": self.days_in_month,
            "alert": self.alert,
            "method": self.method,
        }


def budget_status(
    series: DailySeries, data: BillingData, budget: Budget, *, as_of_column: int, window_days: int
) -> BudgetStatus:
    """Month-to-date and month-end forecast of the series a budget covers.

    The forecast adds, for each remaining day of the month, the median of the same weekday over
    the trailing ``window_days``: a one-day spike does not inflate the month, a weekly cycle is
    kept.
    """
    select = np.ones(len(series.keys), dtype=bool)
    if budget.projects is not None:
        wanted = {i for i, name in enumerate(data.project_names) if name in set(budget.projects)}
        select &= np.isin(series.keys[:, 0], list(wanted))
    if budget.services is not None:
        wanted = {i for i, name in enumerate(data.service_names) if name in set(budget.services)}
        select &= np.isin(series.keys[:, 1], list(wanted))
    total = series.values[select].sum(axis=0)

    as_of = series.date(as_of_column)
    days_in_month = calendar.monthrange(as_of.year, as_of.month)[1]
    month_start_col = as_of_column - (as_of.day - 1)
    mtd = float(total[max(0, month_start_col) : as_of_column + 1].sum())
    history = total[max(0, as_of_column + 1 - window_days) : as_of_column + 1]
    remaining = days_in_month - as_of.day
    forecast_rest = 0.0
    for ahead in range(1, remaining + 1):
        # same weekday as as_of + ahead: lags 7-ahead%7 ... inside the history (lag 0 = as_of)
        lag = (7 - ahead % 7) % 7
        picks = history[::-1][lag::7]
        if len(picks) == 0:
            picks = history
        forecast_rest += float(np.median(picks)) if len(picks) else 0.0
    partial = month_start_col < 0
    method = f"month-to-date + same-weekday median of the last {min(window_days, len(history))} days"
    if partial:
        method += " (data starts inside the month: month-to-date is partial)"
    return BudgetStatus(
        name=budget.name,
        amount=budget.amount,
        month=f"{as_of.year:04d}-{as_of.month:02d}",
        as_of=as_of.isoformat(),
        month_to_date=mtd,
        forecast=mtd + forecast_rest,
        days_elapsed=as_of.day,
        days_in_month=days_in_month,
        alert_threshold=budget.alert_threshold,
        method=method,
    )
