"""Remote triggers (HTTP controller, Pub/Sub schedules, dead-letter replay) never make the server
read or write a file they name, and no answer, event record or log line carries a file's content.

Each case goes through the real function entry point with the real automations."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from orchestra import app as app_module
from orchestra.app import App, build_app
from orchestra.clock import FakeClock, RandomIds
from orchestra.config import parse_config
from orchestra.events.records import record_id
from orchestra.registry import registry
from orchestra.store.sqlite import SqliteStateStore

from tests.functions.conftest import REPO, make_client, post_pubsub

MARKER = "tok-5e1f0c2a"
CPU = REPO / "tests" / "fixtures" / "metrics" / "ec2_cpu_utilization_825cc2.csv"
ALICE = {"Authorization": "Bearer alice-token", "Content-Type": "application/json"}


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    """A file the server can read and a caller must never see: its content is the marker."""
    outside = tmp_path / "server-only"
    outside.mkdir()
    path = outside / "environ"
    path.write_text(f"ORCHESTRA_API_TOKENS={MARKER}=user:root\n")
    return path


@pytest.fixture
def allowed(tmp_path: Path, secret: Path) -> Path:
    directory = tmp_path / "metrics-drop"
    directory.mkdir()
    (directory / "cpu.csv").write_bytes(CPU.read_bytes())
    (directory / "escape.csv").symlink_to(secret)
    return directory


@pytest.fixture
def real_app(tmp_path: Path, allowed: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[App]:
    monkeypatch.setenv("ORCHESTRA_API_TOKENS", "alice-token=user:alice")
    monkeypatch.delenv("ORCHESTRA_AUDIENCE", raising=False)
    monkeypatch.delenv("ORCHESTRA_EXTRA_AUTOMATIONS", raising=False)
    monkeypatch.chdir(tmp_path)
    config = parse_config(
        f"""
default_environment: development
environments:
  development: {{automation_level: 1}}
inputs:
  allowed_dirs: [{json.dumps(str(allowed))}]
""",
        "hostile-paths",
    )
    store = SqliteStateStore(tmp_path / "state.db")
    app = build_app(config=config, store=store, clock=FakeClock(), ids=RandomIds(3), registry=registry)
    previous = app_module.set_app(app)
    try:
        yield app
    finally:
        app_module.set_app(previous)
        store.close()


# (task, params, field the refusal names) — every path parameter of every automation.
def hostile_params(secret: Path, allowed: Path) -> list[tuple[str, dict[str, Any], str]]:
    return [
        ("performance", {"metrics": {"cpu": "/proc/self/environ"}}, "params.metrics.cpu"),
        ("performance", {"metrics": {"cpu": str(secret)}}, "params.metrics.cpu"),
        ("performance", {"metrics": {"cpu": f"{allowed}/../server-only/environ"}}, "params.metrics.cpu"),
        ("performance", {"metrics": {"cpu": str(allowed / "escape.csv")}}, "params.metrics.cpu"),
        ("performance", {"service_yaml": str(allowed / "service.yaml")}, "params.service_yaml"),
        ("infrastructure", {"metrics": {"request_count": "/dev/zero"}}, "params.metrics.request_count"),
        ("cost", {"billing": str(secret)}, "params.billing"),
        ("cost", {"metrics": {"cpu": "/proc/self/environ"}}, "params.metrics.cpu"),
        ("ai-services", {"usage": "/dev/urandom"}, "params.usage"),
        ("ai-services", {"policy_path": str(allowed / "policy.yaml")}, "params.policy_path"),
        ("workspace", {"repo": "/"}, "params.repo"),
        ("testing", {"repo": str(secret.parent)}, "params.repo"),
    ]


def leaked(app: App, text: str, caplog: pytest.LogCaptureFixture) -> bool:
    stored = json.dumps([r.model_dump(mode="json") for r in app.store.list_events(limit=None)])
    stored += json.dumps([r.model_dump(mode="json") for r in app.store.list_runs(limit=None)])
    return MARKER in text or MARKER in stored or MARKER in caplog.text


def test_http_callers_cannot_name_server_files(real_app, secret, allowed, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    client = make_client("controller")
    for task, params, field in hostile_params(secret, allowed):
        response = client.post(f"/tasks/{task}", data=json.dumps({"params": params}), headers=ALICE)
        assert response.status_code == 400, (task, params, response.json)
        assert response.json["error"]["field"] == field, (task, params)
        message = response.json["error"]["message"]
        assert str(secret) not in message and "server-only" not in message, message
        assert "Traceback" not in response.get_data(as_text=True)
        assert not leaked(real_app, response.get_data(as_text=True), caplog)
    assert real_app.store.list_runs(limit=None) == []
    assert real_app.store.list_events(limit=None) == []


def test_http_callers_may_read_files_inside_the_allowed_directories(real_app, allowed) -> None:
    client = make_client("controller")
    body = {"params": {"metrics": {"cpu": str(allowed / "cpu.csv")}}}
    response = client.post("/tasks/performance", data=json.dumps(body), headers=ALICE)
    assert response.status_code == 201, response.json
    run = response.json["run"]
    assert run["status"] == "succeeded" and run["origin"] == "remote"
    assert run["params"]["metrics"]["cpu"] == str((allowed / "cpu.csv").resolve())


def test_pubsub_messages_cannot_name_server_files(real_app, secret, allowed, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    client = make_client("scheduled")
    for number, (task, params, field) in enumerate(hostile_params(secret, allowed)):
        response = post_pubsub(client, {"task": task, "params": params}, message_id=f"m-{number}")
        assert response.status_code == 200, response.data  # acknowledged: redelivery cannot help
        record = real_app.store.get_event(record_id("scheduled", f"m-{number}"))
        assert record is not None
        assert record.status == "rejected" and field in (record.reason or ""), record
        assert str(secret) not in (record.reason or "")
        assert not leaked(real_app, response.get_data(as_text=True), caplog)
    assert real_app.store.list_runs(limit=None) == []


def test_a_dead_letter_replay_is_a_remote_trigger(real_app, secret) -> None:
    from orchestra.errors import InputError
    from orchestra.events.dead_letters import replay_request
    from orchestra.models import DeadLetter

    letter = DeadLetter(
        id="dl-1",
        message_id="m-dead",
        origin="projects/p/subscriptions/orchestra-scheduled",
        data=json.dumps({"task": "cost", "params": {"billing": str(secret)}}),
        received_at=real_app.clock.now(),
    )
    with pytest.raises(InputError) as info:
        _, request = replay_request(real_app, letter, "user:alice")
        real_app.runner.validate(request)
    assert "params.billing" in str(info.value) and MARKER not in str(info.value)
    assert str(secret) not in str(info.value)
