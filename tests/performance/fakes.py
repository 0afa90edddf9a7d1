"""Fake Google clients that answer with recorded, real-shaped protos."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from .helpers import FIXTURES

MONITORING = FIXTURES / "metrics" / "monitoring"
SERVICE_JSON = FIXTURES / "cloud_run" / "service_v2.json"


class FakeMetricServiceClient:
    """``list_time_series`` answers from the recorded responses, chosen by the request's filter."""

    def __init__(self, directory: Path = MONITORING, fail_with: Exception | None = None) -> None:
        from google.cloud import monitoring_v3

        self.responses = {
            path.stem: monitoring_v3.ListTimeSeriesResponse.from_json(path.read_text())
            for path in directory.glob("*.json")
        }
        self.requests: list[Any] = []
        self.fail_with = fail_with

    def list_time_series(self, request: Any) -> list[Any]:
        self.requests.append(request)
        if self.fail_with is not None:
            raise self.fail_with
        text = request.filter
        if 'response_code_class="5xx"' in text:
            key = "request_count_5xx"
        else:
            key = {
                "container/cpu/utilizations": "cpu",
                "container/memory/utilizations": "memory",
                "request_latencies": "latency_p95",
                "container/instance_count": "instance_count",
                "run.googleapis.com/request_count": "request_count",
            }[
                next(
                    k
                    for k in (
                        "container/cpu/utilizations",
                        "container/memory/utilizations",
                        "request_latencies",
                        "container/instance_count",
                        "run.googleapis.com/request_count",
                    )
                    if k in text
                )
            ]
        return list(self.responses[key].time_series)


class FakeOperation:
    def __init__(self, result: Any) -> None:
        self._result = result
        self.timeouts: list[float | None] = []

    def result(self, timeout: float | None = None) -> Any:
        self.timeouts.append(timeout)
        return self._result


class FakeServicesClient:
    """A Cloud Run service held in memory: updates bump generation and etag like the API does."""

    def __init__(self, service_json: Path = SERVICE_JSON) -> None:
        from google.cloud import run_v2

        self.service = run_v2.Service.from_json(service_json.read_text())
        self.updates: list[Any] = []
        self.gets = 0

    def get_service(self, name: str) -> Any:
        from google.cloud import run_v2

        self.gets += 1
        if name != self.service.name:
            from google.api_core.exceptions import NotFound

            raise NotFound(f"Resource '{name}' was not found")
        return run_v2.Service.deserialize(run_v2.Service.serialize(self.service))

    def update_service(self, request: Any) -> FakeOperation:
        from google.api_core.exceptions import FailedPrecondition
        from google.cloud import run_v2

        sent = request.service
        if sent.etag and sent.etag != self.service.etag:
            raise FailedPrecondition("etag mismatch: the service was modified")
        self.updates.append(copy.deepcopy(run_v2.Service.to_dict(sent)))
        stored = run_v2.Service.deserialize(run_v2.Service.serialize(sent))
        stored.generation = self.service.generation + 1
        stored.etag = f'"etag-{stored.generation}"'
        revision = f"sample-api-{stored.generation:05d}-new"
        stored.template.revision = ""
        stored.latest_created_revision = (
            f"projects/example-project/locations/europe-west1/revisions/{revision}"
        )
        stored.latest_ready_revision = stored.latest_created_revision
        self.service = stored
        return FakeOperation(run_v2.Service.deserialize(run_v2.Service.serialize(stored)))
