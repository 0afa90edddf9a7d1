"""The console's page of a performance run, drawn only from what the run stored.

Per service, one chart per analysed metric (one per rule when several rules watch the same
metric): the stored series, the rule's threshold, each breach episode shaded and, for an applied
change, its "after" window with a marker where it starts. Under each chart, the episodes as a
table (start, end, duration, peak): the chart's text alternative.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ...console.views import Episode, LineChart, Marker, RunView, Section, Series, Table
from ...models import Run
from ...toolkit.series import StoredSeries, from_ms
from .charts import MAX_SERIES_PER_RUN, AfterWindow, ServiceCharts, StoredRule, duration_text

ZOOM_BEFORE_FACTOR = 3
ZOOM_MIN_BEFORE_MS = 6 * 3_600_000


def _when(ms: int) -> str:
    return from_ms(ms).strftime("%Y-%m-%d %H:%M")


def _points(series: StoredSeries) -> list[tuple[dt.datetime | float, float]]:
    return list(series.points())


def _after_windows(run: Run, service: str) -> list[tuple[str, AfterWindow]]:
    """(action kind, after window) of the run's applied changes to ``service`` that were verified."""
    found: list[tuple[str, AfterWindow]] = []
    for action in run.actions:
        if action.applied_at is None or action.params.get("service") != service:
            continue
        verification = action.result.get("verification")
        raw = verification.get("after") if isinstance(verification, dict) else None
        if not isinstance(raw, dict):
            continue
        found.append((action.kind, AfterWindow.model_validate(raw)))
    return found


def _episode_table(service: str, rule: StoredRule, unit: str) -> Table:
    shown = len(rule.episodes)
    caption = (
        f"{service}: breach episodes of rule {rule.rule} ({rule.metric} above {rule.threshold:g} {unit})"
    )
    if rule.episodes_total > shown:
        caption += f"; the first {shown} of {rule.episodes_total}"
    elif not shown:
        caption += ": none"
    return Table(
        caption=caption.replace("  ", " "),
        columns=["start (UTC)", "end (UTC)", "duration", f"peak ({unit})" if unit else "peak"],
        rows=[
            [_when(e.start_ms), _when(e.end_ms), duration_text((e.end_ms - e.start_ms) / 1000), e.peak]
            for e in rule.episodes
        ],
    )


def _afters(
    series: StoredSeries, after: list[tuple[str, AfterWindow]]
) -> list[tuple[str, int | None, StoredSeries]]:
    """(action kind, where its after window starts, its samples of this metric)."""
    found = []
    for kind, window in after:
        later = next((s for s in window.series if s.name == series.name), None)
        if later is not None:
            found.append((kind, window.from_ms, later))
    return found


def _zoom(afters: list[tuple[str, int | None, StoredSeries]]) -> tuple[int, int] | None:
    """Around the changes: from ZOOM_BEFORE_FACTOR times the after window (at least
    ZOOM_MIN_BEFORE_MS) before the first change to the last sample after it."""
    starts = [start for _, start, _ in afters if start is not None]
    ends = [later.t_ms[-1] for _, _, later in afters if later.t_ms]
    if not starts or not ends:
        return None
    first, last = min(starts), max(max(ends), max(starts))
    return first - max(ZOOM_BEFORE_FACTOR * (last - first), ZOOM_MIN_BEFORE_MS), last


def _clip(points: StoredSeries, window: tuple[int, int] | None) -> list[tuple[dt.datetime | float, float]]:
    if window is None:
        return _points(points)
    lo, hi = window
    return [(from_ms(t), v) for t, v in zip(points.t_ms, points.values, strict=True) if lo <= t <= hi]


def _chart(
    service: str,
    series: StoredSeries,
    rule: StoredRule | None,
    afters: list[tuple[str, int | None, StoredSeries]],
    window: tuple[int, int] | None = None,
) -> LineChart:
    unit = series.unit
    lines = [
        Series(name=series.name if not afters else f"{series.name} before", points=_clip(series, window))
    ]
    markers: list[Marker] = []
    for kind, start, later in afters:
        if later.t_ms:
            lines.append(Series(name=f"{series.name} after {kind}", points=_points(later)))
        if start is not None:
            markers.append(Marker(at=from_ms(start), label=f"{kind} applied"))
    title = f"{service}: {series.name}" + (f" ({unit})" if unit else "")
    if rule is not None:
        title += f", rule {rule.rule}: above {rule.threshold:g} for {rule.for_minutes:g} min"
    if window is not None:
        title += f"; around the change ({duration_text((window[1] - window[0]) / 1000)})"
    elif series.downsampled:
        title += f"; {len(series)} of {series.samples} samples drawn (each stretch's lowest and highest)"
    episodes = rule.episodes if rule is not None else []
    if window is not None:
        episodes = [e for e in episodes if e.end_ms >= window[0] and e.start_ms <= window[1]]
    return LineChart(
        title=title,
        y_label=unit or series.name,
        series=lines,
        threshold=rule.threshold if rule is not None else None,
        threshold_label=f"{rule.rule} threshold" if rule is not None else "threshold",
        episodes=[
            Episode(
                start=from_ms(max(e.start_ms, window[0]) if window else e.start_ms),
                end=from_ms(min(e.end_ms, window[1]) if window else e.end_ms),
                label=f"{rule.rule} breach" if rule is not None else "breach",
            )
            for e in episodes
        ],
        markers=markers,
    )


def _service_section(run: Run, report: dict[str, Any]) -> Section | None:
    raw = report.get("charts")
    if not isinstance(raw, dict):
        return None  # a run stored before charts were kept
    charts = ServiceCharts.model_validate(raw)
    service = str(report.get("service", "?"))
    after = _after_windows(run, service)
    items: list[LineChart | Table] = []
    for series in charts.series:
        watching = [r for r in charts.rules if r.metric == series.name]
        afters = _afters(series, after)
        zoom = _zoom(afters)
        for rule in watching or [None]:
            if series.t_ms:
                items.append(_chart(service, series, rule, afters))
            if zoom is not None:
                items.append(_chart(service, series, rule, afters, zoom))
            if rule is not None:
                items.append(_episode_table(service, rule, series.unit))
    if charts.omitted:
        items.append(
            Table(
                caption=f"{service}: series not kept with the run (at most {MAX_SERIES_PER_RUN} per run)",
                columns=["metric"],
                rows=[[name] for name in charts.omitted],
            )
        )
    if not items:
        return None
    return Section(title=f"{service}: metrics, thresholds and breaches", items=items)


def run_view(run: Run) -> RunView | None:
    sections = [
        section
        for report in run.summary.get("services", [])
        if isinstance(report, dict) and (section := _service_section(run, report)) is not None
    ]
    return RunView(sections=sections) if sections else None
