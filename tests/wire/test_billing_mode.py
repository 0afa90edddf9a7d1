"""The billing-mode switch through the real ``run_v2.ServicesClient`` REST transport.

The cost automation reads the service, switches it to instance-based billing, verifies it and
rolls it back, all against the local wire server: the tests assert on the ``services.patch``
bodies the client library really sent.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from cost.conftest import build_context
from google.auth.credentials import AnonymousCredentials
from google.cloud import run_v2
from orchestra.automation import RunContext
from orchestra.automations.cost import CostAutomation
from orchestra.automations.cost.engine import sample_dir
from orchestra.store.base import StateStore

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
    # analyze, prepare (drift check, snapshot), apply: the recorded service; verify and rollback
    # read the switched one.
    wire.answer(
        "GET", PATH, *[Reply(200, service)] * 4, Reply(200, instance_based), Reply(200, instance_based)
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

    assert [(r.method, r.path) for r in wire.requests] == [("GET", PATH)] * 4 + [
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
