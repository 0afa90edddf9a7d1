"""GitHub webhook payloads (``push``, ``ping``) -> whatever the automations that handle pushes do.

A push is parsed into :class:`PushEvent` and handed to every automation that declares it handles
:attr:`~orchestra.automation.EventKind.push`, by name (among the built-ins: the deployment
automation turns a push to a branch into a deployment request for the environment the branch
maps to, see ``orchestra.automations.deployment.push``; the testing automation runs the suites
whose ``triggers.push`` patterns match the branch, on the pushed revision). Every handler is asked
before the runs they ask for start (:func:`orchestra.registry.dispatch`). The event is recorded
once, with what each handler did under ``handlers`` (status, reason, run ids); one handler
failing is recorded there and does not lose what the others did. With no handler the event is
recorded as ignored.

Deduplication: the delivery id (``X-GitHub-Delivery``) keys the event record, so a redelivery is
recorded as a duplicate. Handlers deduplicate further on what the push asks for (the deployment
automation keys a deployment by repository, environment and revision, the testing automation a
suite run by repository, suite and revision), so a push re-sent with a new delivery id requests
and runs nothing again.

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
from ..errors import TransientError
from ..identities import Requester
from ..registry import Dispatched, dispatch
from .parsing import validated
from .records import EventLog, EventStatus, Handled

if TYPE_CHECKING:
    from ..app import App

SOURCE = "webhooks"
HANDLED_EVENTS = ("push", "ping")


class _Lenient(BaseModel):
    # GitHub payloads carry hundreds of fields; only the ones used here are validated.
    model_config = ConfigDict(extra="ignore", defer_build=True)


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
    if not app.registry.handlers(EventKind.push):
        return events.ignore(SOURCE, delivery_id, kind, "no registered automation handles pushes", payload)
    ctx = EventContext(
        config=app.config, store=app.store, clock=app.clock, ids=app.ids, source_event=delivery_id
    )
    done = dispatch(app.registry, app.runner, EventKind.push, push, ctx)
    return _settle(events, delivery_id, kind, payload, done)


def _settle(
    events: EventLog, delivery_id: str, kind: str, payload: dict[str, Any], done: list[Dispatched]
) -> Handled:
    """One event record for the delivery, saying what each handler did (``handlers``).

    A handler that failed transiently leaves no record, so that a redelivery asks every handler
    again (each one deduplicates on what the push asks for). When no handler accepted the push,
    the first failure is raised as it is (a push every handler refused is a bad request)."""
    transient = next((d.error for d in done if d.transient), None)
    if transient is not None:
        acted = ", ".join(f"{d.name}: {d.status}" for d in done)
        raise TransientError(
            f"push {delivery_id} not fully handled ({acted}); redeliver it: {transient}"
        ) from transient
    statuses = [d.status for d in done]
    if "accepted" not in statuses:
        failed = next((d.error for d in done if d.error is not None), None)
        if failed is not None:
            raise failed
    for item in done:
        if item.outcome is not None:
            payload = {**payload, **item.outcome.payload}
    payload["handlers"] = {d.name: d.describe() for d in done}
    extra: dict[str, Any] = {}
    for item in done:
        if item.outcome is not None:
            extra.update(item.outcome.extra)
    if len(done) == 1:
        reason = done[0].reason
    else:
        reason = "; ".join(f"{d.name}: {d.reason}" for d in done)
    runs = [run for d in done for run in d.runs]
    if "accepted" in statuses:
        status = EventStatus.accepted
    elif "duplicate" in statuses:
        status = EventStatus.duplicate
    else:
        return events.ignore(SOURCE, delivery_id, kind, reason, payload)
    record = events.save(
        SOURCE, delivery_id, kind, status, reason=reason, run_ids=[r.id for r in runs], payload=payload
    )
    return Handled(status, record, runs, extra=extra)
