"""A verified GitHub push -> the suites configured for its branch, on the pushed revision.

Each suite whose ``triggers.push`` patterns match the branch gets its own run of the testing
automation (``--param suite=NAME``), keyed on (repository, suite, revision): however often the
push is delivered, and whatever its delivery id, a suite runs once per revision. Tag pushes,
branch deletions and branches no suite is configured for run nothing (the event records why).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ...automation import EventContext, EventOutcome
from ...errors import InputError
from ...models import Mode, TriggerKind
from .plugin import suites_for_branch
from .settings import TestingSettings

if TYPE_CHECKING:
    from ...events.github import PushEvent

BRANCH_PREFIX = "refs/heads/"
_REVISION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._/@+-]{0,254}$")


def trigger_id_for(repository: str, suite: str, revision: str) -> str:
    """The idempotency key of a push's suite run: one run per repository, suite and revision."""
    return f"push:{repository}:{suite}:{revision}"


def handle_push(task: str, push: PushEvent, ctx: EventContext) -> EventOutcome:
    from ...runner import RunRequest

    if push.deleted:
        return EventOutcome(status="ignored", reason=f"deletion of {push.ref} runs no suite")
    if not push.ref.startswith(BRANCH_PREFIX) or push.ref == BRANCH_PREFIX:
        return EventOutcome(
            status="ignored", reason=f"{push.ref} is not a branch; suites run on branch pushes"
        )
    branch = push.ref[len(BRANCH_PREFIX) :]
    settings = ctx.config.settings_for(task, TestingSettings)
    names = suites_for_branch(settings, branch)
    if not names:
        return EventOutcome(
            status="ignored",
            reason=f"no suite runs on pushes to {branch} (automations.{task}.settings.suites.NAME.triggers.push)",
        )
    revision = push.after.strip()
    if not _REVISION.match(revision) or ".." in revision:
        raise InputError(
            f"{revision[:80]!r} is not a revision (letters, digits and . _ / @ + -)", where="after"
        )
    repository = push.repository.full_name
    requester = push.requester().display
    requests = [
        RunRequest(
            task=task,
            mode=Mode.analyze,
            params={"suite": name, "branch": branch, "revision": revision, "trigger": "push"},
            trigger_kind=TriggerKind.webhook,
            trigger_id=trigger_id_for(repository, name, revision),
            requested_by=requester,
            source_event=ctx.source_event,
        )
        for name in names
    ]
    return EventOutcome(
        reason=f"suite(s) {', '.join(names)} on {branch} @ {revision[:12]}",
        requests=requests,
        payload={"suites": names},
        extra={"suites": names},
    )
