"""What a performance run stores for its charts: bounded downsampled series (peaks kept), rule
thresholds and breach episodes, the verification's after window, and a size far below
Firestore's 1 MiB document limit whatever the number of services and samples."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
from orchestra.automations.performance import PerformanceAutomation
from orchestra.automations.performance.charts import (
    MAX_AFTER_SERIES,
    MAX_EPISODES_PER_RUN,
    MAX_SERIES_PER_RUN,
    Budget,
    ServiceCharts,
    after_window,
    service_charts,
)
from orchestra.automations.performance.episodes import find_episodes
from orchestra.config import ThresholdRule
from orchestra.metrics.base import iso, make_series, to_ms
from orchestra.store.base import StateStore
from orchestra.toolkit.series import MAX_POINTS, StoredSeries, downsample, downsample_indices, stored_bytes
from pydantic import ValidationError

from .helpers import CPU_HIGH, copy_yaml, csv_rows, make_ctx, write_csv

FIRESTORE_LIMIT = 1024 * 1024
MINUTE_MS = 60_000


def test_few_samples_are_kept_whole() -> None:
    stored = downsample("cpu", [1000, 2000, 3000], [1.0, 2.5, 3.0], unit="%")
    assert (stored.t_ms, stored.values, stored.samples) == ([1000, 2000, 3000], [1.0, 2.5, 3.0], 3)
    assert not stored.downsampled


def test_downsampling_keeps_at_most_max_points_and_every_extreme() -> None:
    rng = np.random.default_rng(7)
    n = 20_000
    values = 50 + rng.normal(0, 3, n)
    values[12_345] = 99.5  # a one-sample spike
    values[777] = 0.25  # a one-sample dip
    t_ms = np.arange(n, dtype=np.int64) * MINUTE_MS
    stored = downsample("cpu", t_ms, values, unit="%")
    assert len(stored) <= MAX_POINTS and stored.samples == n and stored.downsampled
    assert max(stored.values) == 99.5 and min(stored.values) == 0.25
    assert 12_345 * MINUTE_MS in stored.t_ms and 777 * MINUTE_MS in stored.t_ms
    assert stored.t_ms == sorted(stored.t_ms) and len(set(stored.t_ms)) == len(stored.t_ms)


def test_each_bucket_keeps_its_low_and_high() -> None:
    values = np.asarray([5, 1, 9, 4, 7, 2, 8, 3], dtype=float)
    # Two buckets of four: (1 at index 1, 9 at 2) and (2 at 5, 8 at 6).
    assert downsample_indices(values, 4).tolist() == [1, 2, 5, 6]
    with pytest.raises(ValueError, match="max_points is 1; accepted: 2 or more"):
        downsample_indices(values, 1)


def test_values_that_are_not_finite_are_left_out() -> None:
    stored = downsample("latency_p95", [1, 2, 3, 4], [10.0, float("nan"), float("inf"), 12.0])
    assert (stored.t_ms, stored.values, stored.samples) == ([1, 4], [10.0, 12.0], 2)


def test_a_stored_series_must_be_aligned_and_ordered() -> None:
    with pytest.raises(ValidationError, match="2 timestamps but 1 values"):
        StoredSeries(name="cpu", t_ms=[1, 2], values=[1.0], samples=2)
    with pytest.raises(ValidationError, match="must not decrease"):
        StoredSeries(name="cpu", t_ms=[2, 1], values=[1.0, 2.0], samples=2)
    with pytest.raises(ValidationError, match="less than the 2 points kept"):
        StoredSeries(name="cpu", t_ms=[1, 2], values=[1.0, 2.0], samples=1)


def test_the_sample_run_stores_its_cpu_series_threshold_and_three_episodes(sqlite_store: StateStore) -> None:
    automation = PerformanceAutomation()
    analysis = automation.analyze(make_ctx(automation, sqlite_store))
    report = analysis.summary["services"][0]
    charts = ServiceCharts.model_validate(report["charts"])
    (cpu,) = charts.series
    assert (cpu.name, cpu.unit, cpu.samples) == ("cpu", "%", 4032)
    assert 250 <= len(cpu) <= MAX_POINTS
    rule = next(r for r in charts.rules if r.rule == "cpu")
    assert (rule.metric, rule.threshold, rule.for_minutes, rule.episodes_total) == ("cpu", 70, 15, 3)
    starts = [f.evidence["start"] for f in analysis.findings]
    assert [iso(e.start_ms) for e in rule.episodes] == starts
    assert all(e.peak > 70 for e in rule.episodes)
    # Rules without data (no memory series in the sample) store no series and no episodes.
    assert [r.rule for r in charts.rules] == ["cpu"] and charts.omitted == []
    assert stored_bytes(analysis.summary) < 32 * 1024


def _rules() -> list[tuple[str, ThresholdRule]]:
    return [
        (name, ThresholdRule(metric=metric, above=above, for_minutes=5, focus=focus))  # type: ignore[arg-type]
        for name, metric, above, focus in (
            ("cpu", "cpu", 50, "cpu"),
            ("cpu-high", "cpu", 55, "cpu"),
            ("memory", "memory", 50, "memory"),
            ("latency_p95", "latency_p95", 500, "latency"),
            ("error_rate", "error_rate", 1, "errors"),
        )
    ]


def test_many_services_with_long_series_stay_far_below_the_document_limit() -> None:
    """20 services × 6 metrics × 2 weeks at one-minute resolution, and series that cross their
    thresholds every few minutes (thousands of episodes): the run stores at most
    MAX_SERIES_PER_RUN series and MAX_EPISODES_PER_RUN episodes, under a quarter of 1 MiB."""
    rng = np.random.default_rng(11)
    n = 14 * 24 * 60
    t_ms = np.arange(n, dtype=np.int64) * MINUTE_MS + 1_700_000_000_000
    wave = np.where((np.arange(n) // 10) % 2 == 0, 1.5, 0.5)  # ten minutes above, ten below
    budget = Budget()
    stored = []
    for _ in range(20):
        data = {
            metric: make_series(metric, t_ms, scale * wave + rng.random(n) * 1e-3, "test")
            for metric, scale in (
                ("cpu", 60.0),
                ("memory", 60.0),
                ("latency_p95", 600.0),
                ("error_rate", 1.2),
                ("request_count", 1000.0),
                ("instance_count", 3.0),
            )
        }
        evaluated = [
            (name, rule, find_episodes(data[rule.metric].t_ms, data[rule.metric].values, rule.above, 300))
            for name, rule in _rules()
        ]
        stored.append(service_charts(data, evaluated, budget))
    charts = [ServiceCharts.model_validate(s) for s in stored]
    assert sum(len(c.series) for c in charts) == MAX_SERIES_PER_RUN
    assert sum(len(r.episodes) for c in charts for r in c.rules) == MAX_EPISODES_PER_RUN
    assert all(r.episodes_total > 900 for c in charts for r in c.rules)  # counted even when not kept
    assert charts[-1].series == [] and charts[-1].omitted  # what was left out is named
    assert all(len(s) <= MAX_POINTS for c in charts for s in c.series)
    assert stored_bytes(stored) < FIRESTORE_LIMIT // 4
    post = {name: make_series(name, t_ms, wave, "test") for name in ("cpu", "memory", "a", "b", "c", "d")}
    after = after_window(int(t_ms[0]), post)
    assert len(after["series"]) == MAX_AFTER_SERIES
    assert stored_bytes(after) < 64 * 1024


def test_verification_stores_the_after_window(tmp_path: Path, sqlite_store: StateStore) -> None:
    automation = PerformanceAutomation()
    cpu = write_csv(tmp_path / "cpu.csv", csv_rows(CPU_HIGH)[:2000])
    params = {"metrics": {"cpu": str(cpu)}, "service_yaml": str(copy_yaml(tmp_path))}
    ctx = make_ctx(automation, sqlite_store, params=params, settings={"settle_seconds": 0})
    (action,) = automation.analyze(ctx).actions
    action.rollback = automation.prepare(ctx, action)
    action.result = automation.apply(ctx, action)
    action.applied_at = ctx.clock.now()
    with cpu.open("a") as out:  # after the change: six samples, 5 minutes apart
        out.writelines(f"2014-04-17 {h:02d}:{m:02d}:00,{40 + m / 10}\n" for h, m in ((23, 0), (23, 5)))
        out.writelines(f"2014-04-18 00:{m:02d}:00,{45.5}\n" for m in (0, 5, 10, 15))
    verification = automation.verify(ctx, action)
    after = verification.evidence["after"]
    assert after["from_ms"] == action.params["data_end_ms"]  # files: after what the analysis saw
    (series,) = [StoredSeries.model_validate(s) for s in after["series"]]
    assert series.name == "cpu" and series.values == [40.0, 40.5, 45.5, 45.5, 45.5, 45.5]
    assert series.t_ms[0] > after["from_ms"]
    assert series.t_ms[-1] == to_ms(dt.datetime(2014, 4, 18, 0, 15, tzinfo=dt.UTC))
