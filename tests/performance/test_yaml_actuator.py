"""The Cloud Run service YAML actuator (the document `gcloud run services describe --format export` writes)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from orchestra.actuators.base import ServiceConfig, actuator_from_target
from orchestra.actuators.cloud_run_yaml import (
    MAX_DOCUMENT_BYTES,
    MAX_SCALE,
    MIN_SCALE,
    CloudRunYamlActuator,
    ConflictError,
)
from orchestra.errors import InputError

from .helpers import copy_yaml


def test_reads_the_export_document(tmp_path: Path) -> None:
    actuator = CloudRunYamlActuator(copy_yaml(tmp_path))
    assert actuator.read() == ServiceConfig(
        cpu=1, memory_mib=512, concurrency=80, min_instances=0, max_instances=10, startup_cpu_boost=False
    )
    assert actuator.service_name() == "sample-api"


def test_apply_edits_fields_and_drops_the_revision_name(tmp_path: Path) -> None:
    path = copy_yaml(tmp_path)
    before = yaml.safe_load(path.read_text())
    actuator = CloudRunYamlActuator(path)
    snapshot = actuator.snapshot()
    changes = {
        "cpu": 2,
        "memory_mib": 2048,
        "concurrency": 40,
        "min_instances": 1,
        "max_instances": 20,
        "startup_cpu_boost": True,
    }
    config = actuator.apply(changes)
    assert config == ServiceConfig(
        cpu=2, memory_mib=2048, concurrency=40, min_instances=1, max_instances=20, startup_cpu_boost=True
    )
    after = yaml.safe_load(path.read_text())
    template = after["spec"]["template"]
    assert template["spec"]["containers"][0]["resources"]["limits"] == {"cpu": "2", "memory": "2Gi"}
    assert template["spec"]["containerConcurrency"] == 40
    assert template["metadata"]["annotations"][MIN_SCALE] == "1"
    assert template["metadata"]["annotations"][MAX_SCALE] == "20"
    assert template["metadata"]["annotations"]["run.googleapis.com/startup-cpu-boost"] == "true"
    assert "name" not in template["metadata"]  # `services replace` must create a new revision
    # Everything else is untouched.
    assert after["metadata"] == before["metadata"] and after["spec"]["traffic"] == before["spec"]["traffic"]
    assert (
        template["spec"]["containers"][0]["image"]
        == before["spec"]["template"]["spec"]["containers"][0]["image"]
    )
    assert list(after) == list(before)

    restored = actuator.restore(snapshot, changes)
    assert restored["restored"] is True
    assert path.read_text() == snapshot["previous_text"]
    assert actuator.restore(snapshot, changes)["restored"] is False  # safe twice


def test_refuses_invalid_configuration(tmp_path: Path) -> None:
    path = copy_yaml(tmp_path)
    text = path.read_text()
    actuator = CloudRunYamlActuator(path)
    with pytest.raises(InputError, match="exceeds the 1 vCPU cap"):
        actuator.apply({"memory_mib": 8192})
    with pytest.raises(InputError, match="min instances 20 exceeds max instances 10"):
        actuator.apply({"min_instances": 20})
    assert path.read_text() == text


def test_rollback_refuses_to_overwrite_someone_elses_edit(tmp_path: Path) -> None:
    path = copy_yaml(tmp_path)
    actuator = CloudRunYamlActuator(path)
    snapshot = actuator.snapshot()
    actuator.apply({"cpu": 2})
    path.write_text(path.read_text().replace("containerConcurrency: 80", "containerConcurrency: 10"))
    with pytest.raises(ConflictError, match="changed since it was edited"):
        actuator.restore(snapshot, {"cpu": 2})


def test_rejects_other_documents(tmp_path: Path) -> None:
    path = tmp_path / "deploy.yaml"
    path.write_text("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n")
    with pytest.raises(InputError, match="serving.knative.dev/v1"):
        CloudRunYamlActuator(path).read()
    path.write_text("a: [1\n")
    with pytest.raises(InputError, match="not valid YAML"):
        CloudRunYamlActuator(path).read()


def test_quantities_and_sidecars(tmp_path: Path) -> None:
    path = tmp_path / "svc.yaml"
    path.write_text(
        """apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: api}
spec:
  template:
    spec:
      containers:
      - image: sidecar
        resources: {limits: {cpu: 500m, memory: 256Mi}}
      - image: app
        ports: [{containerPort: 8080}]
        resources: {limits: {cpu: '4', memory: 4G}}
"""
    )
    actuator = actuator_from_target({"type": "cloud-run-yaml", "path": str(path)})
    config = actuator.read()
    assert (
        config.cpu == 4
        and config.memory_mib == 3815
        and config.concurrency == 80
        and config.max_instances == 100
    )
    actuator.apply({"memory_mib": 8192})
    doc = yaml.safe_load(path.read_text())
    assert doc["spec"]["template"]["spec"]["containers"][1]["resources"]["limits"]["memory"] == "8Gi"
    assert doc["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"] == "256Mi"


# ----- the service YAML as an input: bounded, strict, quoted only as excerpts -----

SECRET = "secret-token-123"
PAD = "x" * 45  # pushes what follows past the excerpt bound


@pytest.mark.parametrize(
    ("path", "problem"),
    [("/dev/zero", "not a regular file"), ("/dev/urandom", "not a regular file"), ("/", "is a directory")],
)
def test_devices_and_directories_are_refused(path: str, problem: str) -> None:
    with pytest.raises(InputError, match=f"^{path}: {problem}"):
        CloudRunYamlActuator(path).read()


def test_a_fifo_is_refused_without_waiting(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "service.yaml"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="not a regular file"):
        CloudRunYamlActuator(fifo).snapshot()


def test_a_document_larger_than_the_limit_is_refused_unread(tmp_path: Path) -> None:
    path = copy_yaml(tmp_path)
    text = path.read_text()
    path.write_text(text + "#" * (MAX_DOCUMENT_BYTES - len(text.encode()) - 1) + "\n")
    assert CloudRunYamlActuator(path).read().max_instances == 10  # exactly the limit is fine
    path.write_text(text + "#" * (MAX_DOCUMENT_BYTES - len(text.encode())) + "\n")
    with pytest.raises(
        InputError, match=f"larger than {MAX_DOCUMENT_BYTES} bytes, the limit for a YAML document"
    ):
        CloudRunYamlActuator(path).read()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("apiVersion: v1\nkind: Caf\xe9\n".encode("latin-1"), r":2:10: not valid YAML: .*UTF-8"),
        (b"apiVersion: v1\nkind: \x1b[2J\n", r":2:7: not valid YAML: control character U\+001B"),
        (f"spec: *{PAD}{SECRET}\n".encode(), rf":1:7: not valid YAML: alias '\*{PAD[:39]}…' names no anchor"),
        (
            b"spec: !!python/object/apply:os.system [id]\n",
            r":1:7: not valid YAML: tag '!!python/object/apply",
        ),
        (
            f"apiVersion: serving.knative.dev/v1\nkind: {PAD}{SECRET}\n".encode(),
            rf"found 'serving.knative.dev/v1' / '{PAD[:40]}…'$",
        ),
    ],
    ids=["latin1", "control", "alias", "python-tag", "kind"],
)
def test_broken_documents_name_the_position_and_quote_excerpts(
    tmp_path: Path, text: bytes, problem: str
) -> None:
    path = tmp_path / "svc.yaml"
    path.write_bytes(text)
    with pytest.raises(InputError, match=problem) as err:
        CloudRunYamlActuator(path).read()
    assert str(err.value).startswith(str(path))
    assert SECRET not in str(err.value) and "\x1b" not in str(err.value)


def test_an_alias_bomb_is_refused_before_it_is_built(tmp_path: Path) -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]" for i in range(8)]
    path = tmp_path / "svc.yaml"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match="once aliases are expanded"):
        CloudRunYamlActuator(path).read()


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("cpu", f"{PAD}{SECRET}", f"bad CPU quantity '{PAD[:40]}…'"),
        ("memory", f"{PAD}{SECRET}", f"bad memory quantity '{PAD[:40]}…'"),
        ("maxScale", "9" * 5000, "autoscaling.knative.dev/maxScale '" + "9" * 40 + "…' is not an integer"),
    ],
)
def test_bad_values_are_quoted_as_excerpts(tmp_path: Path, field: str, value: str, problem: str) -> None:
    path = copy_yaml(tmp_path)
    doc = yaml.safe_load(path.read_text())
    template = doc["spec"]["template"]
    if field == "maxScale":
        template["metadata"]["annotations"][MAX_SCALE] = value
    else:
        template["spec"]["containers"][0]["resources"]["limits"][field] = value
    path.write_text(yaml.safe_dump(doc, width=10_000))
    with pytest.raises(InputError) as err:
        CloudRunYamlActuator(path).read()
    assert problem in str(err.value)
    assert SECRET not in str(err.value) and "9" * 41 not in str(err.value)


def test_restore_reads_the_current_file_as_a_bounded_input(tmp_path: Path) -> None:
    path = copy_yaml(tmp_path)
    actuator = CloudRunYamlActuator(path)
    snapshot = actuator.snapshot()
    actuator.apply({"cpu": 2})
    path.write_bytes(b"\xff\xfe not text")
    with pytest.raises(InputError, match="not valid YAML"):
        actuator.restore(snapshot, {"cpu": 2})
    assert path.read_bytes() == b"\xff\xfe not text"  # nothing overwritten
    path.unlink()
    assert actuator.restore(snapshot, {"cpu": 2})["restored"] is True  # a removed file is put back
    assert path.read_text() == snapshot["previous_text"]


@pytest.mark.parametrize("name", [f"{PAD}{PAD}{SECRET}", "Api", "api-", "a" * 64, "api\x1b[2J", 12])
def test_a_service_name_that_cloud_run_would_refuse_is_refused(tmp_path: Path, name: object) -> None:
    path = copy_yaml(tmp_path)
    doc = yaml.safe_load(path.read_text())
    doc["metadata"]["name"] = name
    path.write_text(yaml.safe_dump(doc, width=10_000))
    with pytest.raises(InputError, match="is not a Cloud Run service name") as err:
        CloudRunYamlActuator(path).service_name()
    assert SECRET not in str(err.value) and "\x1b" not in str(err.value)
    doc["metadata"]["name"] = "a" + "-b" * 31
    path.write_text(yaml.safe_dump(doc))
    assert CloudRunYamlActuator(path).service_name() == "a" + "-b" * 31
