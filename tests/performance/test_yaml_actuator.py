"""The Cloud Run service YAML actuator (the document `gcloud run services describe --format export` writes)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from orchestra.actuators.base import ServiceConfig, actuator_from_target
from orchestra.actuators.cloud_run_yaml import MAX_SCALE, MIN_SCALE, CloudRunYamlActuator, ConflictError
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
