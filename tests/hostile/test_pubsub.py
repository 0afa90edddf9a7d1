"""Pub/Sub deliveries to the scheduled function under hostile data: each is acknowledged (a
permanent problem: redelivery cannot help), recorded as rejected with the field at fault, and
runs nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.functions.conftest import binary_headers, post_pubsub, pubsub_data

FUNCTION = "scheduled"
SECRET = "tok-9a8b7c6d"

CASES: list[tuple[str, Any, dict[str, str] | None, str]] = [
    ("not json", b"{not json", None, "message.data"),
    ("binary", bytes(range(256)), None, "message.data"),
    ("latin-1", '{"task": "café"}'.encode("latin-1"), None, "message.data"),
    ("nested", b'{"task": ' + b"[" * 100_000, None, "message.data"),
    ("array", b"[1, 2, 3]", None, "message.data"),
    ("unknown task", {"task": "rm -rf /"}, None, "task"),
    ("task markup", {"task": "[bold red]x[/] :x:"}, None, "task"),
    ("mode", {"task": "probe", "mode": "destroy"}, None, "mode"),
    ("level", {"task": "probe", "automation_level": 1e300}, None, "automation_level"),
    ("unknown key", {"task": "probe", "command": "id"}, None, "command"),
    ("unknown param", {"task": "probe", "params": {"command": "id"}}, None, "params.command"),
    ("environment", {"task": "probe", "environment": "../prod"}, None, "environment"),
    ("attribute params", None, {"task": "probe", "params": "{not json"}, "params"),
    ("attribute level", None, {"task": "probe", "automation_level": "9"}, "automation_level"),
    ("secret in data", {"task": "probe", "params": {"note": {"deep": SECRET * 3}}}, None, "params.note"),
]


@pytest.mark.parametrize(("name", "data", "attributes", "field"), CASES, ids=[c[0] for c in CASES])
def test_hostile_messages_are_acknowledged_recorded_and_run_nothing(
    client, fn_app, name, data, attributes, field
):
    response = post_pubsub(client, data, message_id=f"hostile-{name}", attributes=attributes)
    assert response.status_code == 200, response.data  # acknowledged
    [record] = fn_app.store.list_events(source="scheduled", limit=None)
    assert record.status == "rejected" and record.event_id == f"hostile-{name}"
    assert field in (record.reason or ""), record.reason
    assert "Traceback" not in (record.reason or "")
    assert SECRET not in (record.reason or "")  # the reason names the field, never the value
    assert fn_app.store.list_runs(limit=None) == []


@pytest.mark.parametrize(
    ("name", "headers_change", "field"),
    [
        ("wrong event type", {"ce-type": "google.cloud.storage.object.v1.finalized"}, "type"),
        ("no message id", None, "data.message"),
    ],
)
def test_events_that_are_not_pubsub_deliveries_are_rejected(client, fn_app, name, headers_change, field):
    body = pubsub_data({"task": "probe"}, message_id="m-1")
    if headers_change is None:
        del body["message"]["messageId"]
    headers = {**binary_headers("m-1"), **(headers_change or {})}
    response = client.post("/", data=json.dumps(body), headers=headers)
    assert response.status_code == 200, response.data
    [record] = fn_app.store.list_events(source="scheduled", limit=None)
    assert record.status == "rejected" and field in (record.reason or ""), record.reason
    assert fn_app.store.list_runs(limit=None) == []
