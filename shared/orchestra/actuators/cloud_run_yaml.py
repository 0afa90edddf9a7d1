"""Cloud Run service YAML actuator.

Edits the ``serving.knative.dev/v1`` Service document that
``gcloud run services describe SERVICE --format export`` writes and
``gcloud run services replace FILE`` reads: ``containerConcurrency``, the serving container's
resource limits, the ``autoscaling.knative.dev/minScale``/``maxScale`` and
``run.googleapis.com/startup-cpu-boost`` template annotations.

The revision name (``spec.template.metadata.name``) is removed on edit: ``replace`` with an
existing revision name and a changed template is rejected, and without a name Cloud Run generates
a fresh one. The previous document text is the rollback data; writes are atomic (temp + rename).
"""

from __future__ import annotations

import copy
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

from ..errors import InputError
from .base import (
    DEFAULT_CONCURRENCY,
    DEFAULT_MAX_INSTANCES,
    Actuator,
    ConflictError,
    ServiceConfig,
    check_changes,
    format_cpu,
    format_memory,
    parse_cpu,
    parse_memory,
)

MIN_SCALE = "autoscaling.knative.dev/minScale"
MAX_SCALE = "autoscaling.knative.dev/maxScale"
CPU_BOOST = "run.googleapis.com/startup-cpu-boost"


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _dump(doc: dict[str, Any]) -> str:
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, width=1000)


def _serving_container(doc: dict[str, Any], where: str) -> dict[str, Any]:
    containers = (((doc.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers")
    if not isinstance(containers, list) or not containers or not all(isinstance(c, dict) for c in containers):
        raise InputError("no spec.template.spec.containers list in the Service document", where=where)
    # With sidecars only the ingress container declares ports.
    with_ports = [c for c in containers if c.get("ports")]
    return with_ports[0] if with_ports else containers[0]


def parse_document(text: str, where: str) -> dict[str, Any]:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise InputError(f"not valid YAML: {getattr(exc, 'problem', exc)}", where=f"{where}{line}") from None
    if not isinstance(doc, dict):
        raise InputError("expected a Cloud Run Service document (a mapping)", where=where)
    if doc.get("apiVersion") != "serving.knative.dev/v1" or doc.get("kind") != "Service":
        raise InputError(
            f"expected apiVersion serving.knative.dev/v1 and kind Service (from `gcloud run services describe "
            f"--format export`), found {doc.get('apiVersion')!r} / {doc.get('kind')!r}",
            where=where,
        )
    _serving_container(doc, where)
    return doc


def config_from_document(doc: dict[str, Any], where: str) -> ServiceConfig:
    template = doc["spec"]["template"]
    annotations = (template.get("metadata") or {}).get("annotations") or {}
    spec = template.get("spec") or {}
    limits = (_serving_container(doc, where).get("resources") or {}).get("limits") or {}

    def integer(value: Any, field: str, default: int) -> int:
        if value is None:
            return default
        try:
            return int(str(value))
        except ValueError:
            raise InputError(f"{field} {value!r} is not an integer", where=where) from None

    concurrency = integer(spec.get("containerConcurrency"), "containerConcurrency", DEFAULT_CONCURRENCY)
    return ServiceConfig(
        cpu=parse_cpu(limits.get("cpu", "1"), f"{where} (resources.limits.cpu)"),
        memory_mib=parse_memory(limits.get("memory", "512Mi"), f"{where} (resources.limits.memory)"),
        # 0 asks the platform for its default.
        concurrency=concurrency or DEFAULT_CONCURRENCY,
        min_instances=integer(annotations.get(MIN_SCALE), MIN_SCALE, 0),
        max_instances=integer(annotations.get(MAX_SCALE), MAX_SCALE, DEFAULT_MAX_INSTANCES),
        startup_cpu_boost=str(annotations.get(CPU_BOOST, "false")).lower() == "true",
    )


def edit_document(doc: dict[str, Any], changes: dict[str, Any], where: str) -> dict[str, Any]:
    """A copy of ``doc`` with the changes set (absolute values)."""
    out = copy.deepcopy(doc)
    template = out["spec"]["template"]
    metadata = template.setdefault("metadata", {}) or {}
    template["metadata"] = metadata
    annotations = metadata.setdefault("annotations", {}) or {}
    metadata["annotations"] = annotations
    spec = template.setdefault("spec", {})
    container = _serving_container(out, where)
    limits = container.setdefault("resources", {}).setdefault("limits", {})
    if "cpu" in changes:
        limits["cpu"] = format_cpu(changes["cpu"])
    if "memory_mib" in changes:
        limits["memory"] = format_memory(int(changes["memory_mib"]))
    if "concurrency" in changes:
        spec["containerConcurrency"] = int(changes["concurrency"])
    if "min_instances" in changes:
        annotations[MIN_SCALE] = str(int(changes["min_instances"]))
    if "max_instances" in changes:
        annotations[MAX_SCALE] = str(int(changes["max_instances"]))
    if "startup_cpu_boost" in changes:
        annotations[CPU_BOOST] = "true" if changes["startup_cpu_boost"] else "false"
    metadata.pop("name", None)
    return out


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=str(path.parent))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class CloudRunYamlActuator(Actuator):
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).resolve()

    def target(self) -> dict[str, Any]:
        return {"type": "cloud-run-yaml", "path": str(self.path)}

    def describe(self) -> str:
        return f"Cloud Run service YAML {self.path} (deploy with `gcloud run services replace {self.path}`)"

    def _text(self) -> str:
        try:
            return self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise InputError("service YAML not found", where=str(self.path)) from None
        except OSError as exc:
            raise InputError(f"cannot read service YAML: {exc.strerror}", where=str(self.path)) from None

    def service_name(self) -> str | None:
        doc = parse_document(self._text(), str(self.path))
        name = (doc.get("metadata") or {}).get("name")
        return str(name) if name else None

    def read(self) -> ServiceConfig:
        return config_from_document(parse_document(self._text(), str(self.path)), str(self.path))

    def snapshot(self) -> dict[str, Any]:
        text = self._text()
        parse_document(text, str(self.path))
        return {
            "type": "cloud-run-yaml",
            "path": str(self.path),
            "previous_text": text,
            "previous_sha256": _sha(text),
        }

    def render(self, previous_text: str, changes: dict[str, Any]) -> str:
        where = str(self.path)
        doc = parse_document(previous_text, where)
        check_changes(config_from_document(doc, where), changes, where)
        return _dump(edit_document(doc, changes, where))

    def apply(self, changes: dict[str, Any]) -> ServiceConfig:
        text = self.render(self._text(), changes)
        _write_atomic(self.path, text)
        return self.read()

    def restore(self, snapshot: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
        previous = snapshot["previous_text"]
        current = self.path.read_text(encoding="utf-8") if self.path.exists() else None
        if current == previous:
            return {"restored": False, "reason": "file already holds the previous document"}
        # Only undo our own edit: if the file now holds something else, someone changed it after
        # us and overwriting would silently lose their work.
        ours = self.render(previous, changes)
        if current is not None and current != ours:
            raise ConflictError(
                f"{self.path} changed since it was edited (sha256 {_sha(current)[:12]}); not overwriting. "
                f"The previous document is kept in the run record (sha256 {snapshot['previous_sha256'][:12]})."
            )
        _write_atomic(self.path, previous)
        return {"restored": True, "path": str(self.path), "sha256": snapshot["previous_sha256"]}
