"""Cloud Run service YAML actuator.

Edits the ``serving.knative.dev/v1`` Service document that
``gcloud run services describe SERVICE --format export`` writes and
``gcloud run services replace FILE`` reads: ``containerConcurrency``, the serving container's
resource limits, the ``autoscaling.knative.dev/minScale``/``maxScale`` and
``run.googleapis.com/startup-cpu-boost`` and ``run.googleapis.com/cpu-throttling`` (billing mode:
``"true"``, the default, is request-based, ``"false"`` instance-based) template annotations.

The revision name (``spec.template.metadata.name``) is removed on edit: ``replace`` with an
existing revision name and a changed template is rejected, and without a name Cloud Run generates
a fresh one. The previous document text is the rollback data; writes are atomic (temp + rename).

Edits are made in place (:mod:`.yaml_edit`): only the values that change are rewritten, so the
owner's comments, order, quoting and block scalars stay, and the diff of a change is exactly its
fields (:meth:`CloudRunYamlActuator.preview`). Every edit is checked by reading the result back:
it must be the previous document with those fields changed and nothing else.

Besides the settings, the rules (:mod:`.rules`) read the execution environment, Direct VPC egress
(``run.googleapis.com/network-interfaces``) and the service-level scaling bounds
(``run.googleapis.com/minScale``/``maxScale`` on the Service's own metadata).

The document is read like any input: a regular file of at most :data:`MAX_DOCUMENT_BYTES` of
UTF-8, parsed by the safe loader of :mod:`orchestra.yamlsafe`. Errors name the file, line and
column and quote the document only through ``excerpt``.
"""

from __future__ import annotations

import copy
import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from .. import yamlsafe
from ..errors import InputError
from ..inputs import excerpt, open_input
from . import rules
from .base import (
    CHANGE_FIELDS,
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
from .rules import ServiceFacts
from .yaml_edit import DocumentEditor, ScalarText, unified_diff

MIN_SCALE = rules.REVISION_MIN_SCALE
MAX_SCALE = rules.REVISION_MAX_SCALE
CPU_BOOST = rules.STARTUP_CPU_BOOST
CPU_THROTTLING = rules.CPU_THROTTLING
# The documents Orchestra edits are small, and their previous text goes into the run record as
# rollback data: refuse anything larger than this before reading it.
MAX_DOCUMENT_BYTES = 256 * 1024
# Pieces of a parser message that come from the document: quoted text and alias names.
_FROM_DOCUMENT = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|\*\S+")
MAX_PROBLEM_CHARS = 200
# A Cloud Run service name: lowercase letters, digits and hyphens, a letter first, at most 63.
_SERVICE_NAME = re.compile(r"[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?")


def read_document_text(
    path: str | os.PathLike[str], *, where: str | None = None, max_bytes: int = MAX_DOCUMENT_BYTES
) -> str:
    """The text of a YAML document Orchestra edits: a regular file of at most ``max_bytes`` of
    UTF-8 (a byte order mark is dropped). InputError naming the file (and line, column) for
    anything else, a missing file included."""
    where = where or str(path)
    chunks: list[bytes] = []
    size = 0
    with open_input(path, where=where) as reader:  # a regular file; the size is checked here
        while size <= max_bytes:
            chunk = reader.read(max_bytes + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    if size > max_bytes:
        raise InputError(
            f"larger than {max_bytes} bytes, the limit for a YAML document Orchestra edits", where=where
        )
    data = b"".join(chunks)
    try:
        return yamlsafe.decode(data, source=where, max_bytes=max_bytes)
    except yamlsafe.YamlTextError as exc:
        raise _yaml_error(exc, where) from None


def read_document_or_none(
    path: str | os.PathLike[str], *, where: str | None = None, max_bytes: int = MAX_DOCUMENT_BYTES
) -> str | None:
    """:func:`read_document_text`, or None when nothing is at ``path``."""
    if not os.path.lexists(path):
        return None
    return read_document_text(path, where=where, max_bytes=max_bytes)


def load_document(text: str, where: str, *, max_bytes: int = MAX_DOCUMENT_BYTES) -> Any:
    """YAML text to data with the safe loader (size, nesting, aliases and tags checked);
    InputError ``not valid YAML`` naming ``where``, line and column otherwise."""
    try:
        return yamlsafe.load(text, source=where, max_bytes=max_bytes)
    except yamlsafe.YamlTextError as exc:
        raise _yaml_error(exc, where) from None


def _yaml_error(exc: yamlsafe.YamlTextError, where: str) -> InputError:
    position = f"{where}:{exc.line}:{exc.column}" if exc.line is not None else where
    return InputError(f"not valid YAML: {bounded_problem(exc.problem)}", where=position)


def bounded_problem(problem: str) -> str:
    """A parser's message with every piece of the document in it (quoted text, alias names)
    reduced to an ``excerpt``, and the whole at most :data:`MAX_PROBLEM_CHARS` characters."""

    def quote(match: re.Match[str]) -> str:
        piece = match.group()
        return excerpt(piece[1:-1] if piece[0] in "'\"" else piece)

    text = _FROM_DOCUMENT.sub(quote, problem)
    text = "".join(c if (c.isprintable() and c.isascii()) or c == "…" else "?" for c in text)
    return text if len(text) <= MAX_PROBLEM_CHARS else text[:MAX_PROBLEM_CHARS] + "…"


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _serving_index(doc: dict[str, Any], where: str) -> int:
    containers = (((doc.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers")
    if not isinstance(containers, list) or not containers or not all(isinstance(c, dict) for c in containers):
        raise InputError("no spec.template.spec.containers list in the Service document", where=where)
    # With sidecars only the ingress container declares ports.
    return next((i for i, c in enumerate(containers) if c.get("ports")), 0)


def _serving_container(doc: dict[str, Any], where: str) -> dict[str, Any]:
    container: dict[str, Any] = doc["spec"]["template"]["spec"]["containers"][_serving_index(doc, where)]
    return container


def parse_document(text: str, where: str) -> dict[str, Any]:
    doc = load_document(text, where)
    if not isinstance(doc, dict):
        raise InputError("expected a Cloud Run Service document (a mapping)", where=where)
    if doc.get("apiVersion") != "serving.knative.dev/v1" or doc.get("kind") != "Service":
        raise InputError(
            f"expected apiVersion serving.knative.dev/v1 and kind Service (from `gcloud run services describe "
            f"--format export`), found {_shown(doc.get('apiVersion'))} / {_shown(doc.get('kind'))}",
            where=where,
        )
    _serving_container(doc, where)
    return doc


def _shown(value: Any) -> str:
    return excerpt(value if isinstance(value, str) else repr(value))


def _quantity(parse: Any, value: Any, field: str, accepted: str, where: str) -> Any:
    """``parse`` of a resource quantity, with the document's value quoted only as an excerpt."""
    try:
        return parse(value, where)
    except InputError:
        raise InputError(f"bad {field} quantity {_shown(value)}; accepted: {accepted}", where=where) from None


def config_from_document(doc: dict[str, Any], where: str) -> ServiceConfig:
    template = doc["spec"]["template"]
    annotations = (template.get("metadata") or {}).get("annotations") or {}
    spec = template.get("spec") or {}
    limits = (_serving_container(doc, where).get("resources") or {}).get("limits") or {}

    def integer(value: Any, field: str, default: int) -> int:
        if value is None:
            return default
        text = str(value) if isinstance(value, str | int) and not isinstance(value, bool) else ""
        if not text or len(text) > 20:  # beyond any instance count or concurrency
            raise InputError(f"{field} {_shown(value)} is not an integer", where=where)
        try:
            return int(text)
        except ValueError:
            raise InputError(f"{field} {_shown(value)} is not an integer", where=where) from None

    concurrency = integer(spec.get("containerConcurrency"), "containerConcurrency", DEFAULT_CONCURRENCY)
    return ServiceConfig(
        cpu=_quantity(
            parse_cpu,
            limits.get("cpu", "1"),
            "CPU",
            "'1', '2', '4', '1000m'",
            f"{where} (resources.limits.cpu)",
        ),
        memory_mib=_quantity(
            parse_memory,
            limits.get("memory", "512Mi"),
            "memory",
            "e.g. '512Mi', '2Gi', '1G'",
            f"{where} (resources.limits.memory)",
        ),
        # 0 asks the platform for its default.
        concurrency=concurrency or DEFAULT_CONCURRENCY,
        min_instances=integer(annotations.get(MIN_SCALE), MIN_SCALE, 0),
        max_instances=integer(annotations.get(MAX_SCALE), MAX_SCALE, DEFAULT_MAX_INSTANCES),
        startup_cpu_boost=str(annotations.get(CPU_BOOST, "false")).lower() == "true",
        # Absent means throttled: request-based billing is Cloud Run's default.
        cpu_idle=str(annotations.get(CPU_THROTTLING, "true")).lower() != "false",
    )


def _integer(value: Any, field: str, where: str) -> int | None:
    if value is None:
        return None
    text = str(value) if isinstance(value, str | int) and not isinstance(value, bool) else ""
    if not text or len(text) > 20:
        raise InputError(f"{field} {_shown(value)} is not an integer", where=where)
    try:
        return int(text)
    except ValueError:
        raise InputError(f"{field} {_shown(value)} is not an integer", where=where) from None


def facts_from_document(doc: dict[str, Any], where: str) -> ServiceFacts:
    """The execution environment, Direct VPC egress and service-level scaling bounds."""
    template = doc["spec"]["template"]
    annotations = (template.get("metadata") or {}).get("annotations") or {}
    service_annotations = (doc.get("metadata") or {}).get("annotations") or {}
    environment = str(annotations.get(rules.EXECUTION_ENVIRONMENT, "")).lower()
    return ServiceFacts(
        execution_environment=environment if environment in ("gen1", "gen2") else None,
        direct_vpc=bool(annotations.get(rules.NETWORK_INTERFACES)),
        service_min_instances=_integer(
            service_annotations.get(rules.SERVICE_MIN_SCALE), rules.SERVICE_MIN_SCALE, where
        ),
        service_max_instances=_integer(
            service_annotations.get(rules.SERVICE_MAX_SCALE), rules.SERVICE_MAX_SCALE, where
        ),
    )


def _values(changes: dict[str, Any]) -> dict[tuple[str, ...], ScalarText]:
    """The document fields each change sets, relative to the revision template (the serving
    container's limits under ``("limits", ...)``), as the text to write."""
    out: dict[tuple[str, ...], ScalarText] = {}
    if "cpu" in changes:
        out[("limits", "cpu")] = ScalarText(format_cpu(changes["cpu"]))
    if "memory_mib" in changes:
        out[("limits", "memory")] = ScalarText(format_memory(int(changes["memory_mib"])))
    if "concurrency" in changes:
        out[("spec", "containerConcurrency")] = ScalarText(str(int(changes["concurrency"])), string=False)
    if "min_instances" in changes:
        out[("metadata", "annotations", MIN_SCALE)] = ScalarText(str(int(changes["min_instances"])))
    if "max_instances" in changes:
        out[("metadata", "annotations", MAX_SCALE)] = ScalarText(str(int(changes["max_instances"])))
    if "startup_cpu_boost" in changes:
        out[("metadata", "annotations", CPU_BOOST)] = ScalarText(
            "true" if changes["startup_cpu_boost"] else "false"
        )
    if "cpu_idle" in changes:
        out[("metadata", "annotations", CPU_THROTTLING)] = ScalarText(
            "true" if changes["cpu_idle"] else "false"
        )
    return out


def edit_document(doc: dict[str, Any], changes: dict[str, Any], where: str) -> dict[str, Any]:
    """A copy of ``doc`` with the changes set (absolute values) and the revision name removed: what
    the edited text must read back as."""
    out = copy.deepcopy(doc)
    template = out["spec"]["template"]
    index = _serving_index(out, where)
    for path, value in _values(changes).items():
        if path[0] == "limits":
            container = template["spec"]["containers"][index]
            if not isinstance(container.get("resources"), dict):
                container["resources"] = {}
            node = container["resources"]
            if not isinstance(node.get("limits"), dict):
                node["limits"] = {}
            node = node["limits"]
        else:
            node = template
            for key in path[:-1]:
                if not isinstance(node.get(key), dict):
                    node[key] = {}
                node = node[key]
        node[path[-1]] = value.value if value.string else int(value.value)
    if isinstance(template.get("metadata"), dict):
        template["metadata"].pop("name", None)
    return out


def edit_text(text: str, doc: dict[str, Any], changes: dict[str, Any], where: str) -> str:
    """``text`` with the changes made in place (see :mod:`.yaml_edit`), checked by reading it back."""
    if not changes:
        return text
    editor = DocumentEditor(text, where)
    index = _serving_index(doc, where)
    container: list[str | int] = ["spec", "template", "spec", "containers", index]
    for path, value in _values(changes).items():
        if path[0] == "limits":
            editor.set([*container, "resources", "limits", path[1]], value)
        else:
            editor.set(["spec", "template", *path], value)
    editor.delete(["spec", "template", "metadata", "name"])
    edited = editor.render()
    if load_document(edited, where) != edit_document(doc, changes, where):
        raise InputError(
            "cannot edit in place: the edited document would not read back as intended; edit it by hand",
            where=where,
        )
    return edited


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
        self.last_diff: str | None = None  # what the last apply changed, as a unified diff

    def target(self) -> dict[str, Any]:
        return {"type": "cloud-run-yaml", "path": str(self.path)}

    def describe(self) -> str:
        return f"Cloud Run service YAML {self.path} (deploy with `gcloud run services replace {self.path}`)"

    def _text(self) -> str:
        return read_document_text(self.path)

    def service_name(self) -> str | None:
        doc = parse_document(self._text(), str(self.path))
        name = (doc.get("metadata") or {}).get("name")
        if name is None or name == "":
            return None
        if not isinstance(name, str) or _SERVICE_NAME.fullmatch(name) is None:
            raise InputError(
                f"metadata.name {_shown(name)} is not a Cloud Run service name (lowercase letters, digits "
                "and hyphens, starting with a letter, at most 63 characters)",
                where=str(self.path),
            )
        return name

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

    def read_facts(self) -> ServiceFacts:
        return facts_from_document(parse_document(self._text(), str(self.path)), str(self.path))

    def render(self, previous_text: str, changes: dict[str, Any]) -> str:
        """The document with ``changes`` made: only the fields whose value differs are written."""
        where = str(self.path)
        doc = parse_document(previous_text, where)
        current = config_from_document(doc, where)
        check_changes(current, changes, where, facts_from_document(doc, where), self.limits)
        now = current.model_dump()
        effective = {k: v for k, v in changes.items() if k in CHANGE_FIELDS and now[k] != v}
        return edit_text(previous_text, doc, effective, where)

    def preview(self, changes: dict[str, Any]) -> str | None:
        before = self._text()
        return unified_diff(before, self.render(before, changes), str(self.path))

    def apply(self, changes: dict[str, Any]) -> ServiceConfig:
        before = self._text()
        text = self.render(before, changes)
        self.last_diff = unified_diff(before, text, str(self.path))
        if text != before:
            _write_atomic(self.path, text)
        return self.read()

    def restore(self, snapshot: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
        previous = snapshot["previous_text"]
        current = read_document_or_none(self.path)
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
