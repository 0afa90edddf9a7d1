"""Hour-of-week demand profile and the min-instances schedule derived from it.

Demand is requests per second: each sample's request count divided by the series' median
sampling interval. The profile is the P90 of demand in each of the 168 UTC hours of the week
(Monday 00:00 = slot 0). With less than a week of history some slots have no sample of their
own; those fall back to the same hour of the day across all days (daily cycle) — GCP's
predictive autoscaler likewise starts from 3 days and models daily and weekly cycles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ...metrics.base import MetricSeries

HOURS_PER_WEEK = 168
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MS_HOUR = 3_600_000
_MS_DAY = 86_400_000


def hour_of_week(t_ms: np.ndarray) -> np.ndarray:
    days = np.floor_divide(t_ms, _MS_DAY)
    weekday = (days + 3) % 7  # 1970-01-01 was a Thursday
    hour = np.floor_divide(t_ms, _MS_HOUR) % 24
    return (weekday * 24 + hour).astype(np.int64)


def slot_label(slot: int) -> str:
    return f"{DAYS[slot // 24]} {slot % 24:02d}:00"


@dataclass(frozen=True)
class Profile:
    p_rps: np.ndarray  # 168 values
    samples: np.ndarray  # 168 counts of own samples
    basis: list[str]  # "week" (own samples), "day" (hour-of-day fallback), "none"
    interval_s: float
    peak_rps: float
    history_days: float


def _grouped_percentile(
    keys: np.ndarray, values: np.ndarray, size: int, q: float
) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(keys, kind="stable")
    k, v = keys[order], values[order]
    bounds = np.searchsorted(k, np.arange(size + 1))
    out = np.full(size, np.nan)
    counts = np.diff(bounds)
    for slot in np.flatnonzero(counts):
        out[slot] = np.percentile(v[bounds[slot] : bounds[slot + 1]], q)
    return out, counts


def demand_profile(series: MetricSeries, percentile: float = 90.0) -> Profile:
    interval = series.median_interval_seconds()
    if interval is None or interval <= 0:
        raise ValueError("a demand profile needs at least two samples")
    rate = series.values / interval
    how = hour_of_week(series.t_ms)
    weekly, counts = _grouped_percentile(how, rate, HOURS_PER_WEEK, percentile)
    daily, _ = _grouped_percentile(how % 24, rate, 24, percentile)
    basis = []
    for slot in range(HOURS_PER_WEEK):
        if counts[slot]:
            basis.append("week")
        elif not math.isnan(daily[slot % 24]):
            weekly[slot] = daily[slot % 24]
            basis.append("day")
        else:
            weekly[slot] = 0.0
            basis.append("none")
    return Profile(
        p_rps=weekly,
        samples=counts,
        basis=basis,
        interval_s=interval,
        peak_rps=float(rate.max()),
        history_days=series.span_seconds / 86400,
    )


@dataclass(frozen=True)
class Schedule:
    min_instances: list[int]  # 168 values
    base: list[int]  # before warming ahead
    max_instances: int
    quiet: list[bool]


def build_schedule(
    profile: Profile,
    *,
    capacity_rps: float,
    floor: int,
    quiet_fraction: float,
    warm_ahead_hours: int,
    headroom_percent: float,
    max_instances_cap: int,
) -> Schedule:
    top = float(np.max(profile.p_rps)) if profile.p_rps.size else 0.0
    base: list[int] = []
    quiet: list[bool] = []
    for value in profile.p_rps.tolist():
        is_quiet = value <= quiet_fraction * top
        quiet.append(is_quiet)
        base.append(floor if is_quiet else max(floor, math.ceil(value / capacity_rps - 1e-9)))
    warmed = [
        max(base[(slot + k) % HOURS_PER_WEEK] for k in range(warm_ahead_hours + 1))
        for slot in range(HOURS_PER_WEEK)
    ]
    need_at_peak = math.ceil(profile.peak_rps * (1 + headroom_percent / 100) / capacity_rps - 1e-9)
    max_instances = min(max_instances_cap, max(1, need_at_peak, max(warmed, default=0)))
    warmed = [min(v, max_instances) for v in warmed]
    return Schedule(min_instances=warmed, base=base, max_instances=max_instances, quiet=quiet)


def transitions(schedule: list[int]) -> list[dict[str, object]]:
    """The hours at which the min-instances value changes (cyclic over the week)."""
    out = []
    for slot in range(HOURS_PER_WEEK):
        if schedule[slot] != schedule[slot - 1]:
            out.append({"slot": slot, "at": slot_label(slot), "min_instances": schedule[slot]})
    return out
