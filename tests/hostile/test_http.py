"""The controller's HTTP API under hostile requests: every case gets its documented status, a
JSON error naming the field, no traceback or server detail, and changes nothing."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.functions.conftest import TOKENS

FUNCTION = "controller"
ALICE = {"Authorization": "Bearer alice-token"}


@pytest.fixture(autouse=True)
def tokens(monkeypatch):
    monkeypatch.setenv("ORCHESTRA_API_TOKENS", TOKENS)
    monkeypatch.delenv("ORCHESTRA_AUDIENCE", raising=False)
    monkeypatch.setenv("ORCHESTRA_MAX_BODY_BYTES", "65536")


@dataclass
class Case:
    name: str
    method: str
    path: str
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=lambda: dict(ALICE))
    status: int = 400
    field: str | None = None


def deep(n: int) -> bytes:
    return b'{"params": ' + b"[" * n + b"]" * n + b"}"


CASES = [
    Case("not json", "POST", "/tasks/probe", b"{not json"),
    Case("binary body", "POST", "/tasks/probe", bytes(range(256))),
    Case("latin-1 body", "POST", "/tasks/probe", '{"params": {"note": "café"}}'.encode("latin-1")),
    Case("json array", "POST", "/tasks/probe", b"[1, 2]"),
    Case("nested past the parser", "POST", "/tasks/probe", deep(30_000)),
    Case(
        "over the body limit",
        "POST",
        "/tasks/probe",
        b'{"params": {"note": "' + b"x" * 70_000 + b'"}}',
        status=413,
    ),
    Case("unknown field", "POST", "/tasks/probe", b'{"mode": "analyze", "rm": "-rf"}', field="rm"),
    Case("mode", "POST", "/tasks/probe", b'{"mode": "destroy"}', field="mode"),
    Case("level as text", "POST", "/tasks/probe", b'{"automation_level": "3"}', field="automation_level"),
    Case("level out of range", "POST", "/tasks/probe", b'{"automation_level": 9}', field="automation_level"),
    Case("level as float", "POST", "/tasks/probe", b'{"automation_level": 1e300}', field="automation_level"),
    Case("environment", "POST", "/tasks/probe", b'{"environment": "../../prod"}', field="environment"),
    Case("unknown task", "POST", "/tasks/nope", b"{}", field="task"),
    Case("path traversal", "POST", "/tasks/..%2F..%2Fetc", b"{}", status=404, field="path"),
    Case("task markup", "POST", "/", b'{"task": "[bold]x[/] :x:"}', field="task"),
    Case("params not an object", "POST", "/tasks/probe", b'{"params": "rm -rf /"}', field="params"),
    Case("unknown param", "POST", "/tasks/probe", b'{"params": {"command": "id"}}', field="params.command"),
    Case(
        "huge trigger id",
        "POST",
        "/tasks/probe",
        json.dumps({"trigger_id": "k" * 600}).encode(),
        field="trigger_id",
    ),
    Case(
        "idempotency key",
        "POST",
        "/tasks/probe",
        b"{}",
        {**ALICE, "Idempotency-Key": "k" * 600},
        field="Idempotency-Key",
    ),
    Case("limit superscript", "GET", "/runs?limit=%C2%B2", field="limit"),
    Case("limit negative", "GET", "/runs?limit=-1", field="limit"),
    Case("limit huge", "GET", "/runs?limit=99999999999999999999", field="limit"),
    Case("status", "GET", "/runs?status=%00", field="status"),
    Case("unknown filter", "GET", "/runs?where=1", field="where"),
    Case("approval decision", "POST", "/approvals/run-1", b'{"decision": "yes"}', field="decision"),
    Case("approval of nothing", "POST", "/approvals/run-404", b"{}", status=404, field="run_id"),
    Case("no credentials", "POST", "/tasks/probe", b"{}", {}, status=401, field="Authorization"),
    Case(
        "basic auth",
        "POST",
        "/tasks/probe",
        b"{}",
        {"Authorization": "Basic YWxpY2U6eA=="},
        status=401,
        field="Authorization",
    ),
    Case("method", "DELETE", "/runs", status=405, field="method"),
]


def send(client: Any, case: Case) -> Any:
    headers = {"Content-Type": "application/json", **case.headers}
    return client.open(case.path, method=case.method, data=case.body, headers=headers)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_hostile_requests(client, fn_app, case: Case) -> None:
    response = send(client, case)
    text = response.get_data(as_text=True)
    assert response.status_code == case.status, text
    error = response.json["error"]
    assert set(error) == {"message", "field"} and error["message"]
    if case.field is not None:
        assert error["field"] == case.field, error
    assert "Traceback" not in text and 'File "' not in text
    assert "x" * 1000 not in text and "k" * 600 not in text  # never the whole input back
    assert response.headers["Cache-Control"] == "no-store"
    assert fn_app.store.list_runs(limit=None) == []
    assert fn_app.store.list_events(limit=None) == []
