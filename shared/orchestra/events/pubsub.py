"""Pub/Sub ``messagePublished`` CloudEvents.

Eventarc delivers ``type=google.cloud.pubsub.topic.v1.messagePublished``,
``source=//pubsub.googleapis.com/projects/P/topics/T``, ``id`` = the message id, and as data
``{"message": {"data": <base64>, "attributes": {...}, "messageId", "publishTime", "orderingKey"},
"subscription": "projects/P/subscriptions/S"}``. A raw push request (what a push subscription,
including the emulator's, sends) is converted to the same shape by functions-framework, without
``subscription`` (its ``source`` has the topic only when the push URL path contains
``projects/P/topics/T``).

A message id is one trigger (:func:`claim_message`): the first delivery of a message id records
a claim with a fingerprint of what the message carries (data and attributes). A redelivery
carries the same and is handled as usual (the run, incident or rejection dedupes it); a message
that reuses the id with other content — another task, another incident — is recorded as a
duplicate and does nothing.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

from ..errors import InputError
from .parsing import json_object, json_value, validated

if TYPE_CHECKING:
    from ..app import App
    from ..models import EventRecord
    from ..runner import Claim
    from .records import Handled

MESSAGE_PUBLISHED = "google.cloud.pubsub.topic.v1.messagePublished"
PUBSUB_SOURCE_PREFIX = "//pubsub.googleapis.com/"


class CloudEventLike(Protocol):
    """What handlers need from a CloudEvent (``cloudevents.http.CloudEvent`` satisfies it)."""

    data: Any

    def __getitem__(self, key: str) -> Any: ...

    def get(self, key: str, default: Any = None) -> Any: ...


class PubSubMessage(BaseModel):
    # Google adds fields over time; unknown ones are kept out, never an error.
    model_config = ConfigDict(extra="ignore", populate_by_name=True, defer_build=True)

    data: str | None = None
    attributes: dict[str, str] = Field(default_factory=dict)
    message_id: str = Field(validation_alias=AliasChoices("messageId", "message_id"), min_length=1)
    publish_time: str | None = Field(None, validation_alias=AliasChoices("publishTime", "publish_time"))
    ordering_key: str | None = Field(None, validation_alias=AliasChoices("orderingKey", "ordering_key"))

    @field_validator("attributes", mode="before")
    @classmethod
    def _no_attributes(cls, value: Any) -> Any:
        return {} if value is None else value

    def payload(self) -> bytes:
        if not self.data:
            return b""
        try:
            return base64.b64decode(self.data, validate=True)
        except (binascii.Error, ValueError):
            raise InputError("is not valid base64", where="message.data") from None


class MessagePublishedData(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, defer_build=True)

    message: PubSubMessage
    subscription: str | None = None
    delivery_attempt: int | None = Field(
        None, validation_alias=AliasChoices("deliveryAttempt", "delivery_attempt")
    )


@dataclass(frozen=True)
class PubSubDelivery:
    """One delivery of one Pub/Sub message, as a handler sees it."""

    event_id: str
    source: str
    message: PubSubMessage
    subscription: str | None
    delivery_attempt: int | None

    @property
    def message_id(self) -> str:
        return self.message.message_id

    @property
    def topic(self) -> str | None:
        if self.source.startswith(PUBSUB_SOURCE_PREFIX):
            rest = self.source[len(PUBSUB_SOURCE_PREFIX) :]
            return rest if "/topics/" in rest else None
        return None

    @property
    def origin(self) -> str:
        """Short, readable name of where the message came from: subscription, else topic."""
        for full in (self.subscription, self.topic):
            if full:
                return full.rsplit("/", 1)[-1]
        return "unknown"

    @property
    def identity(self) -> str:
        return f"pubsub:{self.origin}"

    def payload(self) -> bytes:
        return self.message.payload()

    def fingerprint(self) -> str:
        """What the message carries, hashed: every delivery of one message has the same."""
        content = json.dumps(
            {"data": self.message.data or "", "attributes": self.message.attributes}, sort_keys=True
        )
        return hashlib.sha256(content.encode()).hexdigest()

    def json_payload(self, *, allow_empty: bool = False) -> dict[str, Any]:
        """The message data as a JSON object (``{}`` for empty data when ``allow_empty``)."""
        return json_object(self.payload(), where="message.data", allow_empty=allow_empty)

    def summary(self, limit: int = 16_384) -> dict[str, Any]:
        """What an event record keeps of the delivery: enough to replay it by hand."""
        return {
            "message_id": self.message_id,
            "source": self.source,
            "subscription": self.subscription,
            "attributes": dict(self.message.attributes),
            "data": (self.message.data or "")[:limit],
            "data_truncated": len(self.message.data or "") > limit,
            "publish_time": self.message.publish_time,
        }


def event_data(event: CloudEventLike) -> Any:
    """The CloudEvent's data, decoded when the SDK left it as JSON text."""
    data = event.data
    return json_value(data, where="data") if isinstance(data, bytes | bytearray | str) else data


def parse_pubsub_event(event: CloudEventLike) -> PubSubDelivery:
    """Validate a CloudEvent as a Pub/Sub delivery; InputError (permanent) when it is not one."""
    event_type = event.get("type")
    if event_type != MESSAGE_PUBLISHED:
        raise InputError(
            f"unexpected CloudEvent type {event_type!r}; accepted: {MESSAGE_PUBLISHED}", where="type"
        )
    data = event_data(event)
    if not isinstance(data, dict):
        raise InputError("CloudEvent data must be an object with a 'message'", where="data")
    parsed = validated(MessagePublishedData, data, prefix="data")
    return PubSubDelivery(
        event_id=str(event.get("id") or parsed.message.message_id),
        source=str(event.get("source") or ""),
        message=parsed.message,
        subscription=parsed.subscription,
        delivery_attempt=parsed.delivery_attempt,
    )


def cloud_event_summary(event: CloudEventLike, limit: int = 16_384) -> dict[str, Any]:
    """A JSON-safe summary of any CloudEvent, for the record of a rejected one."""
    data = event.data
    if isinstance(data, bytes | bytearray):
        text = base64.b64encode(bytes(data[:limit])).decode()
        shown: Any = {"base64": text}
    elif isinstance(data, str):
        shown = data[:limit]
    else:
        try:
            dumped = json.dumps(data, default=str)
        except (TypeError, ValueError):
            dumped = repr(data)
        shown = json.loads(dumped) if len(dumped) <= limit else dumped[:limit]
    return {
        "id": event.get("id"),
        "type": event.get("type"),
        "source": event.get("source"),
        "data": shown,
    }


CLAIM_KIND = "pubsub-message"


def claims_source(source: str) -> str:
    """Where a function's message claims are recorded, apart from its event records."""
    return f"{source}-messages"


def claim_record(app: App, source: str, delivery: PubSubDelivery) -> EventRecord:
    """The claim of ``delivery``'s message id for what it carries (not yet written)."""
    from ..models import EventRecord
    from .records import EventStatus, record_id

    now = app.clock.now()
    where = claims_source(source)
    return EventRecord(
        id=record_id(where, delivery.message_id),
        source=where,
        event_id=delivery.message_id,
        kind=CLAIM_KIND,
        status=EventStatus.accepted.value,
        reason=f"message {delivery.message_id} claimed by its first delivery to {source}",
        received_at=now,
        payload={"fingerprint": delivery.fingerprint(), "origin": delivery.origin},
        expires_at=now + dt.timedelta(days=app.config.runner.retention.events_days),
    )


def claim_message(
    app: App, source: str, kind: str, delivery: PubSubDelivery, claim: EventRecord | None = None
) -> Handled | None:
    """Claim ``delivery``'s message id for what it carries. None: handle it (the first delivery,
    or a redelivery of the same message). Otherwise the message id was first delivered with other
    content: recorded as a duplicate event of ``source`` and returned, with nothing run."""
    from .records import EventLog, EventStatus, Handled

    claim = claim or claim_record(app, source, delivery)
    fingerprint = claim.payload["fingerprint"]
    if app.store.record_event(claim):
        return None
    existing = app.store.get_event(claim.id)
    if existing is None or existing.payload.get("fingerprint") == fingerprint:
        return None  # the same message again (or a claim purged meanwhile): handled as usual
    record = EventLog(app).duplicate(
        source,
        delivery.message_id,
        kind,
        reason=(
            f"message id {delivery.message_id} was already delivered with other content (first at "
            f"{existing.received_at.isoformat()}); a message id is one trigger: this copy runs nothing"
        ),
        payload=delivery.summary(),
    )
    return Handled(EventStatus.duplicate, record)


class MessageClaim:
    """A message's claim made with its run (one commit): :meth:`for_run` is what the runner
    creates with the run; when either exists already, :meth:`confirm` claims the message the
    usual way (:func:`claim_message`) and keeps the duplicate record in :attr:`refused`."""

    def __init__(self, app: App, source: str, kind: str, delivery: PubSubDelivery) -> None:
        self.app, self.source, self.kind, self.delivery = app, source, kind, delivery
        self.record = claim_record(app, source, delivery)
        self.refused: Handled | None = None

    def confirm(self) -> bool:
        self.refused = claim_message(self.app, self.source, self.kind, self.delivery, self.record)
        return self.refused is None

    def for_run(self) -> Claim:
        from ..runner import Claim
        from ..store.base import EVENTS

        return Claim(EVENTS, self.record.id, self.record.model_dump(mode="json"), self.confirm)
