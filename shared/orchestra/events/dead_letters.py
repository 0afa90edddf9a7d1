"""Dead letters: messages Pub/Sub gave up on, stored so nothing is lost, and replayable.

When a subscription's ``dead_letter_policy`` gives up on a message, Pub/Sub publishes a copy to
the dead-letter topic: same data and attributes, a new message id, plus the attributes
``CloudPubSubDeadLetterSourceDeliveryCount``, ``CloudPubSubDeadLetterSourceSubscription``,
``CloudPubSubDeadLetterSourceSubscriptionProject`` and
``CloudPubSubDeadLetterSourceTopicPublishTime``. The ``dead_letter`` function stores each one
(keyed on its own message id, so a redelivery is stored once) with its origin and attempt count.

Replaying re-runs the original trigger through the runner. The original message id is not in
the dead-lettered copy, so a replay's trigger id is ``replay:{dead letter id}``: replaying the same
dead letter twice returns the first replay's run instead of running again. A message whose own key
(a scheduled ``trigger_id``, an incident's opening) already made a run that did not fail or get
skipped is not run again: Pub/Sub dead-letters such a message too when its acknowledgements are
lost, and the replay answers with that run.

A newly stored dead letter is announced (``dev.orchestra.deadletter.stored.v1``, see
:mod:`orchestra.announcements`); a redelivery of one already stored is not.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..announcements import announce_safely
from ..errors import InputError, NotFound, TransientError
from ..models import DeadLetter, RunStatus, run_id_for, safe_doc_id
from ..runner import RunOutcome, RunRequest
from . import alerts, scheduled
from .parsing import json_object
from .pubsub import CloudEventLike, PubSubDelivery, parse_pubsub_event
from .records import EventLog, EventStatus, Handled

if TYPE_CHECKING:
    from ..app import App

SOURCE = "dead_letter"
KIND = "dead-letter"
ATTRIBUTE_PREFIX = "CloudPubSubDeadLetter"
DELIVERY_COUNT = "CloudPubSubDeadLetterSourceDeliveryCount"
SOURCE_SUBSCRIPTION = "CloudPubSubDeadLetterSourceSubscription"
SOURCE_PROJECT = "CloudPubSubDeadLetterSourceSubscriptionProject"
SOURCE_PUBLISH_TIME = "CloudPubSubDeadLetterSourceTopicPublishTime"
BASE64_PREFIX = "base64:"


def _origin(delivery: PubSubDelivery) -> str:
    attributes = delivery.message.attributes
    subscription = attributes.get(SOURCE_SUBSCRIPTION)
    project = attributes.get(SOURCE_PROJECT)
    if subscription and project and "/" not in subscription:
        return f"projects/{project}/subscriptions/{subscription}"
    if subscription:
        return subscription
    return f"topic {delivery.topic}" if delivery.topic else "unknown (no dead-letter attributes)"


def _attempts(delivery: PubSubDelivery) -> int | None:
    raw = delivery.message.attributes.get(DELIVERY_COUNT, "")
    return int(raw) if raw.strip().isdigit() else delivery.delivery_attempt


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return BASE64_PREFIX + base64.b64encode(raw).decode()


# Pub/Sub messages reach 10 MB; a Firestore document stops at 1 MiB. Keeping the start of a huge
# message (with its size) records the dead letter instead of failing on it forever.
MAX_STORED_DATA_BYTES = 256 * 1024


def letter_from_delivery(delivery: PubSubDelivery, app: App) -> DeadLetter:
    now = app.clock.now()
    try:
        data = _text(delivery.payload())
    except InputError:
        data = BASE64_PREFIX + (delivery.message.data or "")  # kept exactly as received
    encoded = data.encode()
    truncated = len(encoded) > MAX_STORED_DATA_BYTES
    if truncated:
        data = encoded[:MAX_STORED_DATA_BYTES].decode("utf-8", errors="ignore")
    return DeadLetter(
        data_bytes=len(encoded),
        data_truncated=truncated,
        id=safe_doc_id(delivery.message_id),
        message_id=delivery.message_id,
        origin=_origin(delivery),
        delivery_attempt=_attempts(delivery),
        data=data,
        attributes=dict(delivery.message.attributes),
        received_at=now,
        expires_at=now + dt.timedelta(days=app.config.runner.retention.dead_letters_days),
    )


def handle_dead_letter(event: CloudEventLike, app: App) -> Handled:
    events = EventLog(app)
    try:
        delivery = parse_pubsub_event(event)
    except InputError as exc:
        return events.reject_cloud_event(SOURCE, KIND, event, exc)
    letter = letter_from_delivery(delivery, app)
    created = app.store.add_dead_letter(letter)
    payload = {
        "dead_letter_id": letter.id,
        "origin": letter.origin,
        "delivery_attempt": letter.delivery_attempt,
        "attributes": letter.attributes,
    }
    if not created and events.primary_exists(SOURCE, delivery.message_id):
        record = events.duplicate(
            SOURCE,
            delivery.message_id,
            KIND,
            reason=f"dead letter {letter.id} already stored",
            payload=payload,
        )
        return Handled(EventStatus.duplicate, record)
    attempts = f"after {letter.delivery_attempt} attempts" if letter.delivery_attempt else ""
    record = events.save(
        SOURCE,
        delivery.message_id,
        KIND,
        EventStatus.accepted,
        reason=f"stored dead letter {letter.id} from {letter.origin} {attempts}".strip(),
        payload=payload,
    )
    if created:
        announce_safely(f"dead letter {letter.id} stored", app.announcer.dead_letter_stored, letter)
    return Handled(EventStatus.accepted, record, extra={"dead_letter": letter})


# ----------------------------------------------------------------------------------- replay


def original_attributes(letter: DeadLetter) -> dict[str, str]:
    return {k: v for k, v in letter.attributes.items() if not k.startswith(ATTRIBUTE_PREFIX)}


def original_data(letter: DeadLetter) -> bytes:
    text = letter.data or ""
    if text.startswith(BASE64_PREFIX):
        try:
            return base64.b64decode(text[len(BASE64_PREFIX) :], validate=True)
        except (binascii.Error, ValueError):
            raise InputError("stored data is not valid base64", where="data") from None
    return text.encode()


@dataclass
class Replay:
    letter: DeadLetter
    kind: str
    request: RunRequest
    outcome: RunOutcome


def replay_request(app: App, letter: DeadLetter, identity: str) -> tuple[str, RunRequest]:
    """The run request the dead-lettered message asked for, keyed for replay. InputError when
    the message cannot be run (it would be rejected or ignored again)."""
    if letter.data_truncated:
        raise InputError(
            f"the message held {letter.data_bytes} bytes of data and only the first "
            f"{MAX_STORED_DATA_BYTES} were stored; publish it again from its source",
            where="data",
        )
    attributes = original_attributes(letter)
    raw = original_data(letter)
    trigger_id = f"replay:{letter.id}"
    data = json_object(raw, where="data", allow_empty=any(k in scheduled.TASK_KEYS for k in attributes))
    if "incident" in data:
        notification = alerts.parse_notification(data)
        incident = notification.incident
        if incident.state != "open":
            raise InputError(
                f"incident {incident.incident_id} is {incident.state}: only an opening starts a run",
                where="incident.state",
            )
        mapping = alerts.map_incident(incident, app.config)
        if mapping.ignored:
            raise InputError(mapping.ignored, where="incident")
        request = alerts.request_for(
            incident,
            mapping,
            app.config,
            app.registry,
            trigger_id=trigger_id,
            source_event=letter.id,
            requested_by=identity,
        )
        if request is None:
            raise InputError(f"{alerts.NO_BREACH_HANDLER}: the incident starts no run", where="incident")
        return "alert", request
    task = scheduled.parse_task(data, attributes)
    return "scheduled", scheduled.request_for(
        task, trigger_id=trigger_id, source_event=letter.id, requested_by=identity
    )


def original_trigger(letter: DeadLetter) -> str | None:
    """The trigger id the dead-lettered message ran under when its content names one (a scheduled
    message's ``trigger_id``, an incident's ``{id}:open``); None otherwise (the original message
    id is not in the dead-lettered copy)."""
    try:
        data = json_object(original_data(letter), where="data", allow_empty=True)
        if "incident" in data:
            return alerts.parse_notification(data).incident.dedupe_key
    except InputError:
        return None
    trigger = data.get("trigger_id") or original_attributes(letter).get("trigger_id")
    return trigger if isinstance(trigger, str) and trigger else None


# A run in any other status did (or is doing) what the message asked: replaying it would do it twice.
RERUNNABLE = frozenset({RunStatus.failed, RunStatus.skipped})


def replay_dead_letter(app: App, letter_id: str, identity: str) -> Replay:
    letter = app.store.get_dead_letter(letter_id)
    if letter is None:
        raise NotFound(f"no dead letter with id {letter_id!r} (see `orchestra dlq list`)", where="id")
    kind, request = replay_request(app, letter, identity)
    # Pub/Sub also dead-letters a message whose run succeeded when its acknowledgements were lost:
    # the run its own key made is the answer then, not a second execution.
    trigger = original_trigger(letter)
    earlier = app.store.get_run(run_id_for(request.task, trigger)) if trigger else None
    if earlier is not None and earlier.status not in RERUNNABLE:
        _link(app, letter, earlier.id)
        return Replay(letter=letter, kind=kind, request=request, outcome=RunOutcome(earlier, duplicate=True))
    try:
        outcome = app.runner.submit(request)
    except TransientError:
        # The run exists and failed transiently: link it so the operator sees what happened.
        _link(app, letter, run_id_for(request.task, request.trigger_id or ""))
        raise
    _link(app, letter, outcome.run.id)
    return Replay(letter=letter, kind=kind, request=request, outcome=outcome)


def _link(app: App, letter: DeadLetter, run_id: str) -> None:
    if run_id in letter.replayed_run_ids or app.store.get_run(run_id) is None:
        return
    letter.replayed_run_ids.append(run_id)
    app.store.save_dead_letter(letter)
