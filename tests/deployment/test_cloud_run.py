"""Cloud Run deployer against a fake Admin API client that answers with real ``run_v2`` messages
(starting from a recorded service resource), and through the whole pipeline."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.api_core import exceptions as gexc
from google.cloud import run_v2
from orchestra.actuators.cloud_run_admin import CloudRunAdminActuator
from orchestra.actuators.cloud_run_client import RUN_SERVICES
from orchestra.automations.deployment.deployers import DeployRequest, RollbackRequest, build_deployer
from orchestra.automations.deployment.deployers.base import DeployerError, DeployerUnavailable
from orchestra.automations.deployment.deployers.cloud_run import revision_name
from orchestra.automations.deployment.plugin import DeploymentAutomation
from orchestra.automations.deployment.requests import request_deployment
from orchestra.automations.deployment.settings import CloudRunDeployerConfig
from orchestra.automations.deployment.state import DeploymentState, get_deployment
from orchestra.clock import RandomIds
from orchestra.errors import is_transient
from orchestra.models import Mode, RunStatus, TriggerKind
from orchestra.registry import Registry
from orchestra.runner import Runner, RunRequest

from tests.deployment.conftest import make_config

RECORDED = Path(__file__).parent / "data" / "cloud_run_service.json"
LATEST = run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST
REVISION = run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION
SERVICE = "projects/shop-prod/locations/europe-west1/services/api"
IMAGE_REPO = "europe-docker.pkg.dev/shop-prod/app/api"
SHA1 = "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432"
SHA2 = "0123456789abcdef0123456789abcdef01234567"


def copy(service: run_v2.Service) -> run_v2.Service:
    return run_v2.Service.deserialize(run_v2.Service.serialize(service))


class Operation:
    def __init__(self, result: run_v2.Service) -> None:
        self._result = result

    def result(self, timeout: float | None = None) -> run_v2.Service:
        return self._result


class FakeServicesClient:
    """Behaves like the Admin API for what the deployer uses: a changed template creates a named
    revision (ready unless its image is listed as broken), traffic statuses follow traffic."""

    def __init__(self, *, broken_images: tuple[str, ...] = (), fail: Exception | None = None) -> None:
        self.service = run_v2.Service.from_json(RECORDED.read_text())
        self.broken_images = broken_images
        self.fail = fail
        self.updates: list[run_v2.Service] = []

    def get_service(self, name: str) -> run_v2.Service:
        if name != self.service.name:
            raise gexc.NotFound(f"Resource '{name}' was not found")
        return copy(self.service)

    def update_service(self, request: run_v2.UpdateServiceRequest) -> Operation:
        if self.fail is not None:
            raise self.fail
        sent = copy(request.service)
        self.updates.append(sent)
        if sent.etag != self.service.etag:
            raise gexc.Aborted("etag mismatch: the service changed")
        new = copy(sent)
        new.generation = self.service.generation + 1
        new.etag = f'"etag-{new.generation}"'
        image = sent.template.containers[0].image
        if sent.template.revision and sent.template.revision != self.service.template.revision:
            full = f"{SERVICE}/revisions/{sent.template.revision}"
            new.latest_created_revision = full
            if image in self.broken_images:
                new.latest_ready_revision = self.service.latest_ready_revision
                new.terminal_condition = run_v2.Condition(
                    type_="Ready",
                    state=run_v2.Condition.State.CONDITION_FAILED,
                    message="The user-provided container failed to start and listen on PORT=8080",
                )
            else:
                new.latest_ready_revision = full
        del new.traffic_statuses[:]
        for target in sent.traffic:
            new.traffic_statuses.append(
                run_v2.TrafficTargetStatus(
                    type_=target.type_, revision=target.revision, percent=target.percent
                )
            )
        self.service = new
        return Operation(copy(new))

    def serving(self) -> str:
        (status,) = self.service.traffic_statuses
        assert status.percent == 100
        if status.type_ == LATEST:
            return self.service.latest_ready_revision.rsplit("/", 1)[-1]
        return status.revision


def config(**extra: Any) -> CloudRunDeployerConfig:
    return CloudRunDeployerConfig(
        type="cloud_run",
        project="shop-prod",
        region="europe-west1",
        service="api",
        image_repository=IMAGE_REPO,
        **extra,
    )


def test_deploy_builds_a_named_revision_of_the_commit_image_and_moves_traffic():
    client = FakeServicesClient()
    deployer = build_deployer(config(), run_client=client)
    result = deployer.deploy(DeployRequest(deployment_id="dep-1", environment="production", revision=SHA1))
    (sent,) = client.updates
    api, sidecar = sent.template.containers
    assert api.image == f"{IMAGE_REPO}:{SHA1}"
    assert sidecar.image.endswith("otel-collector:0.98.0")  # untouched
    assert sent.template.revision == revision_name(
        "api", SHA1, "dep-1"
    ) and sent.template.revision.startswith("api-9f8e7d6-")
    assert sent.template.labels["orchestra-revision"] == SHA1
    assert [(t.type_, t.percent) for t in sent.traffic] == [(LATEST, 100)]
    assert sent.etag == run_v2.Service.from_json(RECORDED.read_text()).etag  # optimistic concurrency
    assert client.serving() == sent.template.revision
    assert result.url == "https://api-5xq2lm3b7a-ew.a.run.app"
    assert result.details["revision_name"] == sent.template.revision


def test_without_an_injected_client_deployer_and_actuator_share_the_process_wide_one():
    client = FakeServicesClient()
    previous = RUN_SERVICES.replace(client)
    try:
        deployer = build_deployer(config())
        actuator = CloudRunAdminActuator(SERVICE)
        assert deployer.client is client and actuator.client is client  # type: ignore[attr-defined]
        deployer.deploy(DeployRequest(deployment_id="dep-1", environment="production", revision=SHA1))
        assert len(client.updates) == 1
        assert actuator.read().max_instances == client.service.template.scaling.max_instance_count
    finally:
        RUN_SERVICES.replace(previous)


def test_current_reports_what_serves_before_orchestra_deployed_anything():
    current = build_deployer(config(), run_client=FakeServicesClient()).current()
    assert current["revision_name"] == "api-1a2b3c4-0f9e8"
    assert current["revision"] == "1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b"


def test_rollback_sends_all_traffic_to_the_last_known_good_revision():
    client = FakeServicesClient()
    deployer = build_deployer(config(), run_client=client)
    deployer.deploy(DeployRequest(deployment_id="dep-2", environment="production", revision=SHA2))
    assert client.serving() != "api-1a2b3c4-0f9e8"
    deployer.rollback(
        RollbackRequest(
            deployment_id="dep-2",
            environment="production",
            failed_revision=SHA2,
            target={"revision": "1a2b3c4", "revision_name": "api-1a2b3c4-0f9e8"},
        )
    )
    last = client.updates[-1]
    assert [(t.type_, t.revision, t.percent) for t in last.traffic] == [(REVISION, "api-1a2b3c4-0f9e8", 100)]
    assert client.serving() == "api-1a2b3c4-0f9e8"
    # The template is left alone: no new revision is built to roll back.
    assert last.template.revision == revision_name("api", SHA2, "dep-2")


def test_a_revision_that_never_becomes_ready_is_a_deploy_failure():
    client = FakeServicesClient(broken_images=(f"{IMAGE_REPO}:{SHA1}",))
    with pytest.raises(DeployerError, match="did not become ready.*failed to start"):
        build_deployer(config(), run_client=client).deploy(
            DeployRequest(deployment_id="dep-3", environment="production", revision=SHA1)
        )


@pytest.mark.parametrize(
    ("error", "kind", "transient"),
    [
        (gexc.ServiceUnavailable("backend unavailable"), DeployerUnavailable, True),
        (gexc.PermissionDenied("run.services.update denied"), DeployerError, False),
    ],
)
def test_api_errors_are_classified(error, kind, transient):
    deployer = build_deployer(config(), run_client=FakeServicesClient(fail=error))
    with pytest.raises(kind) as caught:
        deployer.deploy(DeployRequest(deployment_id="dep-4", environment="production", revision=SHA1))
    assert is_transient(caught.value) is transient
    assert SERVICE in str(caught.value)


def test_unknown_container_is_named():
    deployer = build_deployer(config(container="web"), run_client=FakeServicesClient())
    with pytest.raises(DeployerError, match="no container named 'web'; found api, otel-collector"):
        deployer.deploy(DeployRequest(deployment_id="dep-5", environment="production", revision=SHA1))


class Health:
    """A real local HTTP endpoint standing in for the Cloud Run URL; its answer is switchable."""

    def __init__(self) -> None:
        self.status = 200
        health = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(health.status)
                self.end_headers()
                self.wfile.write(b"ok" if health.status == 200 else b"boom")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def health() -> Iterator[Health]:
    h = Health()
    try:
        yield h
    finally:
        h.server.shutdown()
        h.server.server_close()


def test_pipeline_with_cloud_run_rolls_back_traffic_on_failed_health(sqlite_store, clock, health):
    client = FakeServicesClient()

    class CloudRunDeployment(DeploymentAutomation):
        run_client = client

    registry = Registry({})
    registry.register(CloudRunDeployment)
    cfg = make_config(
        {
            "development": {
                "deployer": {**config(url=health.url).model_dump(), "type": "cloud_run"},
                "verification": {
                    "path": "/healthz",
                    "probes": 4,
                    "interval_seconds": 2,
                    "min_success_ratio": 0.75,
                },
            }
        }
    )
    runner = Runner(
        cfg, sqlite_store, clock=clock, owner="w", registry=registry, heartbeat_in_background=False
    )

    def deploy(revision: str, trigger: str) -> Any:
        dep = request_deployment(
            sqlite_store,
            clock,
            RandomIds(hash(trigger) % 1000),
            environment="development",
            ref="refs/heads/feature/x",
            revision=revision,
            repository="shop/api",
            requested_by="github:dev",
            source_event=trigger,
        )
        run = runner.submit(
            RunRequest(
                task="deployment",
                environment="development",
                mode=Mode.apply,
                trigger_kind=TriggerKind.scheduled,
                trigger_id=trigger,
                requested_by="scheduler",
            )
        ).run
        return dep, run

    first, run = deploy(SHA1, "push-1")
    assert run.status == RunStatus.succeeded, run.reason
    first_revision = client.serving()
    assert first_revision == revision_name("api", SHA1, first.id)
    stored = get_deployment(sqlite_store, first.id)
    # Nothing deployed by orchestra before: the revision serving at the time is the fallback.
    assert stored.last_known_good["revision_name"] == "api-1a2b3c4-0f9e8"

    health.status = 503
    clock.advance(minutes=10)
    second, run = deploy(SHA2, "push-2")
    assert run.status == RunStatus.rolled_back
    assert client.serving() == first_revision
    stored = get_deployment(sqlite_store, second.id)
    assert stored.state == DeploymentState.rolled_back
    assert stored.rolled_back_to["revision_name"] == first_revision
    assert stored.verification["health"]["success_ratio"] == 0.0
