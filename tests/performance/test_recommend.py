"""Recommendations: always a valid Cloud Run configuration; each rule's remedy; rightsizing."""

from __future__ import annotations

import random

import numpy as np
import pytest
from orchestra.actuators.base import (
    MEMORY_CAP_MIB,
    VCPU_STEPS,
    ServiceConfig,
    check_changes,
    make_valid,
    problems,
)
from orchestra.automations.performance.episodes import find_episodes
from orchestra.automations.performance.models import PerformanceSettings
from orchestra.automations.performance.recommend import Inputs, RuleResult, plan, recommend
from orchestra.config import ThresholdRule
from orchestra.metrics.base import MetricSeries, make_series
from orchestra.metrics.files import read_series

from .helpers import CPU_HIGH, CPU_LOW, default_config

RULES = default_config().thresholds
MEMORY_CHOICES = [128, 256, 512, 1024, 2048, 3072, 4096, 6144, 8192, 16384, 24576, 32768, 40000]


def synthetic(metric: str, level: float, *, minutes: int = 60, step_s: int = 60) -> MetricSeries:
    t = np.arange(0, minutes * 60, step_s, dtype=np.int64) * 1000 + 1_700_000_000_000
    return make_series(metric, t, np.full(t.shape, level), "synthetic")


def result_for(name: str, rule: ThresholdRule, series: MetricSeries) -> RuleResult:
    return RuleResult(
        name, rule, series, find_episodes(series.t_ms, series.values, rule.above, rule.for_minutes * 60)
    )


def inputs(
    current: ServiceConfig,
    series: dict[str, MetricSeries],
    *,
    single_threaded: bool = False,
    settings: PerformanceSettings | None = None,
    rules: dict[str, ThresholdRule] | None = None,
) -> Inputs:
    rules = rules if rules is not None else dict(RULES)
    results = {}
    for name, rule in rules.items():
        if rule.metric in series:
            res = result_for(name, rule, series[rule.metric])
            if len(res.episodes):
                results[name] = res
    return Inputs(
        service="svc",
        current=current,
        results=results,
        series=series,
        rules=rules,
        focused=False,
        settings=settings or PerformanceSettings(),
        single_threaded=single_threaded,
    )


def random_config(rng: random.Random) -> ServiceConfig:
    return ServiceConfig(
        cpu=rng.choice([0.5, 1, 1, 2, 4, 6, 8, 3]),
        memory_mib=rng.choice(MEMORY_CHOICES),
        concurrency=rng.choice([0, 1, 2, 10, 80, 250, 1000, 1200]),
        min_instances=rng.choice([0, 0, 1, 3, 50, 200]),
        max_instances=rng.choice([1, 2, 10, 100, 1000]),
        startup_cpu_boost=rng.random() < 0.5,
    )


def test_recommendations_always_valid_over_many_inputs() -> None:
    rng = random.Random(20240601)
    settings_choices = [
        PerformanceSettings(),
        PerformanceSettings(max_instances_cap=50, memory_target_percent=75),
    ]
    for _case in range(600):
        current = random_config(rng)
        series: dict[str, MetricSeries] = {}
        for metric, top in (("cpu", 100), ("memory", 100), ("latency_p95", 3000), ("error_rate", 40)):
            if rng.random() < 0.6:
                series[metric] = synthetic(metric, rng.uniform(0, top), minutes=rng.choice([3, 20, 90]))
        if rng.random() < 0.3:
            series["instance_count"] = synthetic("instance_count", rng.choice([1, 5, 100, 1000]), minutes=90)
        if rng.random() < 0.2:
            series["cpu"] = synthetic("cpu", rng.uniform(1, 30), minutes=60 * 24 * 9, step_s=3600)
        recs = recommend(
            inputs(current, series, single_threaded=rng.random() < 0.3, settings=rng.choice(settings_choices))
        )
        for rec in recs:
            assert rec.risk and rec.expected_effect and rec.evidence, rec
        final, changes = plan(current, recs)
        assert problems(final) == [], (current, final)
        together = current.with_changes({k: v for c in changes for k, v in c.changes.items()})
        assert together == final
        if not problems(current):
            # Any single change (the runner may apply a subset) keeps the service valid.
            for change in changes:
                assert problems(current.with_changes(change.changes)) == [], (current, change)
        else:
            for change in changes:
                check_changes(current, change.changes, "test")  # introduces no new problem


def test_make_valid_pairs_memory_and_cpu() -> None:
    fixed = make_valid(
        ServiceConfig(cpu=1, memory_mib=16384, concurrency=0, min_instances=5, max_instances=2)
    )
    assert (
        fixed.cpu == 4 and fixed.memory_mib == 16384 and fixed.concurrency == 1 and fixed.max_instances == 5
    )
    assert make_valid(ServiceConfig(cpu=8, memory_mib=512)).memory_mib == 4096
    for step in VCPU_STEPS:
        assert problems(ServiceConfig(cpu=step, memory_mib=MEMORY_CAP_MIB[step])) == []
        assert problems(ServiceConfig(cpu=step, memory_mib=MEMORY_CAP_MIB[step] + 1))


def test_cpu_breach_on_real_series_adds_a_vcpu() -> None:
    recs = recommend(inputs(ServiceConfig(cpu=1), {"cpu": read_series(CPU_HIGH, "cpu")}))
    assert [r.id for r in recs] == ["svc:cpu:vcpu"]
    assert recs[0].changes == {"cpu": 2}
    assert recs[0].evidence["episodes"] == 3
    assert recs[0].checks[0]["kind"] == "not-worse" and recs[0].checks[0]["baseline"] > 70


def test_cpu_single_threaded_lowers_concurrency() -> None:
    recs = recommend(
        inputs(ServiceConfig(cpu=1, concurrency=80), {"cpu": synthetic("cpu", 90)}, single_threaded=True)
    )
    assert recs[0].changes == {"concurrency": 53}  # floor(80 * 60 / 90)


def test_cpu_at_max_instances_raises_the_ceiling() -> None:
    current = ServiceConfig(cpu=2, max_instances=10)
    series = {"cpu": synthetic("cpu", 85), "instance_count": synthetic("instance_count", 10)}
    recs = recommend(inputs(current, series))
    assert recs[0].id == "svc:cpu:max-instances"
    assert recs[0].changes == {"max_instances": 15}  # ceil(10 * 85 / 60)
    assert recs[0].risk == "low"


def test_cpu_at_eight_vcpu_lowers_concurrency() -> None:
    recs = recommend(
        inputs(ServiceConfig(cpu=8, memory_mib=8192, concurrency=100), {"cpu": synthetic("cpu", 80)})
    )
    assert recs[0].changes == {"concurrency": 75}


def test_memory_breach_grows_memory_and_cpu_when_needed() -> None:
    recs = recommend(inputs(ServiceConfig(cpu=1, memory_mib=4096), {"memory": synthetic("memory", 90)}))
    assert recs[0].changes == {"memory_mib": 8192, "cpu": 2}
    final, changes = plan(ServiceConfig(cpu=1, memory_mib=4096), recs)
    assert [c.kind for c in changes] == ["set-resources"] and problems(final) == []


def test_latency_breach_in_production_rules() -> None:
    recs = recommend(inputs(ServiceConfig(), {"latency_p95": synthetic("latency_p95", 900)}))
    assert [r.id for r in recs] == [
        "svc:latency:min-instances",
        "svc:latency:startup-boost",
        "svc:latency:caching",
    ]
    assert recs[0].changes == {"min_instances": 1}
    assert recs[2].advice_only


def test_errors_are_investigated_not_changed() -> None:
    series = {"error_rate": synthetic("error_rate", 4), "memory": synthetic("memory", 95)}
    recs = recommend(inputs(ServiceConfig(), series))
    errors = [r for r in recs if r.cause == "error_rate"]
    assert len(errors) == 1 and errors[0].advice_only
    assert errors[0].evidence["overlaps_with"] == ["memory"]


def test_rightsizing_down_after_eight_quiet_days() -> None:
    low = read_series(CPU_LOW, "cpu")  # 14 days, 5..25 %
    recs = recommend(inputs(ServiceConfig(cpu=4, memory_mib=2048), {"cpu": low}))
    assert [r.id for r in recs] == ["svc:rightsizing:cpu"]
    rec = recs[0]
    # max daily P90 ~15-17 % of 4 vCPU = ~0.7 cores; +15 % must stay under 70 % of the new size.
    assert rec.changes == {"cpu": 2}
    assert rec.evidence["days"] >= 8 and rec.checks[0]["kind"] == "stay-below"
    assert 15 <= rec.evidence["max_daily_p90"] <= 25
    final, _ = plan(ServiceConfig(cpu=4, memory_mib=2048), recs)
    assert final.cpu == 2


def test_rightsizing_needs_enough_history() -> None:
    low = read_series(CPU_LOW, "cpu")
    short = low.between(None, low.start_ms + 5 * 86_400_000)
    data = inputs(ServiceConfig(cpu=4, memory_mib=2048), {"cpu": short})
    assert recommend(data) == []
    assert any("needs 8 days" in n for n in data.notes)


def test_increase_beats_rightsizing() -> None:
    # CPU is idle, but memory needs 16 GiB, which needs 4 vCPU: the CPU downsizing is superseded.
    low = synthetic("cpu", 5, minutes=60 * 24 * 9, step_s=3600)
    current = ServiceConfig(cpu=4, memory_mib=8192)
    recs = recommend(inputs(current, {"cpu": low, "memory": synthetic("memory", 95)}))
    final, _ = plan(current, recs)
    assert final.cpu == 4 and final.memory_mib == 16384
    sized = [r for r in recs if r.cause == "rightsizing-cpu"]
    assert sized and sized[0].superseded


@pytest.mark.parametrize("level", [71, 85, 100])
def test_projected_utilization_falls_below_threshold(level: float) -> None:
    current = ServiceConfig(cpu=1)
    rec = recommend(inputs(current, {"cpu": synthetic("cpu", level)}))[0]
    assert level * current.cpu / rec.changes["cpu"] < 70
