"""One approval model for everything that waits for a person: runs and plugins' own subjects.

A run whose actions wait for approval and a deployment waiting for its approval are both
*pending subjects*: something of a ``kind`` with an ``id``, requested by someone
(:class:`~orchestra.identities.Requester`) for an environment, in a state that accepts some
decisions, possibly until a deadline. :func:`decide` is the one rule for all of them:

- an identity is required;
- the subject must accept the decision (runs: approve, reject; deployments also cancel) in its
  current state;
- approving: never the requester under any identity, and one of the environment's ``approvers``
  when it lists them; rejecting or cancelling: the requester (withdrawing) or someone who may
  approve there (see :mod:`orchestra.identities`);
- approving after the deadline expires the subject (the caller says how) and is refused.

What is decided is recorded as a :class:`~orchestra.models.Decision` of the same shape for every
kind. ``orchestra approve|reject ID`` and ``POST /approvals/{id}`` reach runs through the runner
and other subjects through the plugins that declare them (``Automation.approvable``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from .errors import ApprovalRefused, IllegalTransition, InputError
from .identities import Requester, check_approver, check_decliner, normalise
from .models import Decision, DecisionKind, Run, Timestamp, format_timestamp

if TYPE_CHECKING:
    from .config import Config

RUN = "run"
PAST = {DecisionKind.approve: "approved", DecisionKind.reject: "rejected", DecisionKind.cancel: "cancelled"}


class Pending(BaseModel):
    """A subject as the approval rule sees it."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field(description="run, deployment, …")
    id: str
    environment: str
    state: str = Field(description="its current state, for messages")
    requester: Requester
    accepts: Mapping[DecisionKind, tuple[str, ...]] = Field(
        description="each decision the subject takes, with the states it is taken in"
    )
    wording: Mapping[DecisionKind, str] = Field(
        default_factory=dict,
        description="how messages name the subjects that take a decision (default: '<states> <kind>s')",
    )
    expires_at: Timestamp | None = Field(None, description="approving is refused from then on")
    field: str = Field("id", description="the field errors about the subject name")

    @property
    def subject(self) -> str:
        return f"{self.kind} {self.id}"


class DecisionRequest(BaseModel):
    """A person's decision as asked for: by whom, what, with which comment or reason."""

    model_config = ConfigDict(extra="forbid")

    decision: DecisionKind
    identity: str
    comment: str | None = None


class Decided(BaseModel):
    """A decision carried out: what was recorded and the subject as it is now."""

    model_config = ConfigDict(extra="forbid")

    decision: Decision
    status: str = Field(description="the subject's state after the decision")
    record: dict[str, Any] = Field(description="the subject as recorded (JSON-ready)")
    run: Run | None = Field(None, description="the run, when the subject is one")
    failed: bool = Field(False, description="what the decision started failed (a run rolled back)")

    @property
    def kind(self) -> str:
        return self.decision.subject_kind


def decide(
    pending: Pending,
    request: DecisionRequest,
    config: Config,
    now: dt.datetime,
    *,
    on_expired: Callable[[], object] | None = None,
) -> Decision:
    """The decision ``request`` asks for on ``pending``, if its identity may take it now.

    Raises ApprovalRefused (field ``approver``) for the wrong person or an expired approval (after
    ``on_expired`` recorded the expiry), IllegalTransition when the subject's state does not take
    the decision, InputError (field ``decision``) when the subject never takes it."""
    kind, identity = request.decision, request.identity
    if not normalise(identity):
        raise ApprovalRefused("an approver identity is required", where="approver")
    states = pending.accepts.get(kind)
    if states is None:
        accepted = ", ".join(k.value for k in DecisionKind if k in pending.accepts)
        raise InputError(
            f"a {pending.kind} cannot be {PAST[kind]}; accepted decisions for {pending.subject}: {accepted}",
            where="decision",
        )
    if kind == DecisionKind.approve:
        check_approver(identity, pending.requester, pending.environment, config, subject=pending.subject)
    else:
        check_decliner(
            identity, pending.requester, pending.environment, config, subject=pending.subject, verb=kind.value
        )
    if pending.state not in states:
        which = pending.wording.get(kind) or f"{' or '.join(states)} {pending.kind}s"
        raise IllegalTransition(
            f"{pending.subject} is {pending.state}; only {which} can be {PAST[kind]}", where=pending.field
        )
    if kind == DecisionKind.approve and pending.expires_at is not None and now >= pending.expires_at:
        if on_expired is not None:
            on_expired()
        raise ApprovalRefused(
            f"{pending.subject} expired: its approval window ended at "
            f"{format_timestamp(pending.expires_at)}; it can no longer be approved",
            where=pending.field,
        )
    return Decision(
        subject_kind=pending.kind,
        subject_id=pending.id,
        decision=kind,
        by=identity.strip(),
        at=now,
        comment=request.comment,
    )
