"""The Cloud Run actuator through the real ``run_v2.ServicesClient`` REST transport.

The client library speaks HTTP/JSON to the local wire server exactly as it would to
``run.googleapis.com``: the tests assert on the requests the server received (method, path, query,
body, etag) and on how the actuator classifies the server's errors.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import run_v2
from orchestra.actuators.base import ConflictError, ServiceConfig
from orchestra.actuators.cloud_run_admin import ActuatorError, ActuatorUnavailable, CloudRunAdminActuator
from orchestra.errors import is_transient

from .server import Reply, WireServer, google_error

NAME = "projects/example-project/locations/europe-west1/services/sample-api"
PATH = f"/v2/{NAME}"
SERVICE_JSON = Path(__file__).resolve().parent.parent / "fixtures" / "cloud_run" / "service_v2.json"


@pytest.fixture
def service() -> dict[str, Any]:
    """The recorded ``services.get`` answer (a gen2 service, generation 7)."""
    return json.loads(SERVICE_JSON.read_text(encoding="utf-8"))


@pytest.fixture
def actuator(wire: WireServer) -> CloudRunAdminActuator:
    client = run_v2.ServicesClient(
        transport="rest",
        client_options={"api_endpoint": wire.base_url},
        credentials=AnonymousCredentials(),
    )
    return CloudRunAdminActuator(NAME, client=client, operation_timeout=30.0)


def test_read_sends_one_get_and_parses_the_service(
    wire: WireServer, actuator: CloudRunAdminActuator, service: dict[str, Any]
) -> None:
    wire.answer("GET", PATH, Reply(200, service))

    config = actuator.read()

    assert config == ServiceConfig(
        cpu=1.0, memory_mib=512, concurrency=80, min_instances=0, max_instances=10, startup_cpu_boost=False
    )
    [get] = wire.requests
    assert (get.method, get.path) == ("GET", PATH)
    assert get.param("$alt") == "json;enum-encoding=int"
    assert get.body == b""
    assert "authorization" not in get.headers  # anonymous credentials add none
    assert "gapic/" in get.headers["x-goog-api-client"]


def test_apply_patches_with_the_fetched_etag_and_waits_for_the_operation(
    wire: WireServer,
    actuator: CloudRunAdminActuator,
    service: dict[str, Any],
    wire_fixture: Callable[[str], Any],
) -> None:
    operation = wire_fixture("run_update_operation.json")
    done = wire_fixture("run_operation_done.json")
    wire.answer("GET", PATH, Reply(200, service))
    wire.answer("PATCH", PATH, Reply(200, operation))
    wire.answer("GET", f"/v2/{operation['name']}", Reply(200, done))

    config = actuator.apply({"cpu": 2.0, "memory_mib": 1024})

    assert (config.cpu, config.memory_mib, config.concurrency) == (2.0, 1024, 80)
    assert [(r.method, r.path) for r in wire.requests] == [
        ("GET", PATH),
        ("PATCH", PATH),
        ("GET", f"/v2/{operation['name']}"),  # operations.get: polled until done
    ]
    patch = wire.requests[1]
    # The whole service goes back, guarded by its etag: no field mask, no partial update.
    assert "updateMask" not in patch.query and "update_mask" not in patch.query
    assert patch.param("$alt") == "json;enum-encoding=int"
    assert patch.headers["content-type"] == "application/json"
    sent = patch.json()
    assert sent["etag"] == service["etag"]
    assert sent["generation"] == "7"
    template = sent["template"]
    assert "revision" not in template  # cleared: Cloud Run names the new revision
    [container] = template["containers"]
    assert container["resources"]["limits"] == {"cpu": "2", "memory": "1Gi"}
    assert container["image"] == service["template"]["containers"][0]["image"]
    assert template["maxInstanceRequestConcurrency"] == 80
    assert template["scaling"] == {"maxInstanceCount": 10}
    # Enums travel as numbers ($alt=json;enum-encoding=int): INGRESS_TRAFFIC_ALL is 1.
    assert sent["ingress"] == run_v2.IngressTraffic.INGRESS_TRAFFIC_ALL.value


def test_concurrent_update_answered_409_aborted_is_a_permanent_refusal_sent_once(
    wire: WireServer, actuator: CloudRunAdminActuator, service: dict[str, Any]
) -> None:
    wire.answer("GET", PATH, Reply(200, service))
    wire.answer(
        "PATCH",
        PATH,
        google_error(
            409,
            "ABORTED",
            "Resource 'sample-api' has been modified. Please apply your changes to the latest version and try again.",
        ),
    )

    with pytest.raises(ActuatorError) as caught:
        actuator.apply({"memory_mib": 1024})

    error = caught.value
    assert not isinstance(error, ActuatorUnavailable)
    assert not is_transient(error)
    message = str(error)
    assert f"update_service {NAME}" in message
    assert "409" in message and "has been modified" in message
    # One PATCH with the stale etag, no operation polled, nothing sent again over the other change.
    assert [(r.method, r.path) for r in wire.requests] == [("GET", PATH), ("PATCH", PATH)]
    assert wire.requests[1].json()["etag"] == service["etag"]


def test_rollback_over_a_concurrent_change_sends_no_update(
    wire: WireServer, actuator: CloudRunAdminActuator, service: dict[str, Any]
) -> None:
    changed_by_someone = copy.deepcopy(service)
    changed_by_someone["template"]["containers"][0]["resources"]["limits"]["memory"] = "2Gi"
    changed_by_someone["etag"] = '"someone-else"'
    wire.answer("GET", PATH, Reply(200, changed_by_someone))
    snapshot = {"previous": {"memory": "512Mi"}}

    with pytest.raises(ConflictError, match=r"\['memory'\] changed since apply"):
        actuator.restore(snapshot, {"memory_mib": 1024})

    assert [(r.method, r.path) for r in wire.requests] == [("GET", PATH)]


def test_permission_denied_is_permanent_with_the_api_message(
    wire: WireServer, actuator: CloudRunAdminActuator
) -> None:
    denied = f"Permission 'run.services.get' denied on resource '{NAME}' (or resource may not exist)."
    wire.answer("GET", PATH, google_error(403, "PERMISSION_DENIED", denied))

    with pytest.raises(ActuatorError) as caught:
        actuator.read()

    assert not is_transient(caught.value)
    message = str(caught.value)
    assert message.startswith(f"Cloud Run get_service {NAME}: Forbidden: 403 GET ")
    assert "run.services.get" in message
    assert len(wire.requests) == 1  # the client library does not retry a 403


def test_unavailable_update_is_transient(
    wire: WireServer, actuator: CloudRunAdminActuator, service: dict[str, Any]
) -> None:
    wire.answer("GET", PATH, Reply(200, service))
    wire.answer("PATCH", PATH, google_error(503, "UNAVAILABLE", "The service is currently unavailable."))

    with pytest.raises(ActuatorUnavailable) as caught:
        actuator.apply({"concurrency": 40})

    assert is_transient(caught.value)
    assert "ServiceUnavailable: 503 PATCH" in str(caught.value)
    assert [r.method for r in wire.requests] == ["GET", "PATCH"]
