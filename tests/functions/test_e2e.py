"""End to end: Pub/Sub emulator push -> real functions-framework processes -> Firestore emulator.

The five functions run exactly as an operator starts them (``functions-framework --source
functions/NAME/main.py --target ENTRY --port N`` with ``ORCHESTRA_STORE``/``CONFIG_PATH``); the
test automations come in through ``ORCHESTRA_EXTRA_AUTOMATIONS``. Push subscriptions carry a
retry policy (1-2 s) and a dead-letter policy (5 attempts) like the deployed ones.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from orchestra.automations.deployment.state import find_deployment
from orchestra.events.records import record_id
from orchestra.models import RunStatus, run_id_for
from orchestra.store.firestore import FirestoreStateStore

from tests.functions.conftest import (
    FUNCTIONS_CONFIG,
    TOKENS,
    WEBHOOK_SECRET,
    binary_headers,
    fixture_json,
    sign,
)
from tests.functions.plugins import count
from tests.functions.servers import ENTRY_POINTS, FunctionServer
from tests.functions.test_alerts import CONSOLE_TEST

pytestmark = [pytest.mark.emulator, pytest.mark.e2e]

DATABASE = "functions-e2e"
# How late the emulator may push a message that is due: its delivery loop polls, and a nacked
# message comes back about 1 s after the retry policy's maximum backoff (measured: 2.8-3.0 s
# between deliveries with a 2 s maximum). A late redelivery can only make the test pass
# wrongly, never fail wrongly, so the margin is generous.
PUSH_LATENCY_S = 3.0
T = TypeVar("T")


def eventually(probe: Callable[[], T | None], timeout_s: float = 30, what: str = "condition") -> T:
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.2)


@dataclass
class E2E:
    servers: dict[str, FunctionServer]
    store: FirestoreStateStore
    project: str
    publisher: Any
    subscriber: Any
    tmp: Path

    def topology(self, function: str = "scheduled") -> tuple[str, str]:
        """A topic pushed to ``function`` with a dead-letter topic pushed to ``dead_letter``.
        Returns (topic path, subscription id)."""
        suffix = uuid.uuid4().hex[:8]
        topic = self.publisher.topic_path(self.project, f"tasks-{suffix}")
        dead = self.publisher.topic_path(self.project, f"dead-{suffix}")
        self.publisher.create_topic(name=topic)
        self.publisher.create_topic(name=dead)
        subscription = f"tasks-{suffix}-push"
        self._push(subscription, topic, self.servers[function], dead_letter_topic=dead)
        self._push(f"dead-{suffix}-push", dead, self.servers["dead_letter"])
        return topic, subscription

    def _push(
        self, name: str, topic: str, server: FunctionServer, dead_letter_topic: str | None = None
    ) -> None:
        request: dict[str, Any] = {
            "name": self.subscriber.subscription_path(self.project, name),
            "topic": topic,
            "push_config": {"push_endpoint": f"{server.url}/{topic}"},
            "ack_deadline_seconds": 30,
            "retry_policy": {"minimum_backoff": {"seconds": 1}, "maximum_backoff": {"seconds": 2}},
        }
        if dead_letter_topic:
            request["dead_letter_policy"] = {
                "dead_letter_topic": dead_letter_topic,
                "max_delivery_attempts": 5,
            }
        self.subscriber.create_subscription(request=request)

    def publish(self, topic: str, data: bytes | dict[str, Any], **attributes: str) -> str:
        raw = json.dumps(data).encode() if isinstance(data, dict) else data
        return self.publisher.publish(topic, raw, **attributes).result(timeout=10)

    def events_for(self, source: str, key: str) -> list[Any]:
        return [e for e in self.store.list_events(source=source, limit=None) if e.event_id == key]


@pytest.fixture(scope="module")
def e2e(firestore_emulator, pubsub_emulator, tmp_path_factory) -> Iterator[E2E]:
    from google.cloud import pubsub_v1

    tmp = tmp_path_factory.mktemp("functions-e2e")
    config = tmp / "config.yaml"
    config.write_text(FUNCTIONS_CONFIG)
    env = {
        "ORCHESTRA_STORE": f"firestore://{firestore_emulator.project}/{DATABASE}",
        "FIRESTORE_EMULATOR_HOST": firestore_emulator.host_port,
        "CONFIG_PATH": str(config),
        "ORCHESTRA_EXTRA_AUTOMATIONS": "tests.functions.plugins",
        "ORCHESTRA_API_TOKENS": TOKENS,
        "GITHUB_WEBHOOK_SECRET": WEBHOOK_SECRET,
    }
    servers = {name: FunctionServer(name, env, tmp).launch() for name in ENTRY_POINTS}
    store = FirestoreStateStore(project=firestore_emulator.project, database=DATABASE)
    try:
        for server in servers.values():
            server.wait_ready()
        yield E2E(
            servers=servers,
            store=store,
            project=pubsub_emulator.project,
            publisher=pubsub_v1.PublisherClient(),
            subscriber=pubsub_v1.SubscriberClient(),
            tmp=tmp,
        )
    finally:
        for server in servers.values():
            server.stop()
        store.close()


def http(
    method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, _decode(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, _decode(exc.read())


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")  # event functions answer "OK"


def test_publish_push_function_firestore_run(e2e: E2E):
    topic, subscription = e2e.topology()
    counter = e2e.tmp / f"{uuid.uuid4().hex}.log"
    message_id = e2e.publish(
        topic, {"task": "probe", "environment": "staging", "params": {"counter": str(counter)}}
    )
    run = eventually(
        lambda: (
            (r := e2e.store.get_run(run_id_for("probe", message_id)))
            and r.status == RunStatus.succeeded
            and r
        ),
        what="the run in Firestore",
    )
    assert run.source_event == message_id and run.environment == "staging"
    assert run.requested_by.startswith("pubsub:tasks-")  # the push URL names the topic
    # The function writes the event record after the run: wait for the record itself.
    record = eventually(
        lambda: e2e.store.get_event(record_id("scheduled", message_id)), what="the event record"
    )
    assert record.status == "accepted" and record.run_ids == [run.id]
    assert count(counter, f"analyze:{message_id}") == 1


def test_same_message_published_twice_is_one_run(e2e: E2E):
    topic, _ = e2e.topology()
    counter = e2e.tmp / f"{uuid.uuid4().hex}.log"
    key = f"publisher-key-{uuid.uuid4().hex[:8]}"
    message = {"task": "probe", "trigger_id": key, "params": {"counter": str(counter)}}
    first, second = e2e.publish(topic, message), e2e.publish(topic, message)
    assert first != second
    eventually(lambda: len(e2e.events_for("scheduled", key)) == 2, what="both deliveries recorded")
    assert [r.trigger_id for r in e2e.store.list_runs(trigger_id=key)] == [key]
    assert count(counter, f"analyze:{key}") == 1
    assert sorted(e.status for e in e2e.events_for("scheduled", key)) == ["accepted", "duplicate"]


def test_redelivered_push_is_one_run(e2e: E2E):
    counter = e2e.tmp / f"{uuid.uuid4().hex}.log"
    message_id = f"redelivered-{uuid.uuid4().hex[:8]}"
    data = json.dumps({"task": "probe", "params": {"counter": str(counter)}}).encode()
    push = {
        "subscription": f"projects/{e2e.project}/subscriptions/replayed",
        "message": {"data": base64.b64encode(data).decode(), "attributes": {}, "messageId": message_id},
    }
    url = f"{e2e.servers['scheduled'].url}/projects/{e2e.project}/topics/tasks"
    for _ in range(2):
        status, _ = http("POST", url, json.dumps(push).encode(), {"Content-Type": "application/json"})
        assert status == 200
    assert len(e2e.store.list_runs(trigger_id=message_id)) == 1
    assert count(counter, f"analyze:{message_id}") == 1


def test_poison_message_is_rejected_once_not_redelivered(e2e: E2E):
    topic, subscription = e2e.topology()
    message_id = e2e.publish(topic, b"{this is not json")
    record = eventually(
        lambda: e2e.store.get_event(record_id("scheduled", message_id)), what="rejected record"
    )
    assert record.status == "rejected" and "message.data" in record.reason
    # Had the function not acknowledged the push, the emulator would send it again within the
    # subscription's maximum retry backoff of the answer (the record is written before it).
    # Watch for that long, read from the subscription itself, plus the push loop's own latency.
    config = e2e.subscriber.get_subscription(
        subscription=e2e.subscriber.subscription_path(e2e.project, subscription)
    )
    window_s = config.retry_policy.maximum_backoff.total_seconds()
    assert window_s == 2  # what topology() configured: the emulator reports the policy it applies
    watch_until = time.monotonic() + window_s + PUSH_LATENCY_S
    while time.monotonic() < watch_until:
        statuses = [e.status for e in e2e.events_for("scheduled", message_id)]
        assert statuses == ["rejected"], f"the poison message came back: {statuses}"
        time.sleep(0.2)
    # The push loop was delivering all along: a message published now arrives, and the poison
    # message still has its single record.
    counter = e2e.tmp / f"{uuid.uuid4().hex}.log"
    marker = e2e.publish(topic, {"task": "probe", "params": {"counter": str(counter)}})
    eventually(lambda: e2e.store.get_event(record_id("scheduled", marker)), what="the marker message")
    assert [e.status for e in e2e.events_for("scheduled", message_id)] == ["rejected"]
    assert not [d for d in e2e.store.list_dead_letters(limit=None) if d.data == "{this is not json"]


def test_failing_automation_is_redelivered_then_dead_lettered(e2e: E2E):
    topic, subscription = e2e.topology()
    counter = e2e.tmp / f"{uuid.uuid4().hex}.log"
    note = uuid.uuid4().hex
    task = {"task": "probe", "params": {"counter": str(counter), "fail": "transient", "note": note}}
    message_id = e2e.publish(topic, task)
    letter = eventually(
        lambda: next((d for d in e2e.store.list_dead_letters(limit=None) if note in (d.data or "")), None),
        timeout_s=45,
        what="the dead letter",
    )
    assert letter.delivery_attempt == 5
    assert letter.origin == f"projects/{e2e.project}/subscriptions/{subscription}"
    assert json.loads(letter.data) == task
    run = e2e.store.get_run(run_id_for("probe", message_id))
    assert run.status == RunStatus.failed and run.error.transient
    assert (
        count(counter, f"analyze:{message_id}") == run.attempts == 6
    )  # the runner gave up after 2 deliveries
    gave_up = [e for e in e2e.events_for("scheduled", message_id) if "gave up" in (e.reason or "")]
    assert len(gave_up) == 3  # deliveries 3-5 refused so the message reached the dead-letter topic
    record = e2e.store.get_event(record_id("dead_letter", letter.message_id))
    assert record.status == "accepted"


def test_every_function_serves_from_its_command_line(e2e: E2E):
    auth = {"Authorization": "Bearer alice-token", "Content-Type": "application/json"}
    controller = e2e.servers["controller"].url
    status, health = http("GET", f"{controller}/health", headers=auth)
    assert status == 200 and health["status"] in ("healthy", "degraded")
    status, created = http("POST", f"{controller}/tasks/probe", b'{"environment": "staging"}', auth)
    assert status == 201 and e2e.store.get_run(created["run"]["id"]).requested_by == "user:alice"
    assert http("POST", f"{controller}/tasks/probe", b"{}", {})[0] == 401

    webhooks = e2e.servers["webhooks"].url
    push = fixture_json("push-with-new-branch.payload.json")
    push["ref"] = "refs/heads/main"
    body = json.dumps(push).encode()
    delivery = str(uuid.uuid4())
    headers = {"X-GitHub-Event": "push", "X-GitHub-Delivery": delivery, "X-Hub-Signature-256": sign(body)}
    status, answer = http("POST", webhooks, body, headers)
    assert status == 202 and answer["deployment"]["environment"] == "production"
    assert find_deployment(e2e.store, answer["deployment"]["id"]).source_event == delivery
    assert http("POST", webhooks, body, {**headers, "X-Hub-Signature-256": "sha256=" + "0" * 64})[0] == 401

    alerts = e2e.servers["alerts"].url
    incident_message = f"alert-{uuid.uuid4().hex[:8]}"
    envelope = {
        "message": {
            "data": base64.b64encode(json.dumps(CONSOLE_TEST).encode()).decode(),
            "attributes": {},
            "messageId": incident_message,
        },
        "subscription": f"projects/{e2e.project}/subscriptions/incidents",
    }
    status, _ = http(
        "POST", alerts, json.dumps(envelope).encode(), binary_headers(incident_message, topic="incidents")
    )
    assert status == 200
    assert e2e.store.get_event(record_id("alerts", "12345:open")).status == "ignored"
