"""GitHub webhook payloads (``push``, ``ping``) -> whatever the automation that handles pushes does.

A push is parsed into :class:`PushEvent` and handed to the automation that declares it handles
:attr:`~orchestra.automation.EventKind.push` (the deployment automation among the built-ins: a
push to a branch becomes a deployment request for the environment the branch maps to; see
``orchestra.automations.deployment.push``). The event is recorded with the status and reason the
handler reports (accepted, duplicate, ignored); with no handler it is recorded as ignored.

Deduplication: the delivery id (``X-GitHub-Delivery``) keys the event record, so a redelivery is
recorded as a duplicate. The handler may deduplicate further on what the push asks for (the
deployment automation keys a deployment by repository, environment and revision, so a captured
push re-sent with a new delivery id requests nothing).

Who pushed: the pusher's name (shown as ``github:<name>``), the pusher's e-mail and the sender's
login (:meth:`PushEvent.requester`); none of them may approve what the push requested
(``orchestra.identities``).

Signature verification happens before this module sees anything (``orchestra.api.webhooks``).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from ..automation import EventContext, EventKind
from ..identities import Requester
from .parsing import validated
from .records import EventLog, EventStatus, Handled, submit_for_event

if TYPE_CHECKING:
    from ..app import App

SOURCE = "webhooks"
HANDLED_EVENTS = ("push", "ping")


class _Lenient(BaseModel):
    # GitHub payloads carry hundreds of fields; only the ones used here are validated.
    model_config = ConfigDict(extra="ignore")


class Repository(_Lenient):
    full_name: str = Field(min_length=1)


class Pusher(_Lenient):
    name: str = Field(min_length=1)
    email: str | None = None


class Account(_Lenient):
    login: str | None = None


class PushEvent(_Lenient):
    ref: str = Field(min_length=1)
    before: str | None = None
    after: str = Field(min_length=1)
    created: bool = False
    deleted: bool = False
    forced: bool = False
    base_ref: str | None = None
    head_commit: dict[str, Any] | None = None
    repository: Repository
    pusher: Pusher
    sender: Account | None = None

    def requester(self) -> Requester:
        return Requester.from_push(
            self.pusher.name, self.pusher.email, self.sender.login if self.sender else None
        )

    def committed_at(self) -> dt.datetime | None:
        """The head commit's timestamp (ISO 8601 with offset), when the payload has a valid one."""
        raw = (self.head_commit or {}).get("timestamp")
        if not isinstance(raw, str):
            return None
        try:
            parsed = dt.datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed.astimezone(dt.UTC) if parsed.tzinfo else None

    def summary(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "before": self.before,
            "after": self.after,
            "created": self.created,
            "deleted": self.deleted,
            "forced": self.forced,
            "repository": self.repository.full_name,
            "pusher": self.pusher.name,
            "pusher_email": self.pusher.email,
            "sender": self.sender.login if self.sender else None,
            "head_commit": (self.head_commit or {}).get("id"),
        }


class PingEvent(_Lenient):
    zen: str | None = None
    hook_id: int | None = None
    repository: Repository | None = None


def parse_push(data: dict[str, Any]) -> PushEvent:
    return validated(PushEvent, data)


def handle_github(app: App, *, event_name: str, delivery_id: str, data: dict[str, Any]) -> Handled:
    """Handle one authenticated delivery. InputError for a payload that is not what it claims."""
    events = EventLog(app)
    kind = f"github-{event_name}"
    if events.primary_exists(SOURCE, delivery_id):
        record = events.duplicate(
            SOURCE, delivery_id, kind, reason="delivery already handled", payload={"event": event_name}
        )
        return Handled(EventStatus.duplicate, record)
    if event_name == "ping":
        ping = validated(PingEvent, data)
        return events.ignore(
            SOURCE,
            delivery_id,
            kind,
            "ping: webhook reachable and signed correctly; nothing to run",
            {"hook_id": ping.hook_id, "zen": ping.zen},
        )
    if event_name != "push":
        return events.ignore(
            SOURCE,
            delivery_id,
            kind,
            f"event {event_name!r} is not handled (accepted: {', '.join(HANDLED_EVENTS)}); "
            "subscribe the webhook to push events only",
            {"event": event_name},
        )
    push = parse_push(data)
    payload = push.summary()
    handler = app.registry.handler(EventKind.push)
    if handler is None:
        return events.ignore(SOURCE, delivery_id, kind, "no registered automation handles pushes", payload)
    ctx = EventContext(
        config=app.config, store=app.store, clock=app.clock, ids=app.ids, source_event=delivery_id
    )
    outcome = handler.handle_event(EventKind.push, push, ctx)
    payload = {**payload, **outcome.payload}
    reason = outcome.reason or f"{handler.name}: {outcome.status}"
    if outcome.status == "ignored":
        return events.ignore(SOURCE, delivery_id, kind, reason, payload)
    if outcome.request is not None:
        handled = submit_for_event(
            app, outcome.request, source=SOURCE, key=delivery_id, kind=kind, payload=payload
        )
        handled.extra.update(outcome.extra)
        return handled
    status = EventStatus.duplicate if outcome.status == "duplicate" else EventStatus.accepted
    record = events.save(SOURCE, delivery_id, kind, status, reason=reason, payload=payload)
    return Handled(status, record, extra=dict(outcome.extra))
