"""Cloud Monitoring in, Cloud Run Admin API out: analysis, apply, verification on fresh points, rollback."""

from __future__ import annotations

import datetime as dt

import pytest
from google.cloud import monitoring_v3
from orchestra.automations.performance import PerformanceAutomation
from orchestra.clock import FakeClock
from orchestra.store.base import StateStore

from .fakes import FakeMetricServiceClient, FakeServicesClient
from .helpers import make_ctx

SETTINGS = {
    "source": "cloud-monitoring",
    "project": "example-project",
    "region": "europe-west1",
    "services": ["sample-api"],
    "settle_seconds": 300,
}


def _points_after(start: dt.datetime, values: list[float]) -> monitoring_v3.ListTimeSeriesResponse:
    points = []
    for i, value in enumerate(values):
        end = start + dt.timedelta(minutes=i + 1)
        points.append(
            monitoring_v3.Point(
                interval=monitoring_v3.TimeInterval(end_time=end),
                value=monitoring_v3.TypedValue(double_value=value),
            )
        )
    points.reverse()
    series = monitoring_v3.TimeSeries(
        metric={"type": "run.googleapis.com/container/cpu/utilizations"},
        resource={"type": "cloud_run_revision", "labels": {"service_name": "sample-api"}},
        metric_kind="GAUGE",
        value_type="DOUBLE",
        points=points,
    )
    return monitoring_v3.ListTimeSeriesResponse(time_series=[series])


def _setup(
    sqlite_store: StateStore,
) -> tuple[PerformanceAutomation, FakeMetricServiceClient, FakeServicesClient, FakeClock, object]:
    monitoring, run = FakeMetricServiceClient(), FakeServicesClient()
    automation = PerformanceAutomation(monitoring_client=monitoring, run_client=run)
    clock = FakeClock()
    ctx = make_ctx(automation, sqlite_store, settings=SETTINGS, clock=clock)
    return automation, monitoring, run, clock, ctx


def test_analysis_reads_cloud_monitoring_and_targets_the_admin_api(sqlite_store: StateStore) -> None:
    automation, monitoring, run, _, ctx = _setup(sqlite_store)
    analysis = automation.analyze(ctx)  # type: ignore[arg-type]
    assert analysis.summary["source"] == "Cloud Monitoring (example-project/europe-west1, 60s alignment)"
    windows = {(r.interval.start_time, r.interval.end_time) for r in monitoring.requests}
    assert windows == {
        (dt.datetime(2025, 12, 28, 12, 0, tzinfo=dt.UTC), dt.datetime(2026, 1, 5, 12, 0, tzinfo=dt.UTC))
    }
    assert {f.evidence["rule"] for f in analysis.findings} == {"cpu"}
    (action,) = analysis.actions
    assert action.params["target"] == {
        "type": "cloud-run-admin",
        "name": "projects/example-project/locations/europe-west1/services/sample-api",
    }
    assert action.kind == "set-scaling" and action.risk == "low"
    report = analysis.summary["services"][0]
    assert report["recommendations"][0]["evidence"]["max_instances_seen"] >= 10
    assert report["config_origin"].startswith("read from Cloud Run Admin API")
    assert set(report["metrics"]) >= {"cpu", "memory", "instance_count"}


def test_worse_cpu_after_the_change_rolls_back_through_the_api(sqlite_store: StateStore) -> None:
    automation, monitoring, run, clock, ctx = _setup(sqlite_store)
    (action,) = automation.analyze(ctx).actions  # type: ignore[arg-type]
    action.rollback = automation.prepare(ctx, action)  # type: ignore[arg-type]
    automation.apply(ctx, action)  # type: ignore[arg-type]
    action.applied_at = clock.now()
    # Instances hit max (10) during the breach, so scaling out is the remedy.
    assert action.params["changes"] == {"max_instances": 16}
    assert run.service.template.scaling.max_instance_count == 16
    monitoring.responses["cpu"] = _points_after(clock.now(), [0.995] * 5)
    verification = automation.verify(ctx, action)  # type: ignore[arg-type]
    assert not verification.ok
    assert verification.evidence["checks"][0]["verdict"] == "worse"
    last = monitoring.requests[-1]
    assert last.interval.start_time == action.applied_at
    assert last.interval.end_time == action.applied_at + dt.timedelta(seconds=300)  # after the settle period
    automation.rollback(ctx, action)  # type: ignore[arg-type]
    assert run.service.template.scaling.max_instance_count == 10


def test_failing_google_apis_open_their_dependency_breakers(sqlite_store: StateStore) -> None:
    from google.api_core.exceptions import ServiceUnavailable
    from orchestra.breaker import BreakerState, DependencyUnavailable, find_breaker
    from orchestra.metrics.base import MetricsUnavailable

    monitoring = FakeMetricServiceClient(fail_with=ServiceUnavailable("backend down"))
    automation = PerformanceAutomation(monitoring_client=monitoring, run_client=FakeServicesClient())
    ctx = make_ctx(automation, sqlite_store, settings=SETTINGS)
    for _ in range(ctx.config.runner.breaker.failure_threshold):
        with pytest.raises(MetricsUnavailable):
            automation.analyze(ctx)  # type: ignore[arg-type]
    calls = len(monitoring.requests)
    with pytest.raises(DependencyUnavailable):
        automation.analyze(ctx)  # type: ignore[arg-type]
    assert len(monitoring.requests) == calls  # refused without calling the API
    record = find_breaker(sqlite_store, "dependency:cloud-monitoring")
    assert record is not None and record.state == BreakerState.open
    assert find_breaker(sqlite_store, "dependency:cloud-run-admin") is None  # each API its own
