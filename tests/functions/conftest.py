"""Fixtures for the Cloud Function tests: an application on a private registry of test
automations, functions-framework test clients for each function, and event builders."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import functions_framework
import pytest
from orchestra import app as app_module
from orchestra.app import App, build_app
from orchestra.clock import FakeClock, RandomIds
from orchestra.config import Config, parse_config
from orchestra.store.sqlite import SqliteStateStore

from tests.functions.plugins import build_registry

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
TOKENS = "alice-token=user:alice,bob-token=user:bob"
WEBHOOK_SECRET = "webhook-test-secret"

FUNCTIONS_CONFIG = """
default_environment: development
environments:
  development: {automation_level: 1}
  staging: {automation_level: 1, approval_required_risk: high}
  production: {automation_level: 1, protected: true, approval_required_risk: high}
thresholds:
  cpu: {metric: cpu, above: 70, for_minutes: 15, focus: cpu}
  memory: {metric: memory, above: 80, for_minutes: 10, focus: memory}
  latency_p95: {metric: latency_p95, above: 500, for_minutes: 5, environments: [production], focus: latency}
  error_rate: {metric: error_rate, above: 1, for_minutes: 5, focus: errors}
runner:
  retry: {attempts: 3, initial_seconds: 0.01, max_seconds: 0.05, max_deliveries: 5}
  lease: {seconds: 60, heartbeat_seconds: 20}
"""

FUNCTIONS = {
    "scheduled": "scheduled_task",
    "alerts": "monitoring_alert",
    "controller": "controller",
    "webhooks": "repo_webhook",
    "dead_letter": "dead_letter",
}


@pytest.fixture
def config() -> Config:
    return parse_config(FUNCTIONS_CONFIG, "functions-test-config")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fn_app(
    config: Config, clock: FakeClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[App]:
    """The application every function in this process uses during the test."""
    monkeypatch.delenv("ORCHESTRA_EXTRA_AUTOMATIONS", raising=False)
    store = SqliteStateStore(tmp_path / "state.db")
    app = build_app(config=config, store=store, clock=clock, ids=RandomIds(7), registry=build_registry())
    previous = app_module.set_app(app)
    try:
        yield app
    finally:
        app_module.set_app(previous)
        store.close()


def make_client(name: str) -> Any:
    source = REPO / "functions" / name / "main.py"
    return functions_framework.create_app(target=FUNCTIONS[name], source=str(source)).test_client()


@pytest.fixture
def client(request: pytest.FixtureRequest, fn_app: App) -> Any:
    """Test client of the function named by the test module's FUNCTION."""
    return make_client(request.module.FUNCTION)


@pytest.fixture
def counter(tmp_path: Path) -> Path:
    return tmp_path / "executions.log"


# ----------------------------------------------------------------------- event builders


def b64(data: bytes | str | dict[str, Any]) -> str:
    if isinstance(data, dict):
        data = json.dumps(data)
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode()


def pubsub_data(
    data: bytes | str | dict[str, Any] | None,
    *,
    message_id: str,
    attributes: dict[str, str] | None = None,
    subscription: str | None = "projects/orchestra-test/subscriptions/orchestra-scheduled",
) -> dict[str, Any]:
    message: dict[str, Any] = {
        "messageId": message_id,
        "publishTime": "2026-01-05T12:00:00.000Z",
        "attributes": attributes or {},
    }
    if data is not None:
        message["data"] = b64(data)
    body: dict[str, Any] = {"message": message}
    if subscription:
        body["subscription"] = subscription
    return body


def binary_headers(
    message_id: str, *, topic: str = "orchestra-scheduled", ce_type: str | None = None
) -> dict[str, str]:
    return {
        "ce-id": message_id,
        "ce-source": f"//pubsub.googleapis.com/projects/orchestra-test/topics/{topic}",
        "ce-type": ce_type or "google.cloud.pubsub.topic.v1.messagePublished",
        "ce-specversion": "1.0",
        "ce-time": "2026-01-05T12:00:00.000Z",
        "Content-Type": "application/json",
    }


Post = Callable[..., Any]


def post_pubsub(
    client: Any, data: Any, *, message_id: str, topic: str = "orchestra-scheduled", **kwargs: Any
) -> Any:
    """POST a Pub/Sub CloudEvent in binary mode, as Eventarc delivers it."""
    body = pubsub_data(data, message_id=message_id, **kwargs)
    return client.post("/", data=json.dumps(body), headers=binary_headers(message_id, topic=topic))


def sign(body: bytes, secret: str = WEBHOOK_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def fixture_json(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / "github-webhooks" / name).read_text())
