"""Cloud Monitoring source: the requests it builds and the series it makes from recorded responses."""

from __future__ import annotations

import datetime as dt

import pytest
from google.api_core import exceptions as gexc
from google.cloud import monitoring_v3
from orchestra.errors import InputError
from orchestra.metrics.base import MetricsQueryError, MetricsUnavailable, iso
from orchestra.metrics.cloud_monitoring import CloudMonitoringSource

from .fakes import FakeMetricServiceClient
from .helpers import CPU_HIGH, REQUESTS, csv_rows

END = dt.datetime(2026, 1, 5, 12, 0, tzinfo=dt.UTC)
START = END - dt.timedelta(hours=2)


def source(client: FakeMetricServiceClient) -> CloudMonitoringSource:
    return CloudMonitoringSource("example-project", region="europe-west1", client=client)


def test_requests_have_filters_aggregation_and_interval() -> None:
    client = FakeMetricServiceClient()
    source(client).fetch("sample-api", ["cpu", "latency_p95", "request_count"], start=START, end=END)
    cpu, latency, count = client.requests
    assert cpu.name == "projects/example-project"
    assert cpu.filter == (
        'metric.type="run.googleapis.com/container/cpu/utilizations" AND resource.type="cloud_run_revision" '
        'AND resource.labels.service_name="sample-api" AND resource.labels.location="europe-west1"'
    )
    agg = monitoring_v3.Aggregation
    assert cpu.aggregation.per_series_aligner == agg.Aligner.ALIGN_PERCENTILE_95
    assert cpu.aggregation.cross_series_reducer == agg.Reducer.REDUCE_MAX
    assert list(cpu.aggregation.group_by_fields) == ["resource.labels.service_name"]
    assert cpu.aggregation.alignment_period.total_seconds() == 60
    assert latency.aggregation.per_series_aligner == agg.Aligner.ALIGN_DELTA
    assert latency.aggregation.cross_series_reducer == agg.Reducer.REDUCE_PERCENTILE_95
    assert count.aggregation.cross_series_reducer == agg.Reducer.REDUCE_SUM
    assert cpu.interval.start_time == START and cpu.interval.end_time == END
    assert cpu.view == monitoring_v3.ListTimeSeriesRequest.TimeSeriesView.FULL


def test_series_are_ascending_and_in_the_documented_units() -> None:
    data = source(FakeMetricServiceClient()).fetch(
        "sample-api",
        ["cpu", "memory", "latency_p95", "request_count", "instance_count"],
        start=START,
        end=END,
    )
    cpu = data["cpu"]
    assert len(cpu) == 120 and (cpu.t_ms[1:] > cpu.t_ms[:-1]).all()
    assert iso(cpu.start_ms) == "2026-01-05T10:01:00Z" and iso(cpu.end_ms) == "2026-01-05T12:00:00Z"
    real_cpu = [float(r.split(",")[1]) for r in csv_rows(CPU_HIGH)[:120]]
    assert cpu.values.tolist() == pytest.approx(real_cpu)  # fractions -> percent
    real_requests = [float(r.split(",")[1]) for r in csv_rows(REQUESTS)[:120]]
    assert data["request_count"].values.tolist() == real_requests
    assert data["instance_count"].values.min() >= 1


def test_error_rate_joins_5xx_with_all_requests() -> None:
    client = FakeMetricServiceClient()
    data = source(client).fetch("sample-api", ["error_rate"], start=START, end=END)
    assert [r.filter.endswith('metric.labels.response_code_class="5xx"') for r in client.requests] == [
        False,
        True,
    ]
    rate = data["error_rate"]
    requests = [float(r.split(",")[1]) for r in csv_rows(REQUESTS)[:120]]
    expected = [(int(v * 0.03) if i % 7 == 0 else 0) / v * 100 for i, v in enumerate(requests)]
    # Periods with no 5xx point count as 0 %, not as missing.
    assert len(rate) == 120
    assert rate.values.tolist() == pytest.approx(expected)


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (gexc.ServiceUnavailable("try later"), MetricsUnavailable),
        (gexc.PermissionDenied("no"), MetricsQueryError),
    ],
)
def test_api_errors_are_classified_with_context(error: Exception, kind: type) -> None:
    with pytest.raises(kind, match="cpu of service 'sample-api'"):
        source(FakeMetricServiceClient(fail_with=error)).fetch("sample-api", ["cpu"], start=START, end=END)


def test_names_are_checked_before_they_reach_a_filter() -> None:
    with pytest.raises(InputError, match="invalid Cloud Run service name"):
        source(FakeMetricServiceClient()).fetch('x" OR metric.type="y', ["cpu"], start=START, end=END)
    with pytest.raises(InputError, match="project id"):
        CloudMonitoringSource("Bad Project")
