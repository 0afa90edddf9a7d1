"""Cloud Monitoring source for Cloud Run services (``projects.timeSeries.list``).

One aligned, cross-series-reduced query per metric, grouped by service so revisions collapse
into one series:

- cpu / memory: ``container/{cpu,memory}/utilizations`` (distributions of fractions across
  instances), ALIGN_PERCENTILE_95 per revision then REDUCE_MAX over revisions, x100 -> percent.
- latency_p95: ``request_latencies`` (distribution, ms), ALIGN_DELTA then REDUCE_PERCENTILE_95,
  which pools the revisions' distributions before taking the percentile.
- request_count: ``request_count`` ALIGN_DELTA + REDUCE_SUM -> requests per alignment period.
- error_rate: 5xx requests / all requests per period x100 (two queries joined on period end).
- instance_count: ``container/instance_count`` ALIGN_MAX + REDUCE_SUM (active + idle).

The client library is imported lazily; tests inject a client whose ``list_time_series`` returns
real ``monitoring_v3.TimeSeries`` messages.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError
from .base import ALL_METRICS, MetricSeries, MetricsSource, backend_error

_SERVICE_NAME = re.compile(r"^[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?$")
_PROJECT_ID = re.compile(r"^[a-z][-a-z0-9.:]{4,62}[a-z0-9]$")
_REGION = re.compile(r"^[a-z]+-[a-z]+[0-9]+$")

GROUP_BY = "resource.labels.service_name"


@dataclass(frozen=True)
class Query:
    metric_type: str
    aligner: str
    reducer: str
    scale: float = 1.0
    extra_filter: str = ""


QUERIES: dict[str, Query] = {
    "cpu": Query("run.googleapis.com/container/cpu/utilizations", "ALIGN_PERCENTILE_95", "REDUCE_MAX", 100.0),
    "memory": Query(
        "run.googleapis.com/container/memory/utilizations", "ALIGN_PERCENTILE_95", "REDUCE_MAX", 100.0
    ),
    "latency_p95": Query("run.googleapis.com/request_latencies", "ALIGN_DELTA", "REDUCE_PERCENTILE_95"),
    "request_count": Query("run.googleapis.com/request_count", "ALIGN_DELTA", "REDUCE_SUM"),
    "instance_count": Query("run.googleapis.com/container/instance_count", "ALIGN_MAX", "REDUCE_SUM"),
}
ERRORS_5XX = Query(
    "run.googleapis.com/request_count",
    "ALIGN_DELTA",
    "REDUCE_SUM",
    extra_filter='metric.labels.response_code_class="5xx"',
)


def check_service_name(service: str) -> str:
    if not _SERVICE_NAME.match(service):
        raise InputError(
            f"invalid Cloud Run service name {service!r}; expected lower-case letters, digits and '-', "
            "starting with a letter, at most 63 characters",
            where="service",
        )
    return service


def build_filter(query: Query, service: str, region: str | None) -> str:
    parts = [
        f'metric.type="{query.metric_type}"',
        'resource.type="cloud_run_revision"',
        f'resource.labels.service_name="{check_service_name(service)}"',
    ]
    if region:
        parts.append(f'resource.labels.location="{region}"')
    if query.extra_filter:
        parts.append(query.extra_filter)
    return " AND ".join(parts)


def _point_value(point: Any) -> float | None:
    kind = point.value._pb.WhichOneof("value")
    if kind == "double_value":
        return float(point.value.double_value)
    if kind == "int64_value":
        return float(point.value.int64_value)
    if kind == "distribution_value":
        # Only reached if a query is changed to keep distributions: their mean is the only scalar
        # that is not a guess.
        return float(point.value.distribution_value.mean)
    return None


def series_from_time_series(items: Iterable[Any], name: str, origin: str, scale: float = 1.0) -> MetricSeries:
    """Merge the returned series (normally one per service) into one ascending series.

    The API returns points newest first; several series (e.g. when grouping by service returns
    more than one location) at the same instant are summed for counts and maxed otherwise.
    """
    merged: dict[int, float] = {}
    additive = name in {"request_count", "instance_count"}
    for ts in items:
        for point in ts.points:
            value = _point_value(point)
            if value is None:
                continue
            end = point.interval.end_time
            ms = int(end.timestamp() * 1000)
            value *= scale
            if ms in merged:
                merged[ms] = merged[ms] + value if additive else max(merged[ms], value)
            else:
                merged[ms] = value
    keys = sorted(merged)
    return MetricSeries(
        name,
        np.asarray(keys, dtype=np.int64),
        np.asarray([merged[k] for k in keys], dtype=np.float64),
        origin,
    )


class CloudMonitoringSource(MetricsSource):
    kind = "cloud-monitoring"

    def __init__(
        self,
        project: str,
        *,
        region: str | None = None,
        alignment_seconds: int = 60,
        client: Any = None,
    ) -> None:
        if not project or not _PROJECT_ID.match(project):
            raise InputError(
                f"invalid Google Cloud project id {project!r}; expected e.g. 'my-project-123'",
                where="automations.*.settings.project",
            )
        if region and not _REGION.match(region):
            raise InputError(
                f"invalid region {region!r}; expected e.g. 'europe-west1'", where="settings.region"
            )
        if alignment_seconds < 60:
            raise InputError(
                "alignment_seconds must be at least 60 (an API limit)", where="settings.alignment_seconds"
            )
        self.project = project
        self.region = region
        self.alignment_seconds = int(alignment_seconds)
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            from google.cloud import monitoring_v3

            self._client = monitoring_v3.MetricServiceClient()
        return self._client

    def describe(self) -> str:
        where = f"{self.project}/{self.region}" if self.region else self.project
        return f"Cloud Monitoring ({where}, {self.alignment_seconds}s alignment)"

    def available(self) -> tuple[str, ...]:
        return ALL_METRICS

    def spec(self) -> dict[str, object]:
        return {
            "type": self.kind,
            "project": self.project,
            "region": self.region,
            "alignment_seconds": self.alignment_seconds,
        }

    def request(self, query: Query, service: str, start: dt.datetime, end: dt.datetime) -> Any:
        from google.cloud import monitoring_v3
        from google.protobuf import duration_pb2, timestamp_pb2

        start_ts, end_ts = timestamp_pb2.Timestamp(), timestamp_pb2.Timestamp()
        start_ts.FromDatetime(start.astimezone(dt.UTC).replace(tzinfo=None))
        end_ts.FromDatetime(end.astimezone(dt.UTC).replace(tzinfo=None))
        return monitoring_v3.ListTimeSeriesRequest(
            name=f"projects/{self.project}",
            filter=build_filter(query, service, self.region),
            interval=monitoring_v3.TimeInterval(start_time=start_ts, end_time=end_ts),
            aggregation=monitoring_v3.Aggregation(
                alignment_period=duration_pb2.Duration(seconds=self.alignment_seconds),
                per_series_aligner=monitoring_v3.Aggregation.Aligner[query.aligner],
                cross_series_reducer=monitoring_v3.Aggregation.Reducer[query.reducer],
                group_by_fields=[GROUP_BY],
            ),
            view=monitoring_v3.ListTimeSeriesRequest.TimeSeriesView.FULL,
        )

    def _list(self, query: Query, service: str, start: dt.datetime, end: dt.datetime, name: str) -> list[Any]:
        request = self.request(query, service, start, end)
        try:
            # Iterating the pager fetches every page.
            return list(self.client.list_time_series(request=request))
        except Exception as exc:
            raise backend_error(
                exc, f"Cloud Monitoring list_time_series for {name} of service {service!r} ({request.filter})"
            ) from exc

    def fetch(
        self,
        service: str,
        metrics: Sequence[str],
        *,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
    ) -> dict[str, MetricSeries]:
        if start is None or end is None:
            raise InputError("Cloud Monitoring needs a time window (start and end)", where="metrics")
        out: dict[str, MetricSeries] = {}
        origin = f"{self.describe()} service {service}"
        for name in metrics:
            if name == "error_rate":
                series = self._error_rate(service, start, end, origin)
            elif name in QUERIES:
                query = QUERIES[name]
                series = series_from_time_series(
                    self._list(query, service, start, end, name),
                    name,
                    f"{origin}: {query.metric_type}",
                    query.scale,
                )
            else:
                continue
            if len(series):
                out[name] = series
        return out

    def _error_rate(self, service: str, start: dt.datetime, end: dt.datetime, origin: str) -> MetricSeries:
        total = series_from_time_series(
            self._list(QUERIES["request_count"], service, start, end, "error_rate (all requests)"),
            "request_count",
            origin,
        )
        errors = series_from_time_series(
            self._list(ERRORS_5XX, service, start, end, "error_rate (5xx requests)"), "request_count", origin
        )
        # A period without any 5xx has no 5xx point at all: that is 0 errors, not missing data.
        # A period without requests has no error rate: it is left out (a gap), not 0 %.
        err = dict(zip(errors.t_ms.tolist(), errors.values.tolist(), strict=True))
        keep = total.values > 0
        t_ms = total.t_ms[keep]
        totals = total.values[keep]
        fives = np.asarray([err.get(int(t), 0.0) for t in t_ms], dtype=np.float64)
        rate = np.minimum(100.0, fives / totals * 100.0) if len(t_ms) else np.zeros(0)
        return MetricSeries("error_rate", t_ms, rate, f"{origin}: 5xx / all run.googleapis.com/request_count")
