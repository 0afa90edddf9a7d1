"""Cloud Monitoring through the real ``monitoring_v3.MetricServiceClient``.

The installed library has gRPC transports only, so the client talks gRPC over a real channel to a
local gRPC server that decodes the requests with the library's own message classes and answers
with recorded ``projects.timeSeries.list`` pages.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

import grpc
import pytest
from google.cloud import monitoring_v3
from google.cloud.monitoring_v3.services.metric_service.transports import MetricServiceGrpcTransport
from orchestra.errors import is_transient
from orchestra.metrics.base import MetricsQueryError, to_ms
from orchestra.metrics.cloud_monitoring import CloudMonitoringSource

from .grpc_server import GrpcError, GrpcWireServer
from .server import FIXTURES

LIST = "/google.monitoring.v3.MetricService/ListTimeSeries"
START = dt.datetime(2025, 12, 18, 10, 0, tzinfo=dt.UTC)
END = dt.datetime(2025, 12, 18, 10, 6, tzinfo=dt.UTC)


def page(name: str) -> monitoring_v3.ListTimeSeriesResponse:
    return monitoring_v3.ListTimeSeriesResponse.from_json((FIXTURES / name).read_text(encoding="utf-8"))


@pytest.fixture
def source(grpc_wire: GrpcWireServer) -> Iterator[CloudMonitoringSource]:
    grpc_wire.register(
        "google.monitoring.v3.MetricService",
        "ListTimeSeries",
        monitoring_v3.ListTimeSeriesRequest,
        monitoring_v3.ListTimeSeriesResponse,
    )
    channel = grpc.insecure_channel(grpc_wire.host)
    client = monitoring_v3.MetricServiceClient(transport=MetricServiceGrpcTransport(channel=channel))
    try:
        yield CloudMonitoringSource("example-project", region="europe-west1", client=client)
    finally:
        channel.close()


def test_list_time_series_follows_next_page_token_and_sends_the_query(
    grpc_wire: GrpcWireServer, source: CloudMonitoringSource
) -> None:
    first, second = page("monitoring_cpu_page1.json"), page("monitoring_cpu_page2.json")
    grpc_wire.answer(LIST, first, second)

    series = source.fetch("sample-api", ["cpu"], start=START, end=END)

    # Both pages, merged ascending, fractions x100 -> percent.
    cpu = series["cpu"]
    minutes = [START + dt.timedelta(minutes=m) for m in range(1, 6)]
    assert cpu.t_ms.tolist() == [to_ms(t) for t in minutes]
    assert cpu.values.tolist() == pytest.approx([29.75, 35.25, 41.0, 58.75, 61.25])

    assert [r.method for r in grpc_wire.requests] == [LIST, LIST]
    one, two = (r.request for r in grpc_wire.requests)
    assert one.page_token == ""
    assert two.page_token == first.next_page_token
    for request in (one, two):
        assert request.name == "projects/example-project"
        assert request.filter == (
            'metric.type="run.googleapis.com/container/cpu/utilizations" AND '
            'resource.type="cloud_run_revision" AND resource.labels.service_name="sample-api" AND '
            'resource.labels.location="europe-west1"'
        )
        assert request.interval.start_time == START
        assert request.interval.end_time == END
        aggregation = request.aggregation
        assert aggregation.alignment_period == dt.timedelta(seconds=60)
        assert aggregation.per_series_aligner == monitoring_v3.Aggregation.Aligner.ALIGN_PERCENTILE_95
        assert aggregation.cross_series_reducer == monitoring_v3.Aggregation.Reducer.REDUCE_MAX
        assert list(aggregation.group_by_fields) == ["resource.labels.service_name"]
        assert request.view == monitoring_v3.ListTimeSeriesRequest.TimeSeriesView.FULL
    # The second page repeats the query unchanged apart from the token.
    unpaged = monitoring_v3.ListTimeSeriesRequest(two)
    unpaged.page_token = ""
    assert monitoring_v3.ListTimeSeriesRequest.to_json(
        unpaged
    ) == monitoring_v3.ListTimeSeriesRequest.to_json(one)
    # The routing header names the project, as the API's frontends require.
    assert grpc_wire.requests[0].metadata["x-goog-request-params"] == "name=projects/example-project"


def test_error_rate_sends_the_5xx_filter_as_a_second_query(
    grpc_wire: GrpcWireServer, source: CloudMonitoringSource
) -> None:
    recorded = json.loads((FIXTURES / "monitoring_cpu_page2.json").read_text(encoding="utf-8"))
    recorded["timeSeries"][0]["metric"]["type"] = "run.googleapis.com/request_count"
    recorded["timeSeries"][0]["metricKind"] = "DELTA"
    recorded["timeSeries"][0]["valueType"] = "INT64"
    for number, point in enumerate(recorded["timeSeries"][0]["points"]):
        point["value"] = {"int64Value": str(200 * (number + 1))}
    grpc_wire.answer(LIST, monitoring_v3.ListTimeSeriesResponse.from_json(json.dumps(recorded)))

    source.fetch("sample-api", ["error_rate"], start=START, end=END)

    filters = [r.request.filter for r in grpc_wire.requests]
    assert len(filters) == 2
    assert 'metric.labels.response_code_class="5xx"' not in filters[0]
    assert filters[1].endswith(' AND metric.labels.response_code_class="5xx"')
    assert all(
        r.request.aggregation.cross_series_reducer == monitoring_v3.Aggregation.Reducer.REDUCE_SUM
        for r in grpc_wire.requests
    )


def test_permission_denied_is_a_permanent_query_error(
    grpc_wire: GrpcWireServer, source: CloudMonitoringSource
) -> None:
    grpc_wire.answer(
        LIST,
        GrpcError(
            grpc.StatusCode.PERMISSION_DENIED,
            "Permission monitoring.timeSeries.list denied (or the resource may not exist).",
        ),
    )

    with pytest.raises(MetricsQueryError) as caught:
        source.fetch("sample-api", ["cpu"], start=START, end=END)

    assert not is_transient(caught.value)
    assert "PermissionDenied: 403 Permission monitoring.timeSeries.list denied" in str(caught.value)
    assert len(grpc_wire.requests) == 1
