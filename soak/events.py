"""The soak's stream: a seeded plan of events and the sender that delivers them.

Kinds, and what each must leave in the store:

- ``scheduled``: a message on the schedule topic with an idempotency key (``trigger_id``) -> one run;
- ``doom``: the same, failing transiently until healed -> a failed run and one dead letter whose
  replay succeeds once;
- ``poison``: a message the scheduled function cannot run (not JSON, an unknown field or task, a
  bad parameter) -> one recorded rejection, no run;
- ``alert_open`` / ``alert_close``: a Monitoring incident (schema 1.2) opening, and later closing
  -> one run for the opening (or one ``ignored`` record when its closing was recorded first), one
  record for the closing;
- ``push``: a signed GitHub push through the webhook function -> one run;
- ``controller``: ``POST /tasks/soak`` with an idempotency key -> one run;
- ``settle``: like ``scheduled``, sent after the faults stopped so breakers can close.

A share of events is sent again (a duplicate): the same key by the same way, or the same Pub/Sub
message id pushed straight to the function as a redelivery would.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

from orchestra.devtopology import ALERTS_TOPIC, DEAD_LETTER_TOPIC, SCHEDULE_TOPIC
from pydantic import BaseModel, ConfigDict

Kind = Literal["scheduled", "doom", "poison", "alert_open", "alert_close", "push", "controller", "settle"]
ENVIRONMENTS = ("development", "staging")
WEIGHTS: dict[str, float] = {
    "scheduled": 0.38,
    "controller": 0.16,
    "push": 0.16,
    "alert_open": 0.14,
    "poison": 0.06,
    "doom": 0.02,
}
POISONS = ("not-json", "unknown-field", "unknown-task", "bad-param")
HTTP_RETRY_S = 180.0
# Kinds sent through the schedule topic (dead-lettered when their deliveries run out).
SCHEDULED_KINDS = ("scheduled", "doom", "settle", "poison")


class SoakEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    index: int
    key: str
    kind: Kind
    environment: str
    phase: Literal["warmup", "clean", "chaos", "settle"]
    poison: str | None = None
    incident: str | None = None
    duplicate: bool = False


class Send(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str
    at: float
    channel: str
    message_id: str | None = None
    status: int | None = None
    duplicate: bool = False
    error: str | None = None


@dataclass
class Plan:
    events: list[SoakEvent]

    @property
    def keys(self) -> dict[str, SoakEvent]:
        return {e.key: e for e in self.events}


def make_plan(seed: int, count: int, *, clean: int, duplicate_rate: float, warmup: int = 0) -> Plan:
    """``count`` events: the first ``warmup`` wake the functions up (their first requests build
    the application and open the store's channels), the next ``clean`` are sent before any fault.
    Each opening incident is followed by its closing a few events later (both counted)."""
    rng = random.Random(f"plan:{seed}")
    kinds = list(WEIGHTS)
    weights = [WEIGHTS[k] for k in kinds]
    events: list[SoakEvent] = []
    closings: dict[int, list[SoakEvent]] = {}
    i = 0
    while len(events) < count:
        n = len(events)
        phase: Literal["warmup", "clean", "chaos"] = (
            "warmup" if n < warmup else "clean" if n < warmup + clean else "chaos"
        )
        for closing in closings.pop(i, []):
            if len(events) < count:
                events.append(closing.model_copy(update={"index": len(events), "phase": phase}))
        if len(events) >= count:
            break
        kind = rng.choices(kinds, weights)[0]
        key = f"s{seed}-{len(events):06d}"
        env = rng.choice(ENVIRONMENTS)
        event = SoakEvent(
            index=len(events),
            key=key,
            kind=kind,  # type: ignore[arg-type]
            environment=env,
            phase=phase,
            duplicate=rng.random() < duplicate_rate,
        )
        if kind == "poison":
            event.poison = rng.choice(POISONS)
        if kind == "alert_open":
            event.incident = key  # the soak automation keys an incident's run by its id
            later = i + rng.randint(3, 25)
            closings.setdefault(later, []).append(
                SoakEvent(
                    index=-1,
                    key=f"{key}-close",
                    kind="alert_close",
                    environment=env,
                    phase=phase,
                    incident=event.incident,
                    duplicate=rng.random() < duplicate_rate,
                )
            )
        events.append(event)
        i += 1
    return Plan(events)


# --------------------------------------------------------------------------- payloads


def scheduled_body(event: SoakEvent) -> dict[str, Any]:
    return {
        "task": "soak",
        "mode": "apply",
        "environment": event.environment,
        "trigger_id": event.key,
        "params": {"key": event.key, "doom": event.kind == "doom"},
    }


def poison_body(event: SoakEvent) -> bytes:
    body = scheduled_body(event)
    if event.poison == "not-json":
        return b'{"task": "soak", "params": ' + event.key.encode()
    if event.poison == "unknown-field":
        body["tsak"] = body.pop("task")
    elif event.poison == "unknown-task":
        body["task"] = "no-such-automation"
    else:
        body["params"] = {"key": event.key, "colour": "blue"}
    return json.dumps(body).encode()


def incident(event: SoakEvent, state: str) -> dict[str, Any]:
    """A Cloud Run CPU incident (schema 1.2) that the configuration's cpu rule covers."""
    assert event.incident is not None
    return {
        "version": "1.2",
        "incident": {
            "incident_id": event.incident,
            "scoping_project_id": "orchestra-soak",
            "state": state,
            "started_at": 1767614400,
            "ended_at": None if state == "open" else 1767618000,
            "policy_name": "soak CPU above 70%",
            "policy_user_labels": {"environment": event.environment},
            "condition_name": "Cloud Run Revision - Container CPU Utilization",
            "condition": {
                "name": "projects/orchestra-soak/alertPolicies/1/conditions/2",
                "displayName": "Container CPU Utilization",
                "conditionThreshold": {
                    "filter": 'resource.type = "cloud_run_revision" AND metric.type = '
                    '"run.googleapis.com/container/cpu/utilizations"',
                    "comparison": "COMPARISON_GT",
                    "thresholdValue": 0.7,
                    "duration": "900s",
                },
            },
            "metric": {"type": "run.googleapis.com/container/cpu/utilizations", "labels": {}},
            "resource": {"type": "cloud_run_revision", "labels": {"service_name": "soak-service"}},
            "observed_value": "0.91",
            "threshold_value": "0.7",
            "summary": "CPU utilization above 70% for 15 minutes",
        },
    }


def push_payload(event: SoakEvent) -> bytes:
    sha = hashlib.sha1(event.key.encode()).hexdigest()
    return json.dumps(
        {
            "ref": "refs/heads/main",
            "before": "0" * 40,
            "after": sha,
            "repository": {"full_name": "soak/service"},
            "pusher": {"name": "soak", "email": "soak@example.com"},
            "sender": {"login": "soak"},
            "head_commit": {"id": sha, "message": f"soak {event.key}"},
        }
    ).encode()


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def push_envelope(project: str, data: bytes, message_id: str, attributes: dict[str, str]) -> bytes:
    """A raw push as the emulator sends it, for a redelivery of ``message_id``."""
    return json.dumps(
        {
            "subscription": f"projects/{project}/subscriptions/soak-redelivery",
            "message": {
                "data": base64.b64encode(data).decode(),
                "attributes": attributes,
                "messageId": message_id,
            },
        }
    ).encode()


# --------------------------------------------------------------------------- the sender


@dataclass
class Endpoints:
    project: str
    publisher: Any
    direct: dict[str, str]
    api_token: str
    webhook_secret: str


@dataclass
class Sender:
    """Delivers events; every delivery is appended to ``sends`` (thread-safe)."""

    endpoints: Endpoints
    log: Callable[[str], None]
    sends: list[Send] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _pool: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(8, "soak-send"))
    _pending: list[Future[Any]] = field(default_factory=list)
    _message_ids: dict[str, tuple[str, bytes, dict[str, str], str]] = field(default_factory=dict)
    # Set by close(): deliveries still retrying give up (the process is stopping).
    _closed: threading.Event = field(default_factory=threading.Event)

    def _record(self, send: Send) -> None:
        with self._lock:
            self.sends.append(send)

    def send(self, event: SoakEvent, *, duplicate: bool = False) -> None:
        at = time.time()
        if event.kind in SCHEDULED_KINDS:
            data = (
                poison_body(event) if event.kind == "poison" else json.dumps(scheduled_body(event)).encode()
            )
            self._publish(event, SCHEDULE_TOPIC, data, at, duplicate)
        elif event.kind in ("alert_open", "alert_close"):
            state = "open" if event.kind == "alert_open" else "closed"
            self._publish(event, ALERTS_TOPIC, json.dumps(incident(event, state)).encode(), at, duplicate)
        elif event.kind == "push":
            self._http(event, at, duplicate, self._push_request)
        else:
            self._http(event, at, duplicate, self._controller_request)

    def redeliver(self, event: SoakEvent, *, channel: str = "redelivery") -> bool:
        """Push the first message of ``event`` straight to its function again (same message id),
        as Pub/Sub does after a lost acknowledgement. False when it has no message yet."""
        with self._lock:
            first = self._message_ids.get(event.key)
        if first is None:
            return False
        message_id, data, attributes, topic = first
        function = "scheduled" if topic == SCHEDULE_TOPIC else "alerts"
        body = push_envelope(self.endpoints.project, data, message_id, attributes)
        url = f"{self.endpoints.direct[function]}/projects/{self.endpoints.project}/topics/{topic}"
        request = urllib.request.Request(
            url, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        at = time.time()
        # One attempt: a redelivery answered with an error is Pub/Sub's to retry, not ours.
        self._track(self._pool.submit(self._deliver, event, channel, request, at, True, message_id, False))
        return True

    def dead_letter(self, event: SoakEvent, attempts: int) -> bool:
        """Forward the first message of ``event`` to the dead-letter topic with the attributes
        Pub/Sub adds, for a message the emulator stopped delivering without forwarding it."""
        with self._lock:
            first = self._message_ids.get(event.key)
        if first is None:
            return False
        _, data, attributes, topic = first
        dead = {
            **attributes,
            "CloudPubSubDeadLetterSourceDeliveryCount": str(attempts),
            "CloudPubSubDeadLetterSourceSubscription": f"{topic}-push",
            "CloudPubSubDeadLetterSourceSubscriptionProject": self.endpoints.project,
        }
        path = self.endpoints.publisher.topic_path(self.endpoints.project, DEAD_LETTER_TOPIC)
        self.endpoints.publisher.publish(path, data, **dead).result(timeout=30)
        return True

    def _publish(self, event: SoakEvent, topic: str, data: bytes, at: float, duplicate: bool) -> None:
        attributes = {"soak_key": event.key}
        path = self.endpoints.publisher.topic_path(self.endpoints.project, topic)
        future = self.endpoints.publisher.publish(path, data, **attributes)

        def done(f: Future[Any]) -> None:
            try:
                message_id = str(f.result())
            except Exception as exc:  # noqa: BLE001 - recorded; the checker reports the event lost
                self._record(Send(key=event.key, at=at, channel=topic, duplicate=duplicate, error=str(exc)))
                return
            with self._lock:
                self._message_ids.setdefault(event.key, (message_id, data, attributes, topic))
            self._record(
                Send(key=event.key, at=at, channel=topic, message_id=message_id, duplicate=duplicate)
            )

        future.add_done_callback(done)
        self._track(future)

    def _push_request(self, event: SoakEvent) -> urllib.request.Request:
        body = push_payload(event)
        headers = {
            "Content-Type": "application/json",
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": event.key,
            "X-Hub-Signature-256": signature(self.endpoints.webhook_secret, body),
        }
        return urllib.request.Request(
            self.endpoints.direct["webhooks"], data=body, method="POST", headers=headers
        )

    def _controller_request(self, event: SoakEvent) -> urllib.request.Request:
        body = {"mode": "apply", "environment": event.environment, "params": {"key": event.key}}
        headers = {
            "Content-Type": "application/json",
            "Authorization": f"Bearer {self.endpoints.api_token}",
            "Idempotency-Key": event.key,
        }
        url = f"{self.endpoints.direct['controller']}/tasks/soak"
        return urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers=headers)

    def _http(
        self,
        event: SoakEvent,
        at: float,
        duplicate: bool,
        build: Callable[[SoakEvent], urllib.request.Request],
    ) -> None:
        channel = "webhooks" if event.kind == "push" else "controller"
        self._track(self._pool.submit(self._deliver, event, channel, build(event), at, duplicate, None))

    def _deliver(
        self,
        event: SoakEvent,
        channel: str,
        request: urllib.request.Request,
        at: float,
        duplicate: bool,
        message_id: str | None,
        retry: bool = True,
    ) -> None:
        """Send until the function answers other than 5xx, as GitHub, a scheduler or Pub/Sub would
        (the same delivery id or key every time)."""
        deadline = time.monotonic() + HTTP_RETRY_S
        wait = 0.25
        last = ""
        while True:
            try:
                with urllib.request.urlopen(request, timeout=60) as response:
                    status = response.status
                    response.read()
            except urllib.error.HTTPError as exc:
                status = exc.code
                exc.read()
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as exc:
                status, last = 0, f"{type(exc).__name__}: {exc}"
            if 0 < status < 500 or not retry:
                self._record(
                    Send(
                        key=event.key,
                        at=at,
                        channel=channel,
                        status=status,
                        duplicate=duplicate,
                        message_id=message_id,
                    )
                )
                if status >= 400:
                    self.log(f"send {event.key} via {channel}: HTTP {status}")
                return
            last = last if status == 0 else f"HTTP {status}"
            if time.monotonic() > deadline:
                self._record(Send(key=event.key, at=at, channel=channel, duplicate=duplicate, error=last))
                self.log(f"send {event.key} via {channel}: gave up after {HTTP_RETRY_S:.0f} s ({last})")
                return
            if self._closed.wait(wait):
                self._record(
                    Send(key=event.key, at=at, channel=channel, duplicate=duplicate, error="stopped")
                )
                return
            wait = min(wait * 2, 5.0)

    def _track(self, future: Future[Any]) -> None:
        with self._lock:
            self._pending = [f for f in self._pending if not f.done()]
            self._pending.append(future)

    def drain(self, timeout_s: float = HTTP_RETRY_S + 60) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            with self._lock:
                pending = [f for f in self._pending if not f.done()]
            if not pending or time.monotonic() > deadline:
                return
            time.sleep(0.2)

    def first_sent(self) -> dict[str, float]:
        with self._lock:
            sends = list(self.sends)
        first: dict[str, float] = {}
        for s in sends:
            if not s.duplicate and s.error is None:
                first[s.key] = min(first.get(s.key, s.at), s.at)
        return first

    def close(self) -> None:
        """Deliveries not started are cancelled and those retrying give up: nothing holds the
        process once it stops."""
        self._closed.set()
        self._pool.shutdown(wait=False, cancel_futures=True)
