"""GitHub webhook payloads (``push``, ``ping``) -> deployment requests.

A push to a branch becomes a deployment request for the environment the branch maps to
(``automations.deployment.settings``: main -> production, develop -> staging, other branches ->
development by default). Tag pushes, branch deletions and unmapped branches do not deploy: they
are recorded as ignored with the reason.

Deduplication: the delivery id (``X-GitHub-Delivery``) keys the event record, so a redelivery is
recorded as a duplicate. What a push deploys keys the deployment — (repository, environment,
revision) — so a revision already requested for an environment is a duplicate whatever the
delivery id: a captured push re-sent with a new delivery id is recorded as a duplicate event that
names the existing deployment, and requests nothing. A push supersedes only pending deployments it
follows (its ``before`` chain or a newer head commit; see
``orchestra.automations.deployment.requests``): replaying an old revision never moves an
environment backwards, and a deployment a person approved is never superseded by a push that is
merely requested.

Who pushed: the pusher's name (shown as ``github:<name>``), the pusher's e-mail and the sender's
login are all recorded on the deployment; none of them may approve it (``orchestra.identities``).

Signature verification happens before this module sees anything (``orchestra.api.webhooks``).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from ..identities import Requester
from .parsing import validated
from .records import EventLog, EventStatus, Handled

if TYPE_CHECKING:
    from ..app import App

SOURCE = "webhooks"
HANDLED_EVENTS = ("push", "ping")
TAG_PREFIX = "refs/tags/"
BRANCH_PREFIX = "refs/heads/"


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


def why_not_deployed(push: PushEvent, environment: str | None) -> str | None:
    if push.deleted:
        what = "tag" if push.ref.startswith(TAG_PREFIX) else "branch"
        return f"{what} deletion ({push.ref}) does not deploy"
    if push.ref.startswith(TAG_PREFIX):
        return f"tag push ({push.ref}) does not deploy"
    if not push.ref.startswith(BRANCH_PREFIX):
        return f"{push.ref} is not a branch; only branch pushes deploy"
    if environment is None:
        return (
            f"branch {push.ref[len(BRANCH_PREFIX) :]} maps to no environment "
            "(automations.deployment.settings)"
        )
    return None


def handle_github(app: App, *, event_name: str, delivery_id: str, data: dict[str, Any]) -> Handled:
    """Handle one authenticated delivery. InputError for a payload that is not what it claims."""
    from ..automations.deployment.requests import environment_for_ref, submit_request

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
    environment = None
    if not push.deleted and push.ref.startswith(BRANCH_PREFIX):
        environment = environment_for_ref(app.config, push.ref)
    reason = why_not_deployed(push, environment)
    if reason or environment is None:
        return events.ignore(SOURCE, delivery_id, kind, reason or "no environment", payload)
    requester = push.requester()
    requested = submit_request(
        app.store,
        app.clock,
        app.ids,
        environment=environment,
        ref=push.ref,
        revision=push.after,
        repository=push.repository.full_name,
        requested_by=requester.display,
        requester_identities=requester.identities,
        source_event=delivery_id,
        push=True,
        before=push.before,
        committed_at=push.committed_at(),
    )
    deployment = requested.deployment
    payload = {**payload, "deployment_id": deployment.id, "environment": environment}
    described = {
        "deployment": {
            "id": deployment.id,
            "environment": environment,
            "state": str(deployment.state),
            "revision": deployment.revision,
            "ref": deployment.ref,
        }
    }
    if not requested.created:
        # A replay (or a re-push) of a revision already requested: recorded, nothing requested.
        record = events.save(
            SOURCE,
            delivery_id,
            kind,
            EventStatus.duplicate,
            reason=(
                f"revision {push.after[:12]} was already requested for {environment}: deployment "
                f"{deployment.id} ({deployment.state}, delivery {deployment.source_event}); "
                "nothing requested"
            ),
            payload=payload,
        )
        return Handled(EventStatus.duplicate, record, extra=described)
    reason = f"deployment {deployment.id} requested for {environment} ({push.ref} @ {push.after[:12]})"
    if requested.superseded:
        reason += "; supersedes " + ", ".join(d.id for d in requested.superseded)
    if requested.note:
        reason += f"; {requested.note}"
    record = events.save(SOURCE, delivery_id, kind, EventStatus.accepted, reason=reason, payload=payload)
    return Handled(EventStatus.accepted, record, extra=described)
