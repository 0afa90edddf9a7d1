"""Cloud Run Admin API actuator against recorded run_v2.Service responses."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from google.cloud import run_v2
from orchestra.actuators.base import ServiceConfig
from orchestra.actuators.cloud_run_admin import ActuatorError, ActuatorUnavailable, CloudRunAdminActuator
from orchestra.actuators.cloud_run_client import RUN_SERVICES, SharedClient
from orchestra.actuators.cloud_run_yaml import ConflictError
from orchestra.errors import InputError

from .fakes import FakeServicesClient

NAME = "projects/example-project/locations/europe-west1/services/sample-api"


def test_reads_the_service_template() -> None:
    actuator = CloudRunAdminActuator(NAME, client=FakeServicesClient())
    assert actuator.read() == ServiceConfig(
        cpu=1, memory_mib=512, concurrency=80, min_instances=0, max_instances=10
    )


def test_update_sends_the_changed_template_and_rollback_restores_it() -> None:
    client = FakeServicesClient()
    actuator = CloudRunAdminActuator(NAME, client=client, operation_timeout=42)
    snapshot = actuator.snapshot()
    assert snapshot["previous"]["cpu"] == "1000m" and snapshot["generation"] == 7
    changes = {"cpu": 2, "memory_mib": 1024, "min_instances": 1, "startup_cpu_boost": True, "concurrency": 40}
    config = actuator.apply(changes)
    assert config == ServiceConfig(
        cpu=2, memory_mib=1024, concurrency=40, min_instances=1, max_instances=10, startup_cpu_boost=True
    )
    sent = client.updates[0]
    container = sent["template"]["containers"][0]
    assert container["resources"]["limits"] == {"cpu": "2", "memory": "1Gi"}
    assert container["resources"]["startup_cpu_boost"] is True
    assert sent["template"]["scaling"]["min_instance_count"] == 1
    assert sent["template"]["max_instance_request_concurrency"] == 40
    assert sent["template"]["revision"] == ""  # Cloud Run names the new revision
    assert sent["etag"] == snapshot["etag"]  # a concurrent change fails the update
    assert container["image"].endswith("9d6b3f") and sent["template"]["service_account"]

    result = actuator.restore(snapshot, changes)
    assert result["restored"] is True
    restored = client.service
    assert dict(restored.template.containers[0].resources.limits) == {"cpu": "1000m", "memory": "512Mi"}
    assert restored.template.scaling.min_instance_count == 0
    assert restored.template.max_instance_request_concurrency == 80
    assert restored.template.containers[0].resources.startup_cpu_boost is False
    assert actuator.restore(snapshot, changes)["restored"] is False
    assert len(client.updates) == 2


def test_rollback_refuses_to_overwrite_another_change() -> None:
    client = FakeServicesClient()
    actuator = CloudRunAdminActuator(NAME, client=client)
    snapshot = actuator.snapshot()
    actuator.apply({"max_instances": 20})
    client.service.template.scaling.max_instance_count = 50  # someone else changed it
    with pytest.raises(ConflictError, match="max_instance_count"):
        actuator.restore(snapshot, {"max_instances": 20})


def test_invalid_changes_never_reach_the_api() -> None:
    client = FakeServicesClient()
    with pytest.raises(InputError, match="exceeds the 1 vCPU cap"):
        CloudRunAdminActuator(NAME, client=client).apply({"memory_mib": 16384})
    assert client.updates == []


def test_api_errors_are_classified() -> None:
    actuator = CloudRunAdminActuator(NAME.replace("sample-api", "missing"), client=FakeServicesClient())
    with pytest.raises(ActuatorError, match="NotFound"):
        actuator.read()
    client = FakeServicesClient()
    actuator = CloudRunAdminActuator(NAME, client=client)
    actuator.read()
    client.service.etag = '"changed"'
    service = run_v2.Service.deserialize(run_v2.Service.serialize(client.service))
    service.etag = '"stale"'
    from google.api_core.exceptions import ServiceUnavailable

    client.update_service = lambda request: (_ for _ in ()).throw(ServiceUnavailable("later"))  # type: ignore[method-assign]
    with pytest.raises(ActuatorUnavailable):
        actuator.apply({"max_instances": 11})


def test_rejects_malformed_names() -> None:
    with pytest.raises(InputError, match="projects/PROJECT/locations/REGION/services/SERVICE"):
        CloudRunAdminActuator("sample-api")


# ----- the process-wide client -----


@pytest.fixture
def shared_client() -> Iterator[FakeServicesClient]:
    """A fake installed as the process-wide client; the previous one comes back afterwards."""
    client = FakeServicesClient()
    previous = RUN_SERVICES.replace(client)
    yield client
    RUN_SERVICES.replace(previous)


def test_without_an_injected_client_the_actuator_uses_the_process_wide_one(
    shared_client: FakeServicesClient,
) -> None:
    first = CloudRunAdminActuator(NAME)
    second = CloudRunAdminActuator(NAME.replace("sample-api", "other-api"))
    assert first.client is shared_client and second.client is shared_client
    first.apply({"min_instances": 2})
    assert shared_client.updates[0]["template"]["scaling"]["min_instance_count"] == 2


def test_an_injected_client_wins_over_the_process_wide_one(shared_client: FakeServicesClient) -> None:
    own = FakeServicesClient()
    CloudRunAdminActuator(NAME, client=own).apply({"min_instances": 2})
    assert len(own.updates) == 1 and shared_client.updates == []


def test_the_shared_client_is_built_once_however_many_threads_ask_first() -> None:
    built: list[object] = []
    barrier = threading.Barrier(8)

    def build() -> object:
        client = object()
        built.append(client)
        return client

    shared: SharedClient[object] = SharedClient(build, what="test client")
    got: list[object] = []

    def use() -> None:
        barrier.wait()
        got.append(shared.get())

    threads = [threading.Thread(target=use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(built) == 1
    assert got == built * 8
    assert shared.get() is built[0]


def test_a_failed_build_is_tried_again_on_next_use() -> None:
    attempts: list[int] = []

    def build() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("no credentials yet")
        return "client"

    shared: SharedClient[str] = SharedClient(build, what="test client")
    with pytest.raises(RuntimeError, match="no credentials yet"):
        shared.get()
    assert shared.get() == "client"
    assert shared.get() == "client" and len(attempts) == 2


def test_replace_installs_a_client_and_none_builds_again_on_next_use() -> None:
    count = iter(range(100))
    shared: SharedClient[int] = SharedClient(lambda: next(count), what="test client")
    assert shared.get() == 0
    assert shared.replace(42) == 0
    assert shared.get() == 42
    assert shared.replace(None) == 42
    assert shared.get() == 1


def test_a_build_failure_is_an_actuator_error_naming_the_service(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_credentials() -> object:
        raise RuntimeError("default credentials not found")

    monkeypatch.setattr(RUN_SERVICES, "_build", no_credentials)
    previous = RUN_SERVICES.replace(None)
    try:
        with pytest.raises(ActuatorError, match=f"get_service {NAME}: RuntimeError: default credentials"):
            CloudRunAdminActuator(NAME).read()
    finally:
        RUN_SERVICES.replace(previous)
