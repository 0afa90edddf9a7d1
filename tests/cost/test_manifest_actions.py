"""Cost actions on a real Cloud Run service manifest: prepare / apply / verify / rollback."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from orchestra.automations.cost import CostAutomation
from orchestra.automations.cost.engine import sample_dir
from orchestra.errors import InputError
from orchestra.models import Risk

# The staging-admin Cloud Run service (also read by tests/architecture/test_read_only_analysis.py).
MANIFEST = (Path(__file__).resolve().parents[1] / "fixtures/cost/staging-admin.yaml").read_text()


@pytest.fixture
def setup(make_context, tmp_path: Path):
    manifest = tmp_path / "staging-admin.yaml"
    manifest.write_text(MANIFEST)
    services = [
        {
            "name": "staging-admin",
            "min_instances": 3,
            "vcpu": 2,
            "memory_gib": 4,
            "billing": "instance",
            "manifest": str(manifest),
        }
    ]
    traffic = sample_dir() / "metrics" / "staging-admin" / "request_count.csv"
    ctx = make_context(
        CostAutomation,
        settings={"services": services},
        params={"billing": str(sample_dir() / "billing.csv"), "metrics": {"request_count": str(traffic)}},
    )
    automation = CostAutomation()
    analysis = automation.analyze(ctx)
    return automation, ctx, analysis, manifest


def min_scale(path: Path) -> str | None:
    doc = yaml.safe_load(path.read_text())
    return doc["spec"]["template"]["metadata"]["annotations"].get("autoscaling.knative.dev/minScale")


def test_idle_service_with_manifest_gets_an_action(setup) -> None:
    automation, ctx, analysis, manifest = setup
    [action] = analysis.actions
    assert action.kind == "set-min-instances" and action.risk == Risk.medium
    assert action.params["changes"] == {"min_instances": 0}
    assert action.params["target"] == {"type": "cloud-run-yaml", "path": str(manifest.resolve())}
    finding = next(f for f in analysis.findings if f.id == "waste:idle-min-instances:staging-admin")
    assert finding.evidence["action"] == action.id


def test_apply_verify_rollback_on_the_file(setup) -> None:
    automation, ctx, analysis, manifest = setup
    [action] = analysis.actions
    action.rollback = automation.prepare(ctx, action)
    assert action.rollback["previous_text"] == MANIFEST
    action.result = automation.apply(ctx, action)
    assert min_scale(manifest) == "0"
    doc = yaml.safe_load(manifest.read_text())
    assert doc["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"] == "4Gi"
    assert automation.verify(ctx, action).ok
    automation.rollback(ctx, action)
    assert manifest.read_text() == MANIFEST  # byte for byte
    automation.rollback(ctx, action)  # twice is harmless
    assert manifest.read_text() == MANIFEST
    assert not automation.verify(ctx, action).ok


def test_rollback_refuses_to_overwrite_a_later_edit(setup) -> None:
    from orchestra.actuators.cloud_run_yaml import ConflictError

    automation, ctx, analysis, manifest = setup
    [action] = analysis.actions
    action.rollback = automation.prepare(ctx, action)
    action.result = automation.apply(ctx, action)
    edited = manifest.read_text().replace("admin:1.4.2", "admin:1.5.0")
    manifest.write_text(edited)
    with pytest.raises(ConflictError):
        automation.rollback(ctx, action)
    assert manifest.read_text() == edited


def test_apply_refuses_a_manifest_for_another_service(setup) -> None:
    automation, ctx, analysis, manifest = setup
    [action] = analysis.actions
    manifest.write_text(MANIFEST.replace("name: staging-admin", "name: checkout-api"))
    with pytest.raises(InputError, match="not 'staging-admin'"):
        automation.prepare(ctx, action)


def test_admin_api_actions_go_through_the_cloud_run_admin_breaker(make_context) -> None:
    from google.api_core.exceptions import ServiceUnavailable
    from orchestra.actuators.cloud_run_admin import ActuatorUnavailable
    from orchestra.breaker import DependencyUnavailable
    from performance.fakes import FakeServicesClient

    class Down(FakeServicesClient):
        def get_service(self, name: str) -> object:
            self.gets += 1
            raise ServiceUnavailable("admin API down")

    run_client = Down()
    name = run_client.service.name
    services = [{"name": name.rsplit("/", 1)[-1], "min_instances": 3, "resource_name": name}]
    traffic = sample_dir() / "metrics" / "staging-admin" / "request_count.csv"
    ctx = make_context(
        CostAutomation,
        settings={"services": services},
        params={"billing": str(sample_dir() / "billing.csv"), "metrics": {"request_count": str(traffic)}},
    )
    automation = CostAutomation(run_client=run_client)
    [action] = automation.analyze(ctx).actions
    assert action.params["target"] == {"type": "cloud-run-admin", "name": name}
    # The analysis' own read of the service (its configuration is the truth) was the first failure.
    for _ in range(ctx.config.runner.breaker.failure_threshold - 1):
        with pytest.raises(ActuatorUnavailable):
            automation.prepare(ctx, action)
    gets = run_client.gets
    with pytest.raises(DependencyUnavailable):
        automation.apply(ctx, action)
    assert run_client.gets == gets  # refused without calling the API
