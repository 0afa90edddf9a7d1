"""The deployment record and its state machine.

A deployment is a document in the ``deployments`` collection. Every change goes through
:func:`transition`, which refuses illegal moves, appends who/what caused the move and when, and
writes with compare-and-set on ``version`` so two processes can never both move the same
deployment (e.g. two approvers, or an approval racing a supersede).
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, computed_field, model_validator

from ...announcements import announce_deployment_changed
from ...errors import IllegalTransition, NotFound
from ...models import Decision, DecisionKind, Timestamp

if TYPE_CHECKING:
    from ...clock import Clock
    from ...store.base import StateStore

DEPLOYMENTS = "deployments"
DEPLOYMENT = "deployment"
"""The subject kind of a deployment's decisions (``orchestra approve DEP_ID``)."""


class DeploymentState(StrEnum):
    requested = "requested"
    awaiting_approval = "awaiting_approval"
    approved = "approved"
    waiting_for_window = "waiting_for_window"
    deploying = "deploying"
    verifying = "verifying"
    succeeded = "succeeded"
    failed = "failed"
    rolled_back = "rolled_back"
    rejected = "rejected"
    expired = "expired"
    superseded = "superseded"
    cancelled = "cancelled"


S = DeploymentState

ALLOWED: dict[DeploymentState, frozenset[DeploymentState]] = {
    S.requested: frozenset(
        {S.awaiting_approval, S.approved, S.rejected, S.superseded, S.cancelled, S.expired}
    ),
    S.awaiting_approval: frozenset({S.approved, S.rejected, S.superseded, S.cancelled, S.expired}),
    S.approved: frozenset({S.waiting_for_window, S.deploying, S.superseded, S.cancelled, S.expired}),
    S.waiting_for_window: frozenset({S.deploying, S.superseded, S.cancelled, S.expired}),
    S.deploying: frozenset({S.verifying, S.failed}),
    S.verifying: frozenset({S.succeeded, S.failed}),
    S.failed: frozenset({S.rolled_back}),
    S.succeeded: frozenset(),
    S.rolled_back: frozenset(),
    S.rejected: frozenset(),
    S.expired: frozenset(),
    S.superseded: frozenset(),
    S.cancelled: frozenset(),
}

# Not yet started: can still be approved, superseded, cancelled or expired.
PENDING = frozenset({S.requested, S.awaiting_approval, S.approved, S.waiting_for_window})
# A deployer may be touching the environment.
IN_PROGRESS = frozenset({S.deploying, S.verifying, S.failed})
TERMINAL = frozenset(s for s, nxt in ALLOWED.items() if not nxt)


class Transition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    from_state: DeploymentState | None
    to_state: DeploymentState
    actor: str = Field(description="who or what caused it: user:alice, github:bob, automation:deployment")
    at: Timestamp
    reason: str | None = None


class Deployment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    environment: str
    ref: str | None = Field(description="git ref (refs/heads/...) or None for a manual revision")
    revision: str = Field(description="commit SHA (or the revision a manual request names)")
    repository: str
    requested_by: str = Field(description="who asked, for display: github:<pusher>, user:alice, …")
    requester_identities: list[str] = Field(
        default_factory=list,
        description="every identity of the requester (a push: pusher name and e-mail, sender login); "
        "none of them may approve it",
    )
    source_event: str | None = None
    before: str | None = Field(None, description="a push: the ref's previous head (its 'before')")
    committed_at: Timestamp | None = Field(None, description="a push: its head commit's timestamp")
    state: DeploymentState = S.requested
    version: int = Field(0, description="compare-and-set counter; bumped by every write")
    created_at: Timestamp
    updated_at: Timestamp
    decisions: list[Decision] = Field(
        default_factory=list, description="people's decisions on it (approve, reject, cancel), in order"
    )
    superseded_by: str | None = None
    run_id: str | None = Field(None, description="the run that deployed it")
    deployed: dict[str, Any] = Field(
        default_factory=dict, description="what the deployer reports (revision name, URL, output tail)"
    )
    last_known_good: dict[str, Any] | None = Field(
        None, description="what to go back to: the previous good deployment of this environment"
    )
    verification: dict[str, Any] = Field(default_factory=dict)
    rolled_back_to: dict[str, Any] | None = None
    blocked: str | None = Field(
        None, description="why it cannot go out as it stands (a required suite failed on its revision)"
    )
    history: list[Transition] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _stored_approver(cls, data: Any) -> Any:
        """``approved_by`` is derived from ``decisions``; records written before decisions were
        kept carry only the approver: read it as their approval, dated by the history."""
        if not isinstance(data, dict) or "approved_by" not in data:
            return data
        data = dict(data)
        approver = data.pop("approved_by")
        if approver and not data.get("decisions"):
            at = next(
                (
                    t.get("at")
                    for t in data.get("history") or []
                    if isinstance(t, dict) and t.get("to_state") == S.approved and t.get("actor") == approver
                ),
                data.get("updated_at"),
            )
            data["decisions"] = [
                {
                    "subject_kind": DEPLOYMENT,
                    "subject_id": data.get("id"),
                    "decision": DecisionKind.approve.value,
                    "by": approver,
                    "at": at,
                }
            ]
        return data

    @computed_field  # type: ignore[prop-decorator]
    @property
    def approved_by(self) -> str | None:
        """Who approved it (the latest approval), or None."""
        approvals = [d for d in self.decisions if d.decision == DecisionKind.approve]
        return approvals[-1].by if approvals else None

    @property
    def requesters(self) -> list[str]:
        """Identities that may not approve this deployment (records from before
        ``requester_identities`` existed only have ``requested_by``)."""
        return self.requester_identities or [self.requested_by]

    @property
    def branch(self) -> str | None:
        if self.ref and self.ref.startswith("refs/heads/"):
            return self.ref[len("refs/heads/") :]
        return None


def _announce(deployment: Deployment, from_state: DeploymentState | None) -> None:
    announce_deployment_changed(
        deployment.id,
        environment=deployment.environment,
        revision=deployment.revision,
        from_state=from_state.value if from_state else None,
        to_state=deployment.state.value,
        service=str(deployment.deployed.get("service") or deployment.repository),
    )


def save_new(store: StateStore, deployment: Deployment) -> bool:
    created = store.create(DEPLOYMENTS, deployment.id, deployment.model_dump(mode="json"))
    if created:
        _announce(deployment, None)
    return created


def get_deployment(store: StateStore, deployment_id: str) -> Deployment:
    doc = store.get(DEPLOYMENTS, deployment_id)
    if doc is None:
        raise NotFound(f"no deployment {deployment_id!r}", where="deployment")
    return Deployment.model_validate(doc)


def find_deployment(store: StateStore, deployment_id: str) -> Deployment | None:
    doc = store.get(DEPLOYMENTS, deployment_id)
    return Deployment.model_validate(doc) if doc else None


def list_deployments(
    store: StateStore,
    *,
    environment: str | None = None,
    state: DeploymentState | str | None = None,
    limit: int | None = 50,
    oldest_first: bool = False,
) -> list[Deployment]:
    where: list[Any] = []
    if environment:
        where.append(("environment", "==", environment))
    if state:
        where.append(("state", "==", str(state)))
    docs = store.query(
        DEPLOYMENTS, where=where, order_by="created_at", descending=not oldest_first, limit=limit
    )
    return [Deployment.model_validate(d) for d in docs]


def pending_deployments(store: StateStore, environment: str | None = None) -> list[Deployment]:
    """Pending deployments, oldest first (one query per state keeps it index-friendly)."""
    found: list[Deployment] = []
    for state in (S.requested, S.awaiting_approval, S.approved, S.waiting_for_window):
        found.extend(list_deployments(store, environment=environment, state=state, limit=None))
    return sorted(found, key=lambda d: (d.created_at, d.id))


def write(store: StateStore, deployment: Deployment, *, expect_version: int) -> bool:
    return store.update_if(
        DEPLOYMENTS, deployment.id, deployment.model_dump(mode="json"), expect={"version": expect_version}
    )


def transition(
    store: StateStore,
    clock: Clock,
    deployment: Deployment,
    to_state: DeploymentState,
    *,
    actor: str,
    reason: str | None = None,
    changes: dict[str, Any] | None = None,
) -> Deployment:
    """Move ``deployment`` to ``to_state`` (compare-and-set on ``version``).

    Raises IllegalTransition when the move is not allowed from the stored state, including when
    another process moved the deployment first (the error names the state it is in now).
    """
    if to_state not in ALLOWED[deployment.state]:
        raise IllegalTransition(
            f"deployment {deployment.id} is {deployment.state}; it cannot become {to_state} "
            f"(allowed from {deployment.state}: {', '.join(sorted(ALLOWED[deployment.state])) or 'none'})",
            where="deployment",
        )
    now = clock.now()
    updated = deployment.model_copy(
        update={
            **(changes or {}),
            "state": to_state,
            "version": deployment.version + 1,
            "updated_at": now,
            "history": [
                *deployment.history,
                Transition(
                    from_state=deployment.state, to_state=to_state, actor=actor, at=now, reason=reason
                ),
            ],
        }
    )
    if not write(store, updated, expect_version=deployment.version):
        current = find_deployment(store, deployment.id)
        where_now = current.state if current else "deleted"
        raise IllegalTransition(
            f"deployment {deployment.id} changed concurrently (now {where_now}); not moved to {to_state}",
            where="deployment",
        )
    _announce(updated, deployment.state)
    return updated


def update_fields(store: StateStore, clock: Clock, deployment: Deployment, **changes: Any) -> Deployment:
    """Record data (deployer output, verification evidence) without changing state."""
    updated = deployment.model_copy(
        update={**changes, "version": deployment.version + 1, "updated_at": clock.now()}
    )
    if not write(store, updated, expect_version=deployment.version):
        raise IllegalTransition(
            f"deployment {deployment.id} changed concurrently; fields not recorded", where="deployment"
        )
    return updated


def age(deployment: Deployment, now: dt.datetime) -> dt.timedelta:
    return now - deployment.created_at
