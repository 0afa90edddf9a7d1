"""Announcements published to a real Pub/Sub topic (the emulator) as CloudEvents in structured
JSON mode, read back with the cloudevents library; and a Pub/Sub that cannot be reached costs a
run nothing but a logged, counted failure."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cloudevents.http import CloudEvent, from_json
from orchestra import announcements
from orchestra.announcements import TOPIC_ENV, PubSubPublisher
from orchestra.app import App, build_app
from orchestra.clock import FakeClock, RandomIds
from orchestra.config import parse_config
from orchestra.events.dead_letters import handle_dead_letter
from orchestra.logs import JsonFormatter
from orchestra.models import RunStatus
from orchestra.processes import free_port
from orchestra.runner import RunRequest
from orchestra.store.sqlite import SqliteStateStore

from tests.emulators import EmulatorInfo
from tests.functions.conftest import pubsub_data
from tests.runner.automations import build_registry

pytestmark = [pytest.mark.emulator]

CONFIG = """
default_environment: development
environments:
  development: {automation_level: 1}
runner:
  retry: {attempts: 1, initial_seconds: 0.01, max_seconds: 0.05, max_deliveries: 5}
  breaker: {failure_threshold: 2, window_seconds: 3600, open_seconds: 60, probe_lease_seconds: 30}
  lease: {seconds: 60, heartbeat_seconds: 20}
events:
  publish_timeout_seconds: 5
"""


class Topic:
    """A fresh topic with a pull subscription on the emulator, named after the test."""

    def __init__(self, project: str, name: str) -> None:
        from google.cloud import pubsub_v1

        self.publisher = pubsub_v1.PublisherClient()
        self.subscriber = pubsub_v1.SubscriberClient()
        self.path = self.publisher.topic_path(project, name)
        self.subscription = self.subscriber.subscription_path(project, f"{name}-watch")
        self.publisher.create_topic(name=self.path)
        self.subscriber.create_subscription(name=self.subscription, topic=self.path)

    def pull(self, count: int, timeout: float = 30) -> list[Any]:
        """At least ``count`` messages (acknowledged), or AssertionError after ``timeout``."""
        messages: list[Any] = []
        deadline = time.monotonic() + timeout
        while len(messages) < count and time.monotonic() < deadline:
            response = self.subscriber.pull(
                subscription=self.subscription, max_messages=50, timeout=max(deadline - time.monotonic(), 1)
            )
            if response.received_messages:
                self.subscriber.acknowledge(
                    subscription=self.subscription, ack_ids=[m.ack_id for m in response.received_messages]
                )
                messages.extend(m.message for m in response.received_messages)
        assert len(messages) >= count, f"pulled {len(messages)} of {count} messages from {self.path}"
        return messages

    def close(self) -> None:
        self.subscriber.delete_subscription(subscription=self.subscription)
        self.publisher.delete_topic(topic=self.path)
        self.subscriber.close()


def events_of(messages: list[Any]) -> list[CloudEvent]:
    found = []
    for message in messages:
        assert message.attributes["content-type"] == "application/cloudevents+json"
        event = from_json(message.data)
        assert message.attributes["ce-type"] == event["type"]
        assert message.attributes["ce-subject"] == event["subject"]
        found.append(event)
    return found


@pytest.fixture
def topic(pubsub_emulator: EmulatorInfo, request: pytest.FixtureRequest) -> Iterator[Topic]:
    name = "orchestra-events-" + hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:12]
    created = Topic(pubsub_emulator.project, name)
    try:
        yield created
    finally:
        created.close()


@pytest.fixture
def make_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Builds the application as the functions do (the topic from ORCHESTRA_EVENTS_TOPIC)."""
    previous = announcements.install(None)
    built: list[App] = []

    def make(topic_path: str) -> App:
        monkeypatch.setenv(TOPIC_ENV, topic_path)
        app = build_app(
            config=parse_config(CONFIG, "events-test-config"),
            store=SqliteStateStore(tmp_path / f"state-{len(built)}.db"),
            clock=FakeClock(),
            ids=RandomIds(5),
            registry=build_registry(),
        )
        built.append(app)
        return app

    try:
        yield make
    finally:
        for app in built:
            app.close()
        announcements.install(previous)


def test_a_run_through_the_runner_arrives_as_a_cloudevent(topic: Topic, make_app: Any) -> None:
    app = make_app(topic.path)
    assert isinstance(app.announcer.publisher, PubSubPublisher)
    run = app.runner.submit(RunRequest(task="noop", environment="development", trigger_id="nightly")).run
    assert run.status == RunStatus.succeeded

    [event] = events_of(topic.pull(1))
    assert event["specversion"] == "1.0"
    assert event["type"] == "dev.orchestra.run.finished.v1"
    assert event["subject"] == run.id
    assert event["source"] == app.announcer.source
    assert event["time"] == "2026-01-05T12:00:00.000000Z"  # the injected clock
    assert event["datacontenttype"] == "application/json"
    assert event.data["task"] == "noop"
    assert event.data["environment"] == "development"
    assert event.data["status"] == "succeeded"
    assert event.data["counts"]["findings"] == 1
    assert app.announcer.published == 1 and app.announcer.failures == 0


def test_breaker_opened_and_closed_arrive(topic: Topic, make_app: Any) -> None:
    app = make_app(topic.path)
    for _ in range(2):
        app.runner.submit(RunRequest(task="noop", params={"permanent_failure": True}))
    app.clock.advance(61)
    app.runner.submit(RunRequest(task="noop"))

    events = events_of(topic.pull(5))
    kinds = [(e["type"], e["subject"]) for e in events if "breaker" in e["type"]]
    assert kinds == [
        ("dev.orchestra.breaker.opened.v1", "automation:noop:development"),
        ("dev.orchestra.breaker.closed.v1", "automation:noop:development"),
    ]
    opened = next(e for e in events if e["type"] == "dev.orchestra.breaker.opened.v1")
    assert opened.data == {
        "key": "automation:noop:development",
        "scope": "automation",
        "failures": 2,
        "open_until": "2026-01-05T12:01:00.000000Z",
    }
    statuses = [e.data["status"] for e in events if e["type"] == "dev.orchestra.run.finished.v1"]
    assert statuses == ["failed", "failed", "succeeded"]


def test_a_stored_dead_letter_arrives(topic: Topic, make_app: Any) -> None:
    app = make_app(topic.path)
    body = pubsub_data(
        {"task": "noop"},
        message_id="dl-77",
        attributes={
            "CloudPubSubDeadLetterSourceDeliveryCount": "5",
            "CloudPubSubDeadLetterSourceSubscription": "orchestra-scheduled-push",
            "CloudPubSubDeadLetterSourceSubscriptionProject": "orchestra-test",
        },
    )
    delivery = CloudEvent(
        {
            "id": "dl-77",
            "type": "google.cloud.pubsub.topic.v1.messagePublished",
            "source": "//pubsub.googleapis.com/projects/orchestra-test/topics/orchestra-dead-letter",
        },
        body,
    )
    handle_dead_letter(delivery, app)
    handle_dead_letter(delivery, app)  # a redelivery is stored, and announced, once

    [event] = events_of(topic.pull(1))
    assert event["type"] == "dev.orchestra.deadletter.stored.v1"
    assert event["subject"] == "dl-77"
    assert event.data == {
        "dead_letter_id": "dl-77",
        "origin": "projects/orchestra-test/subscriptions/orchestra-scheduled-push",
        "message_id": "dl-77",
        "delivery_attempt": 5,
    }
    assert app.announcer.published == 1


def test_unreachable_pubsub_leaves_the_run_succeeded_and_logs_the_failure(
    pubsub_emulator: EmulatorInfo, make_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Nothing listens on this port: every publish fails (or times out) there.
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", f"127.0.0.1:{free_port()}")
    app = make_app(f"projects/{pubsub_emulator.project}/topics/orchestra-events")
    app.announcer.publish_timeout = 1.0
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(announcements.LOGGER_NAME)
    logger.addHandler(handler)
    started = time.monotonic()
    try:
        outcome = app.runner.submit(RunRequest(task="noop"))
    finally:
        logger.removeHandler(handler)
    elapsed = time.monotonic() - started

    assert outcome.run.status == RunStatus.succeeded
    assert app.store.get_run(outcome.run.id).status == RunStatus.succeeded
    assert app.announcer.failures == 1 and app.announcer.published == 0
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines[0]["announcement"] == "dev.orchestra.run.finished.v1"  # the log line still is written
    assert lines[1]["severity"] == "WARNING"
    assert lines[1]["message"].startswith(
        f"publishing dev.orchestra.run.finished.v1 {outcome.run.id} failed ("
    )
    assert "1 publish failure(s) so far" in lines[1]["message"]
    # Bounded by the publish timeout (1 s), with room for a loaded machine.
    assert elapsed < 10, f"the run took {elapsed:.1f} s with Pub/Sub unreachable"
