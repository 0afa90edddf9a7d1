"""What a performance run stores for its charts, bounded (the console draws only from this).

Per service (``summary.services[i].charts``): a downsampled copy of each analysed metric series
(:mod:`orchestra.toolkit.series`, at most ``MAX_POINTS`` points each), and per evaluated rule its
threshold and breach episodes (start, end, peak, mean). Per applied change, the verification's
evidence keeps the "after" window the same way (``after``: where it starts and its series).

A run keeps at most ``MAX_SERIES_PER_RUN`` series and ``MAX_EPISODES_PER_RUN`` episodes over all
its services, and a verification at most ``MAX_AFTER_SERIES`` series, so that a run document stays
far below Firestore's 1 MiB limit whatever the number of services or the length of the history;
what was left out is named (``omitted``) and counted (``episodes_total``).

Importing this module is cheap (pydantic only); numpy loads when series are downsampled.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from ...toolkit.series import MAX_POINTS, StoredSeries, downsample

if TYPE_CHECKING:
    from ...config import ThresholdRule
    from ...metrics.base import MetricSeries
    from .episodes import Episodes

MAX_SERIES_PER_RUN = 12
MAX_EPISODES_PER_RUN = 400
MAX_AFTER_SERIES = 5


def duration_text(seconds: float) -> str:
    """``2 d 3 h 5 min``: the length of an episode or a window, to the minute."""
    minutes = int(round(seconds / 60))
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    parts = [f"{days} d"] if days else []
    if hours:
        parts.append(f"{hours} h")
    if mins or not parts:
        parts.append(f"{mins} min")
    return " ".join(parts)


class _Stored(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StoredEpisode(_Stored):
    start_ms: int
    end_ms: int
    peak: float
    mean: float


class StoredRule(_Stored):
    rule: str
    metric: str
    threshold: float
    for_minutes: float
    episodes: list[StoredEpisode] = Field(default_factory=list)
    episodes_total: int = Field(0, ge=0, description="episodes found, stored or not")


class ServiceCharts(_Stored):
    """``summary.services[i].charts`` of a performance run."""

    series: list[StoredSeries] = Field(default_factory=list)
    rules: list[StoredRule] = Field(default_factory=list)
    omitted: list[str] = Field(default_factory=list, description="series not stored (the run's cap)")


class AfterWindow(_Stored):
    """``verification.after`` of an applied change: the samples judged as "after" it."""

    from_ms: int | None = Field(None, description="where the after window starts (the change)")
    series: list[StoredSeries] = Field(default_factory=list)


@dataclass
class Budget:
    """What a run may still store, shared by its services."""

    series: int = MAX_SERIES_PER_RUN
    episodes: int = MAX_EPISODES_PER_RUN


def _stored_rule(name: str, rule: ThresholdRule, eps: Episodes, budget: Budget) -> StoredRule:
    kept = min(len(eps), budget.episodes)
    budget.episodes -= kept
    return StoredRule(
        rule=name,
        metric=rule.metric,
        threshold=rule.above,
        for_minutes=rule.for_minutes,
        episodes=[
            StoredEpisode(
                start_ms=int(eps.start_ms[i]),
                end_ms=int(eps.end_ms[i]),
                peak=round(float(eps.peak[i]), 6),
                mean=round(float(eps.mean[i]), 6),
            )
            for i in range(kept)
        ],
        episodes_total=len(eps),
    )


def service_charts(
    data: Mapping[str, MetricSeries],
    evaluated: Iterable[tuple[str, ThresholdRule, Episodes]],
    budget: Budget,
) -> dict[str, Any]:
    """The charts' data of one service, as stored (JSON): rule metrics first, then the others."""
    rules = [_stored_rule(name, rule, eps, budget) for name, rule, eps in evaluated]
    order = [r.metric for r in rules] + sorted(data)
    series: list[StoredSeries] = []
    omitted: list[str] = []
    for metric in dict.fromkeys(order):
        found = data.get(metric)
        if found is None or not len(found):
            continue
        if budget.series <= 0:
            omitted.append(metric)
            continue
        budget.series -= 1
        series.append(downsample(metric, found.t_ms, found.values, unit=found.unit, max_points=MAX_POINTS))
    return ServiceCharts(series=series, rules=rules, omitted=omitted).model_dump(mode="json")


def after_window(from_ms: int | None, post: Mapping[str, MetricSeries]) -> dict[str, Any]:
    """A verification's "after" samples, downsampled, as stored (JSON)."""
    series = [
        downsample(metric, found.t_ms, found.values, unit=found.unit)
        for metric, found in sorted(post.items())
        if len(found)
    ][:MAX_AFTER_SERIES]
    return AfterWindow(from_ms=from_ms, series=series).model_dump(mode="json")
