"""Switching a service's billing mode: prepare / apply / verify / rollback, on a service YAML file
and through the Admin API, alone and through the runner."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml
from orchestra.automations.cost import CostAutomation
from orchestra.automations.cost.engine import sample_dir
from orchestra.clock import FakeClock, RandomIds
from orchestra.config import AutomationConfig, default_config_text, parse_config
from orchestra.errors import InputError
from orchestra.inputs import Origin
from orchestra.models import ActionStatus, Mode, RunStatus
from orchestra.registry import Registry
from orchestra.runner import Runner, RunRequest
from orchestra.store.base import StateStore
from performance.fakes import FakeServicesClient

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "cost" / "billing_mode"
THROTTLING = "run.googleapis.com/cpu-throttling"


def busy_metrics() -> dict[str, str]:
    return {
        f"busy-api.{metric}": str(FIXTURES / f"busy-api.{metric}.csv")
        for metric in ("instance_count", "billable_instance_time", "request_count")
    }


def annotations(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text())
    return doc["spec"]["template"]["metadata"]["annotations"]


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    path = tmp_path / "busy-api.yaml"
    shutil.copy(FIXTURES / "busy-api.yaml", path)
    return path


@pytest.fixture
def setup(make_context, manifest: Path):
    ctx = make_context(
        CostAutomation,
        settings={"services": [{"name": "busy-api", "manifest": str(manifest)}]},
        params={"billing": str(sample_dir() / "billing.csv"), "metrics": busy_metrics()},
    )
    automation = CostAutomation()
    [action] = automation.analyze(ctx).actions
    return automation, ctx, action


def test_apply_verify_rollback_on_the_service_yaml(setup, manifest: Path) -> None:
    automation, ctx, action = setup
    original = manifest.read_text()
    assert THROTTLING not in annotations(manifest)  # absent: request-based

    action.rollback = automation.prepare(ctx, action)
    assert action.rollback["previous_text"] == original
    action.result = automation.apply(ctx, action)
    assert annotations(manifest)[THROTTLING] == "false"
    assert automation.verify(ctx, action).ok
    evidence = automation.verify(ctx, action).evidence
    assert evidence["ready"] is None and "not observable" in evidence["readiness"]
    # Nothing else in the service changed.
    assert annotations(manifest)["autoscaling.knative.dev/minScale"] == "1"
    assert yaml.safe_load(manifest.read_text())["spec"]["template"]["spec"]["containers"][0]["resources"] == {
        "limits": {"cpu": "2", "memory": "1Gi"}
    }

    automation.rollback(ctx, action)
    assert manifest.read_text() == original  # byte for byte
    verification = automation.verify(ctx, action)
    assert not verification.ok and verification.evidence["drift"] == {"cpu_idle": True}


def test_request_based_is_written_explicitly(make_context, tmp_path: Path) -> None:
    path = tmp_path / "sparse-api.yaml"
    shutil.copy(FIXTURES / "sparse-api.yaml", path)
    metrics = {
        f"sparse-api.{m}": str(FIXTURES / f"sparse-api.{m}.csv")
        for m in ("instance_count", "active_instances", "request_count")
    }
    ctx = make_context(
        CostAutomation,
        settings={"services": [{"name": "sparse-api", "manifest": str(path)}]},
        params={"billing": str(sample_dir() / "billing.csv"), "metrics": metrics},
    )
    automation = CostAutomation()
    [action] = automation.analyze(ctx).actions
    action.rollback = automation.prepare(ctx, action)
    automation.apply(ctx, action)
    assert annotations(path)[THROTTLING] == "true"
    assert automation.verify(ctx, action).ok


def test_prepare_refuses_a_service_resized_since_the_estimate(setup, manifest: Path) -> None:
    automation, ctx, action = setup
    manifest.write_text(
        manifest.read_text().replace("cpu: '2'", "cpu: '4'").replace("memory: 1Gi", "memory: 4Gi")
    )
    with pytest.raises(InputError, match="changed since the analysis"):
        automation.prepare(ctx, action)


# ----- the Admin API, with a service held in memory -----


class Ready(FakeServicesClient):
    """Updates finish like the API's: the new generation observed, its revision ready."""

    def update_service(self, request: Any) -> Any:
        operation = super().update_service(request)
        self.service.observed_generation = self.service.generation
        operation._result.observed_generation = self.service.generation
        return operation


class NeverReady(Ready):
    """The update goes through, but the new revision does not become ready."""

    def update_service(self, request: Any) -> Any:
        from google.cloud import run_v2

        operation = super().update_service(request)
        if not request.service.template.containers[0].resources.cpu_idle:
            self.service.terminal_condition.state = run_v2.Condition.State.CONDITION_FAILED
            self.service.latest_ready_revision = (
                "projects/example-project/locations/europe-west1/revisions/old"
            )
        return operation


def admin_services(client: FakeServicesClient) -> list[dict[str, Any]]:
    # The recorded service is 1 vCPU / 512 MiB, request-based; busy-api's metrics make it busy.
    return [{"name": "busy-api", "resource_name": client.service.name.replace("sample-api", "busy-api")}]


def renamed(client: FakeServicesClient) -> FakeServicesClient:
    client.service.name = client.service.name.replace("sample-api", "busy-api")
    return client


def test_admin_api_switch_waits_for_readiness_and_rolls_back(make_context) -> None:
    client = renamed(Ready())
    ctx = make_context(
        CostAutomation,
        settings={"services": admin_services(client)},
        params={"billing": str(sample_dir() / "billing.csv"), "metrics": busy_metrics()},
    )
    automation = CostAutomation(run_client=client)
    [action] = automation.analyze(ctx).actions
    assert action.params["changes"] == {"cpu_idle": False}
    assert action.params["previous"] == {"cpu_idle": True, "cpu": 1.0, "memory_mib": 512, "min_instances": 0}

    action.rollback = automation.prepare(ctx, action)
    assert action.rollback["previous"]["cpu_idle"] is True
    automation.apply(ctx, action)
    [sent] = client.updates
    assert sent["template"]["containers"][0]["resources"]["cpu_idle"] is False
    verification = automation.verify(ctx, action)
    assert verification.ok, verification.evidence
    assert verification.evidence["ready"] is True and verification.evidence["generation"] == 8

    automation.rollback(ctx, action)
    assert client.service.template.containers[0].resources.cpu_idle is True
    assert client.updates[-1]["template"]["containers"][0]["resources"]["cpu_idle"] is True


def test_admin_api_service_not_ready_fails_verification(make_context) -> None:
    client = renamed(NeverReady())
    ctx = make_context(
        CostAutomation,
        settings={"services": admin_services(client)},
        params={"billing": str(sample_dir() / "billing.csv"), "metrics": busy_metrics()},
    )
    automation = CostAutomation(run_client=client)
    [action] = automation.analyze(ctx).actions
    action.rollback = automation.prepare(ctx, action)
    automation.apply(ctx, action)
    verification = automation.verify(ctx, action)
    assert not verification.ok
    assert verification.evidence["terminal_condition"] == "CONDITION_FAILED"
    assert "not ready" in verification.evidence["note"]


# ----- through the runner: gates, verification, rollback from the stored action -----


def _runner(
    store: StateStore, services: list[dict[str, Any]], client: Any = None, **environment: Any
) -> Runner:
    config = parse_config(default_config_text())
    config.automations["cost"] = AutomationConfig(settings={"services": services})
    for name, value in environment.items():
        setattr(config.environments["production"], name, value)

    class WithClient(CostAutomation):
        run_client_for_tests: ClassVar[Any] = client

        def __init__(self) -> None:
            super().__init__(run_client=self.run_client_for_tests)

    registry = Registry({})
    registry.register(WithClient)
    return Runner(
        config, store, clock=FakeClock(), ids=RandomIds(5), registry=registry, heartbeat_in_background=False
    )


def _request(environment: str, level: int = 2) -> RunRequest:
    return RunRequest(
        origin=Origin.local,
        task="cost",
        environment=environment,
        mode=Mode.apply,
        automation_level=level,
        params={"billing": str(sample_dir() / "billing.csv"), "metrics": busy_metrics()},
        trigger_id=f"billing-mode-{environment}-{level}",
    )


def test_runner_applies_the_switch_at_level_2(sqlite_store: StateStore, manifest: Path) -> None:
    runner = _runner(sqlite_store, [{"name": "busy-api", "manifest": str(manifest)}])
    run = runner.submit(_request("development")).run
    assert run.status == RunStatus.succeeded, run.reason
    [action] = [a for a in run.actions if a.kind == "set-billing-mode"]
    assert action.status == ActionStatus.applied and action.verified is True
    assert annotations(manifest)[THROTTLING] == "false"


def test_runner_holds_the_switch_where_medium_risk_needs_approval(
    sqlite_store: StateStore, manifest: Path
) -> None:
    original = manifest.read_text()
    runner = _runner(
        sqlite_store, [{"name": "busy-api", "manifest": str(manifest)}], approval_required_risk="medium"
    )
    run = runner.submit(_request("production", level=3)).run
    assert run.status == RunStatus.awaiting_approval, run.reason
    [action] = [a for a in run.actions if a.kind == "set-billing-mode"]
    assert action.status == ActionStatus.awaiting_approval
    assert manifest.read_text() == original


def test_runner_rolls_back_a_switch_whose_service_is_not_ready(sqlite_store: StateStore) -> None:
    client = renamed(NeverReady())
    runner = _runner(sqlite_store, admin_services(client), client)
    run = runner.submit(_request("development")).run
    assert run.status == RunStatus.rolled_back, run.reason
    [action] = [a for a in run.actions if a.kind == "set-billing-mode"]
    assert action.status == ActionStatus.rolled_back
    assert action.result["rollback"]["restored"] is True
    assert client.service.template.containers[0].resources.cpu_idle is True
    assert [u["template"]["containers"][0]["resources"]["cpu_idle"] for u in client.updates] == [False, True]


# ----- the billing mode in the actuators' service configuration -----


def test_the_yaml_annotation_is_the_mode(tmp_path: Path) -> None:
    from orchestra.actuators.cloud_run_yaml import CloudRunYamlActuator

    path = tmp_path / "sparse-api.yaml"
    shutil.copy(FIXTURES / "sparse-api.yaml", path)
    actuator = CloudRunYamlActuator(path)
    assert actuator.read().cpu_idle is False  # 'false': instance-based
    path.write_text(path.read_text().replace(f"        {THROTTLING}: 'false'\n", ""))
    assert actuator.read().cpu_idle is True  # absent: request-based, Cloud Run's default
    # Another change leaves the mode alone.
    actuator.apply({"max_instances": 8})
    assert THROTTLING not in annotations(path) and actuator.read().cpu_idle is True


def test_admin_api_keeps_the_mode_when_it_first_sends_resources() -> None:
    from orchestra.actuators.cloud_run_admin import CloudRunAdminActuator

    client = FakeServicesClient()
    client.service.template.containers[0].resources = None  # a service deployed with no resources
    assert "resources" not in client.service.template.containers[0]
    actuator = CloudRunAdminActuator(client.service.name, client=client)
    assert actuator.read().cpu_idle is True
    actuator.apply({"startup_cpu_boost": True})
    # With resources set, an unset cpu_idle would be instance-based: the request says true.
    assert client.updates[0]["template"]["containers"][0]["resources"]["cpu_idle"] is True
    assert actuator.read().cpu_idle is True


def test_instance_based_billing_needs_one_vcpu() -> None:
    from orchestra.actuators.base import ServiceConfig, check_changes

    fractional = ServiceConfig(cpu=0.5, memory_mib=512)
    with pytest.raises(InputError, match="instance-based billing needs at least 1 vCPU, not 0.5"):
        check_changes(fractional, {"cpu_idle": False}, "service.yaml")
    assert check_changes(ServiceConfig(cpu=1), {"cpu_idle": False}, "service.yaml").cpu_idle is False
