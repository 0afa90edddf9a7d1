"""The billing-mode switch through the real ``run_v2.ServicesClient``, REST and gRPC.

The cost automation reads the service, switches it to instance-based billing, verifies it and
rolls it back, all against the local wire servers: the tests assert on the ``services.patch``
bodies and ``UpdateService`` requests the client library really sent.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from cost.conftest import build_context
from google.auth.credentials import AnonymousCredentials
from google.cloud import run_v2
from google.cloud.run_v2.services.services.transports import ServicesGrpcTransport
from orchestra.automation import RunContext
from orchestra.automations.cost import CostAutomation
from orchestra.automations.cost.engine import sample_dir
from orchestra.store.base import StateStore

from .grpc_server import GrpcWireServer
from .server import Reply, WireServer

NAME = "projects/example-project/locations/europe-west1/services/sample-api"
PATH = f"/v2/{NAME}"
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
OPERATION = "projects/example-project/locations/europe-west1/operations/7d2e4c1a-0b9f-4e3d-8a6c-5f1e2d3c4b5a"


@pytest.fixture
def service() -> dict[str, Any]:
    """The recorded ``services.get`` answer: 1 vCPU, 512 MiB, request-based (``cpuIdle: true``)."""
    return json.loads((FIXTURES / "cloud_run" / "service_v2.json").read_text(encoding="utf-8"))


def switched(
    service: dict[str, Any], *, cpu_idle: bool, generation: int, ready: bool = True
) -> dict[str, Any]:
    """The service as the API answers after an update to ``cpu_idle`` (an unset bool is not sent)."""
    out = copy.deepcopy(service)
    resources = out["template"]["containers"][0]["resources"]
    resources.pop("cpuIdle", None)
    if cpu_idle:
        resources["cpuIdle"] = True
    revision = f"projects/example-project/locations/europe-west1/revisions/sample-api-{generation:05d}-abc"
    out.update(
        generation=str(generation),
        observedGeneration=str(generation),
        etag=f'"etag-{generation}"',
        latestCreatedRevision=revision,
        latestReadyRevision=revision if ready else service["latestReadyRevision"],
    )
    return out


def operation(result: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": OPERATION,
        "done": True,
        "response": {"@type": "type.googleapis.com/google.cloud.run.v2.Service", **result},
    }


@pytest.fixture
def automation(wire: WireServer) -> CostAutomation:
    client = run_v2.ServicesClient(
        transport="rest",
        client_options={"api_endpoint": wire.base_url},
        credentials=AnonymousCredentials(),
    )
    return CostAutomation(run_client=client)


@pytest.fixture
def ctx(sqlite_store: StateStore) -> RunContext:
    metrics = {
        f"sample-api.{metric}": str(FIXTURES / "cost" / "billing_mode" / f"busy-api.{metric}.csv")
        for metric in ("instance_count", "billable_instance_time", "request_count")
    }
    return build_context(
        CostAutomation,
        sqlite_store,
        settings={"services": [{"name": "sample-api", "resource_name": NAME}]},
        params={"billing": str(sample_dir() / "billing.csv"), "metrics": metrics},
    )


def test_switch_sends_the_mode_in_the_patch_body_and_rollback_sends_it_back(
    wire: WireServer, automation: CostAutomation, ctx: RunContext, service: dict[str, Any]
) -> None:
    instance_based = switched(service, cpu_idle=False, generation=8)
    restored = switched(service, cpu_idle=True, generation=9)
    # analyze (the target's sizing, then its billing mode), prepare (drift check, snapshot) and
    # apply read the recorded service; verify and rollback read the switched one.
    wire.answer(
        "GET", PATH, *[Reply(200, service)] * 6, Reply(200, instance_based), Reply(200, instance_based)
    )
    wire.answer("PATCH", PATH, Reply(200, operation(instance_based)), Reply(200, operation(restored)))

    [action] = automation.analyze(ctx).actions
    assert action.kind == "set-billing-mode" and action.params["changes"] == {"cpu_idle": False}
    action.rollback = automation.prepare(ctx, action)
    assert action.rollback["previous"]["cpu_idle"] is True
    action.result = automation.apply(ctx, action)
    verification = automation.verify(ctx, action)
    assert verification.ok, verification.evidence
    assert verification.evidence["ready"] is True
    automation.rollback(ctx, action)

    assert [(r.method, r.path) for r in wire.requests] == [("GET", PATH)] * 6 + [
        ("PATCH", PATH),
        ("GET", PATH),
        ("GET", PATH),
        ("PATCH", PATH),
    ]
    first, second = (r for r in wire.requests if r.method == "PATCH")
    # The whole service goes back under its etag: no update mask. The mode travels in the body.
    for patch in (first, second):
        assert "updateMask" not in patch.query and "update_mask" not in patch.query
    sent = first.json()
    assert sent["etag"] == service["etag"]
    [container] = sent["template"]["containers"]
    # JSON leaves out a false bool: resources without cpuIdle is instance-based billing.
    assert container["resources"] == {"limits": {"cpu": "1000m", "memory": "512Mi"}}
    assert "revision" not in sent["template"]
    assert sent["template"]["scaling"] == service["template"]["scaling"]
    assert container["image"] == service["template"]["containers"][0]["image"]

    back = second.json()
    assert back["etag"] == instance_based["etag"]
    assert back["template"]["containers"][0]["resources"] == {
        "limits": {"cpu": "1000m", "memory": "512Mi"},
        "cpuIdle": True,
    }


def test_a_service_that_is_not_ready_fails_verification(
    wire: WireServer, automation: CostAutomation, ctx: RunContext, service: dict[str, Any]
) -> None:
    stuck = switched(service, cpu_idle=False, generation=8, ready=False)
    stuck["terminalCondition"] = {"type": "Ready", "state": "CONDITION_FAILED"}
    wire.answer("GET", PATH, *[Reply(200, service)] * 4, Reply(200, stuck))
    wire.answer("PATCH", PATH, Reply(200, operation(stuck)))

    [action] = automation.analyze(ctx).actions
    action.rollback = automation.prepare(ctx, action)
    automation.apply(ctx, action)
    verification = automation.verify(ctx, action)

    assert not verification.ok
    assert verification.evidence["config"]["cpu_idle"] is False  # the mode is there...
    assert verification.evidence["terminal_condition"] == "CONDITION_FAILED"  # ...the service is not
    assert verification.evidence["latest_ready_revision"] == service["latestReadyRevision"]


# ----- gRPC: the transport the process-wide client uses by default -----

SERVICES = "google.cloud.run.v2.Services"


class _OperationCodec:
    """``google.longrunning.Operation`` is a plain protobuf message: the server encodes it itself."""

    @staticmethod
    def serialize(message: Any) -> bytes:
        return message.SerializeToString()

    @staticmethod
    def deserialize(data: bytes) -> Any:
        from google.longrunning import operations_pb2

        return operations_pb2.Operation.FromString(data)


def done(service: run_v2.Service) -> Any:
    from google.longrunning import operations_pb2
    from google.protobuf import any_pb2

    response = any_pb2.Any()
    response.Pack(run_v2.Service.pb(service))
    return operations_pb2.Operation(name=OPERATION, done=True, response=response)


@pytest.fixture
def grpc_automation(grpc_wire: GrpcWireServer) -> Iterator[CostAutomation]:
    grpc_wire.register(SERVICES, "GetService", run_v2.GetServiceRequest, run_v2.Service)
    grpc_wire.register(SERVICES, "UpdateService", run_v2.UpdateServiceRequest, _OperationCodec)
    channel = grpc.insecure_channel(grpc_wire.host)
    client = run_v2.ServicesClient(transport=ServicesGrpcTransport(channel=channel))
    try:
        yield CostAutomation(run_client=client)
    finally:
        channel.close()


def test_switch_over_grpc_sends_the_mode_in_the_update_request(
    grpc_wire: GrpcWireServer, grpc_automation: CostAutomation, ctx: RunContext, service: dict[str, Any]
) -> None:
    original = run_v2.Service.from_json(json.dumps(service))
    instance_based = run_v2.Service.from_json(json.dumps(switched(service, cpu_idle=False, generation=8)))
    restored = run_v2.Service.from_json(json.dumps(switched(service, cpu_idle=True, generation=9)))
    get, update = f"/{SERVICES}/GetService", f"/{SERVICES}/UpdateService"
    grpc_wire.answer(get, *[original] * 6, instance_based, instance_based)
    grpc_wire.answer(update, done(instance_based), done(restored))

    [action] = grpc_automation.analyze(ctx).actions
    action.rollback = grpc_automation.prepare(ctx, action)
    action.result = grpc_automation.apply(ctx, action)
    assert action.result["config"]["cpu_idle"] is False  # the operation's service
    assert grpc_automation.verify(ctx, action).ok
    grpc_automation.rollback(ctx, action)

    calls = [r.method for r in grpc_wire.requests]
    assert calls == [get] * 6 + [update, get, get, update]
    first, second = (r for r in grpc_wire.requests if r.method == update)
    sent = first.request.service
    assert sent.name == NAME and sent.etag == service["etag"]
    assert not first.request.validate_only and not first.request.allow_missing
    assert "update_mask" not in run_v2.UpdateServiceRequest.to_dict(first.request)  # the whole service
    [container] = sent.template.containers
    assert "resources" in container and container.resources.cpu_idle is False
    assert dict(container.resources.limits) == {"cpu": "1000m", "memory": "512Mi"}
    assert sent.template.revision == ""
    # Routed to the service's region, taken from its name.
    assert first.metadata["x-goog-request-params"] == "location=europe-west1"

    back = second.request.service
    assert back.etag == '"etag-8"' and back.template.containers[0].resources.cpu_idle is True
