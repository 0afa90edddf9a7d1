"""Scheduled task messages (Cloud Scheduler -> Pub/Sub -> ``scheduled_task``).

The message data is a JSON object ``{"task", "mode", "environment", "automation_level",
"params"}``; attributes may carry the same keys instead (``automation_level`` as digits,
``params`` as a JSON object), which suits Scheduler jobs that publish attributes only. A key given
in both places must agree. Unknown keys in the data are errors (a typo must not be run with
defaults); other attributes are ignored (Pub/Sub and Scheduler add their own).

Each message becomes one run whose trigger id and source event are the message id: a redelivered
message returns the existing run instead of running again. A message id is one trigger whatever it
carries: a message that reuses an id with other content (another task, other parameters) is
recorded as a duplicate and runs nothing (``pubsub.claim_message``). A publisher that may publish the same
request more than once (a retrying script, a CI job) sets ``trigger_id`` (data or attribute):
every message with that key runs once. Scheduler jobs leave it out, since a fixed key would make
every execution of the job the same run.

Delivery: in Google Cloud an Eventarc trigger delivers CloudEvents. A plain push subscription
also works (functions-framework converts its JSON), provided the message JSON carries a ``data``
key: the framework's converter refuses a raw push without one (HTTP 400, before this code runs),
which Pub/Sub then retries until the dead-letter policy moves it. The Pub/Sub emulator always
sends ``data`` (empty for attribute-only messages).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from ..errors import InputError
from ..models import Mode, TriggerKind
from ..runner import RunRequest
from .parsing import json_object, validated
from .pubsub import CloudEventLike, MessageClaim, PubSubDelivery, claim_message, parse_pubsub_event
from .records import EventLog, Handled, submit_for_event

if TYPE_CHECKING:
    from ..app import App

SOURCE = "scheduled"
KIND = "scheduled-task"
TASK_KEYS = ("task", "mode", "environment", "automation_level", "params", "trigger_id")


class ScheduledTask(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    task: str = Field(min_length=1)
    mode: Mode = Mode.analyze
    environment: str | None = None
    automation_level: StrictInt | None = Field(None, ge=0, le=3)
    params: dict[str, Any] = Field(default_factory=dict)
    trigger_id: str | None = Field(None, min_length=1, max_length=500, description="idempotency key")


def _from_attributes(attributes: dict[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key in TASK_KEYS:
        if key not in attributes:
            continue
        raw = attributes[key]
        if key == "automation_level":
            if not raw.strip().isdigit():
                raise InputError(f"{raw!r} is not a whole number 0-3", where="attributes.automation_level")
            values[key] = int(raw)
        elif key == "params":
            values[key] = json_object(raw, where="attributes.params", allow_empty=True)
        else:
            values[key] = raw
    return values


def parse_task(data: dict[str, Any], attributes: dict[str, str]) -> ScheduledTask:
    from_attributes = _from_attributes(attributes)
    for key, value in from_attributes.items():
        if key in data and data[key] != value:
            raise InputError(
                f"given differently in the data ({data[key]!r}) and the attributes ({value!r})", where=key
            )
    merged = {**from_attributes, **data}
    if "task" not in merged:
        raise InputError(
            "missing: give the automation to run in the message data or as an attribute", where="task"
        )
    return validated(ScheduledTask, merged)


def task_from_delivery(delivery: PubSubDelivery) -> ScheduledTask:
    attributes = {k: v for k, v in delivery.message.attributes.items() if k in TASK_KEYS}
    return parse_task(delivery.json_payload(allow_empty=bool(attributes)), delivery.message.attributes)


def request_for(task: ScheduledTask, *, trigger_id: str, source_event: str, requested_by: str) -> RunRequest:
    return RunRequest(
        task=task.task,
        environment=task.environment,
        mode=task.mode,
        automation_level=task.automation_level,
        params=dict(task.params),
        trigger_kind=TriggerKind.scheduled,
        trigger_id=trigger_id,
        requested_by=requested_by,
        source_event=source_event,
    )


def handle_scheduled(event: CloudEventLike, app: App) -> Handled:
    """Run the task a scheduled message names. Returns normally for anything permanent (the event
    is acknowledged); raises TransientError when the platform should redeliver."""
    events = EventLog(app)
    try:
        delivery = parse_pubsub_event(event)
    except InputError as exc:
        return events.reject_cloud_event(SOURCE, KIND, event, exc)
    payload = delivery.summary()
    try:
        task = task_from_delivery(delivery)
    except InputError as exc:
        reused = claim_message(app, SOURCE, KIND, delivery)
        if reused is not None:
            return reused
        return events.reject(SOURCE, delivery.message_id, KIND, exc, payload)
    trigger_id = task.trigger_id or delivery.message_id
    request = request_for(
        task, trigger_id=trigger_id, source_event=delivery.message_id, requested_by=delivery.identity
    )
    # The message's claim is created with its run, in one commit.
    claim = MessageClaim(app, SOURCE, KIND, delivery)
    return submit_for_event(
        app, request, source=SOURCE, key=trigger_id, kind=KIND, payload=payload, claim=claim
    )
