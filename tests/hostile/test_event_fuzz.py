"""Property tests: whatever bytes or JSON a caller sends, the event parsers answer with a model
or an InputError naming the field — never another exception, which would become a 500 or a
redelivery loop — and the handlers record the event instead of raising."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from orchestra.app import App, build_app
from orchestra.clock import FakeClock, RandomIds
from orchestra.config import parse_config
from orchestra.errors import InputError
from orchestra.events.alerts import handle_alert, parse_notification
from orchestra.events.github import parse_push
from orchestra.events.parsing import json_object
from orchestra.events.pubsub import MESSAGE_PUBLISHED, parse_pubsub_event
from orchestra.events.records import EventStatus
from orchestra.events.scheduled import handle_scheduled, task_from_delivery
from orchestra.registry import registry
from orchestra.store.sqlite import SqliteStateStore

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=6),
    max_leaves=25,
)
# Objects shaped like the real payloads, with hostile values in the fields that matter.
hostile_text = st.sampled_from(
    ["", "../../etc/passwd", "/proc/self/environ", "[bold]x[/]", ":x:", "\x00", "é" * 3, "a" * 300]
) | st.text(max_size=40)
task_messages = st.fixed_dictionaries(
    {},
    optional={
        "task": hostile_text | st.sampled_from(["performance", "cost", "workspace", "ai-services"]),
        "mode": hostile_text | st.sampled_from(["analyze", "apply"]),
        "environment": hostile_text | st.just("development"),
        "automation_level": json_values,
        "params": st.dictionaries(
            st.sampled_from(["metrics", "billing", "usage", "repo", "policy_path", "service", "x"]),
            json_values | hostile_text,
            max_size=3,
        ),
        "trigger_id": json_values,
    },
)
push_payloads = st.fixed_dictionaries(
    {},
    optional={
        "ref": hostile_text | st.just("refs/heads/main"),
        "before": hostile_text,
        "after": hostile_text,
        "deleted": json_values,
        "repository": json_values | st.just({"full_name": "o/r"}),
        "pusher": json_values | st.just({"name": "alice", "email": "alice@example.com"}),
        "sender": json_values,
        "head_commit": json_values,
    },
)


class Event(dict):
    """What functions-framework hands a CloudEvent function: attributes by key, and data."""

    def __init__(self, attributes: dict[str, Any], data: Any) -> None:
        super().__init__(attributes)
        self.data = data


def pubsub_event(data: bytes, message_id: str = "m-1", attributes: dict[str, str] | None = None) -> Event:
    body = {
        "message": {
            "data": base64.b64encode(data).decode(),
            "messageId": message_id,
            "attributes": attributes or {},
            "publishTime": "2026-01-05T12:00:00.000Z",
        },
        "subscription": "projects/p/subscriptions/s",
    }
    return Event({"id": message_id, "type": MESSAGE_PUBLISHED, "source": "//pubsub"}, body)


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    config = parse_config(
        "default_environment: development\nenvironments: {development: {automation_level: 1}}\n", "fuzz"
    )
    store = SqliteStateStore(tmp_path / "state.db")
    built = build_app(config=config, store=store, clock=FakeClock(), ids=RandomIds(5), registry=registry)
    try:
        yield built
    finally:
        store.close()


@FUZZ
@given(raw=st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_json_bodies_are_an_object_or_an_input_error(raw: bytes) -> None:
    try:
        assert isinstance(json_object(raw, where="body", allow_empty=True), dict)
    except InputError as exc:
        assert exc.where == "body"


@FUZZ
@given(attributes=st.dictionaries(st.text(max_size=10), json_values, max_size=4), data=json_values)
def test_cloud_events_are_a_delivery_or_an_input_error(attributes: dict[str, Any], data: Any) -> None:
    try:
        parse_pubsub_event(Event(attributes, data))
    except InputError:
        pass


@FUZZ
@given(
    message=task_messages | json_values, attributes=st.dictionaries(st.text(max_size=8), st.text(max_size=20))
)
def test_scheduled_messages_are_a_task_or_an_input_error(message: Any, attributes: dict[str, str]) -> None:
    delivery = parse_pubsub_event(pubsub_event(json.dumps(message).encode(), attributes=attributes))
    try:
        task_from_delivery(delivery)
    except InputError:
        pass


@FUZZ
@given(payload=push_payloads | json_values)
def test_push_payloads_are_a_push_or_an_input_error(payload: Any) -> None:
    try:
        parse_push(payload)
    except InputError:
        pass


@FUZZ
@given(incident=json_values | st.fixed_dictionaries({"incident": json_values, "version": json_values}))
def test_alert_notifications_are_a_notification_or_an_input_error(incident: Any) -> None:
    try:
        parse_notification(incident)
    except InputError:
        pass


@FUZZ
@given(message=task_messages, raw=st.binary(max_size=120), as_raw=st.booleans())
@example(message={"task": "../../etc/passwd", "trigger_id": "0"}, raw=b"", as_raw=False)
@example(message={"task": "performance", "trigger_id": "0"}, raw=b"", as_raw=False)
def test_scheduled_handler_records_every_message_and_never_raises(app: App, message, raw, as_raw) -> None:
    data = raw if as_raw else json.dumps({**message, "mode": "analyze"}).encode()
    message_id = f"fuzz-{app.ids.new_id('')}"
    handled = handle_scheduled(pubsub_event(data, message_id), app)
    assert handled.status in set(EventStatus)
    records = app.store.list_events(source="scheduled", limit=None)
    # A message is recorded under its idempotency key (``trigger_id``) when it names one.
    assert any(r.event_id == message_id or r.payload.get("message_id") == message_id for r in records), (
        "the message was not recorded"
    )
    # Paths are never accepted from a message: a run never names a local file.
    for run in app.store.list_runs(limit=None):
        assert run.origin == "remote"
        assert not {"billing", "usage", "metrics", "policy_path"} & set(run.params)


@FUZZ
@given(incident=json_values | st.fixed_dictionaries({"incident": json_values, "version": st.just("1.2")}))
def test_alert_handler_records_every_notification_and_never_raises(app: App, incident: Any) -> None:
    handled = handle_alert(pubsub_event(json.dumps(incident).encode(), f"alert-{app.ids.new_id('')}"), app)
    assert handled.status in set(EventStatus)
