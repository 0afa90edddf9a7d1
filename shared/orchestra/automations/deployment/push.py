"""A verified GitHub push -> a deployment request (the deployment automation's handling of the
``push`` event kind; the webhook receiver parses, verifies and records the event).

A push to a branch becomes a deployment request for the environment the branch maps to
(``automations.deployment.settings``: main -> production, develop -> staging, other branches ->
development by default). Tag pushes, branch deletions and unmapped branches do not deploy: the
event is recorded as ignored with the reason. What a push deploys keys the deployment —
(repository, environment, revision) — so a revision already requested for an environment is a
duplicate whatever the delivery id (see :mod:`.requests`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...automation import EventContext, EventOutcome
from .requests import BRANCH_PREFIX, environment_for_ref, submit_request

if TYPE_CHECKING:
    from ...events.github import PushEvent

TAG_PREFIX = "refs/tags/"


def why_not_deployed(push: PushEvent, environment: str | None, task: str) -> str | None:
    if push.deleted:
        what = "tag" if push.ref.startswith(TAG_PREFIX) else "branch"
        return f"{what} deletion ({push.ref}) does not deploy"
    if push.ref.startswith(TAG_PREFIX):
        return f"tag push ({push.ref}) does not deploy"
    if not push.ref.startswith(BRANCH_PREFIX):
        return f"{push.ref} is not a branch; only branch pushes deploy"
    if environment is None:
        return f"branch {push.ref[len(BRANCH_PREFIX) :]} maps to no environment (automations.{task}.settings)"
    return None


def handle_push(task: str, push: PushEvent, ctx: EventContext) -> EventOutcome:
    environment = None
    if not push.deleted and push.ref.startswith(BRANCH_PREFIX):
        environment = environment_for_ref(ctx.config, push.ref)
    reason = why_not_deployed(push, environment, task)
    if reason or environment is None:
        return EventOutcome(status="ignored", reason=reason or "no environment")
    requester = push.requester()
    requested = submit_request(
        ctx.store,
        ctx.clock,
        ctx.ids,
        environment=environment,
        ref=push.ref,
        revision=push.after,
        repository=push.repository.full_name,
        requested_by=requester.display,
        requester_identities=requester.identities,
        source_event=ctx.source_event,
        push=True,
        before=push.before,
        committed_at=push.committed_at(),
    )
    deployment = requested.deployment
    payload = {"deployment_id": deployment.id, "environment": environment}
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
        return EventOutcome(
            status="duplicate",
            reason=(
                f"revision {push.after[:12]} was already requested for {environment}: deployment "
                f"{deployment.id} ({deployment.state}, delivery {deployment.source_event}); "
                "nothing requested"
            ),
            payload=payload,
            extra=described,
        )
    reason = f"deployment {deployment.id} requested for {environment} ({push.ref} @ {push.after[:12]})"
    if requested.superseded:
        reason += "; supersedes " + ", ".join(d.id for d in requested.superseded)
    if requested.note:
        reason += f"; {requested.note}"
    return EventOutcome(status="accepted", reason=reason, payload=payload, extra=described)
