"""Human decisions on one deployment: approve, reject, cancel.

Approval is per deployment (per revision): the approver must be a different person from anyone
who pushed or requested it — every identity the request carries (a push: the pusher's name and
e-mail, the sender's login), compared as people through the configuration's ``identities``
(see :mod:`orchestra.identities`) — and, when the environment lists ``approvers``, one of them.
Rejecting or cancelling is for the requester (withdrawing) or someone who may approve.

These are the rules of :func:`orchestra.approvals.decide`, the one every approval goes through
(runs too); a deployment's decisions are recorded in ``decisions`` as the same
:class:`~orchestra.models.Decision` a run records.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from ...approvals import Decided, DecisionRequest, Pending, decide
from ...identities import Requester, may_approve, same_person
from ...models import Decision, DecisionKind
from .state import (
    DEPLOYMENT,
    PENDING,
    Deployment,
    DeploymentState,
    find_deployment,
    get_deployment,
    transition,
)

if TYPE_CHECKING:
    from ...clock import Clock
    from ...config import Config
    from ...store.base import StateStore
    from .settings import DeploymentSettings

S = DeploymentState
POLICY_ACTOR = "automation:deployment"
UNDECIDED = (S.requested.value, S.awaiting_approval.value)
PENDING_STATES = tuple(s.value for s in S if s in PENDING)
# The state each decision moves a deployment to.
OUTCOME = {
    DecisionKind.approve: S.approved,
    DecisionKind.reject: S.rejected,
    DecisionKind.cancel: S.cancelled,
}


def requester(deployment: Deployment) -> Requester:
    return Requester.of(deployment.requested_by, *deployment.requesters)


def approved_by_someone_else(deployment: Deployment, config: Config) -> bool:
    """Whether the recorded approval still stands as four eyes under the current configuration:
    a person other than every requester identity, allowed to approve in the environment."""
    approver = deployment.approved_by
    return (
        approver is not None
        and not same_person(requester(deployment).all(), approver, config)
        and may_approve(approver, deployment.environment, config)
    )


def approval_deadline(deployment: Deployment, settings: DeploymentSettings) -> dt.datetime:
    ttl = settings.policy(deployment.environment).approval_ttl_hours
    return deployment.created_at + dt.timedelta(hours=ttl)


def expired(deployment: Deployment, settings: DeploymentSettings, now: dt.datetime) -> bool:
    return now >= approval_deadline(deployment, settings)


def pending(deployment: Deployment, settings: DeploymentSettings | None) -> Pending:
    """A deployment as the approval rule sees it: approved or rejected until a person decided it
    (within the environment's ``approval_ttl_hours``), cancelled until it starts deploying.
    Without ``settings`` no approval deadline is known (enough to reject or cancel)."""
    return Pending(
        kind=DEPLOYMENT,
        id=deployment.id,
        environment=deployment.environment,
        state=deployment.state.value,
        requester=requester(deployment),
        accepts={
            DecisionKind.approve: UNDECIDED,
            DecisionKind.reject: UNDECIDED,
            DecisionKind.cancel: PENDING_STATES,
        },
        wording={
            DecisionKind.reject: "requested or awaiting_approval deployments (use cancel for approved ones)",
            DecisionKind.cancel: f"pending deployments ({', '.join(PENDING_STATES)})",
        },
        expires_at=approval_deadline(deployment, settings) if settings else None,
        field="deployment",
    )


def require_decision(
    store: StateStore, clock: Clock, deployment: Deployment, settings: DeploymentSettings
) -> Deployment:
    """``requested`` -> ``awaiting_approval`` or ``approved`` as the environment's policy says."""
    if deployment.state != S.requested:
        return deployment
    policy = settings.policy(deployment.environment)
    if policy.requires_approval:
        return transition(
            store,
            clock,
            deployment,
            S.awaiting_approval,
            actor=POLICY_ACTOR,
            reason=f"{deployment.environment} requires approval by someone other than {deployment.requested_by}",
        )
    return transition(
        store,
        clock,
        deployment,
        S.approved,
        actor=POLICY_ACTOR,
        reason=f"{deployment.environment} requires no approval",
    )


def decide_deployment(
    store: StateStore,
    clock: Clock,
    settings: DeploymentSettings | None,
    deployment: Deployment,
    request: DecisionRequest,
    *,
    config: Config,
) -> Deployment:
    """Take ``request`` on ``deployment`` through the one approval rule and record it.
    ``settings`` (the environments' policies) are needed to approve, not to reject or cancel."""
    if settings is None:
        if request.decision == DecisionKind.approve:
            from .requests import deployment_settings

            settings = deployment_settings(config)
        else:
            return _record(
                store, clock, deployment, decide(pending(deployment, None), request, config, clock.now())
            )

    def expire() -> None:
        ttl = settings.policy(deployment.environment).approval_ttl_hours
        transition(
            store, clock, deployment, S.expired, actor=POLICY_ACTOR, reason=f"not approved within {ttl:g}h"
        )

    decision = decide(pending(deployment, settings), request, config, clock.now(), on_expired=expire)
    if (
        decision.decision == DecisionKind.approve
        and deployment.state == S.requested
        and settings.policy(deployment.environment).requires_approval
    ):
        deployment = require_decision(store, clock, deployment, settings)
    return _record(store, clock, deployment, decision)


def _record(store: StateStore, clock: Clock, deployment: Deployment, decision: Decision) -> Deployment:
    return transition(
        store,
        clock,
        deployment,
        OUTCOME[decision.decision],
        actor=decision.by,
        reason=decision.describe(),
        changes={"decisions": [*deployment.decisions, decision]},
    )


def decided(
    store: StateStore,
    clock: Clock,
    settings: DeploymentSettings,
    deployment_id: str,
    request: DecisionRequest,
    *,
    config: Config,
) -> Decided | None:
    """``orchestra approve|reject DEP_ID`` and ``POST /approvals/DEP_ID``: None when no
    deployment has that id."""
    deployment = find_deployment(store, deployment_id)
    if deployment is None:
        return None
    after = decide_deployment(store, clock, settings, deployment, request, config=config)
    return Decided(
        decision=after.decisions[-1], status=after.state.value, record=after.model_dump(mode="json")
    )


def _decide_id(
    store: StateStore,
    clock: Clock,
    settings: DeploymentSettings | None,
    deployment_id: str,
    request: DecisionRequest,
    config: Config,
) -> Deployment:
    deployment = get_deployment(store, deployment_id)
    return decide_deployment(store, clock, settings, deployment, request, config=config)


def approve(
    store: StateStore,
    clock: Clock,
    settings: DeploymentSettings,
    deployment_id: str,
    identity: str,
    comment: str | None = None,
    *,
    config: Config,
) -> Deployment:
    request = DecisionRequest(decision=DecisionKind.approve, identity=identity, comment=comment)
    return _decide_id(store, clock, settings, deployment_id, request, config)


def _decline(
    kind: DecisionKind,
    store: StateStore,
    clock: Clock,
    deployment_id: str,
    identity: str,
    reason: str | None,
    config: Config,
) -> Deployment:
    request = DecisionRequest(decision=kind, identity=identity, comment=reason)
    return _decide_id(store, clock, None, deployment_id, request, config)


def reject(
    store: StateStore,
    clock: Clock,
    deployment_id: str,
    identity: str,
    reason: str | None = None,
    *,
    config: Config,
) -> Deployment:
    return _decline(DecisionKind.reject, store, clock, deployment_id, identity, reason, config)


def cancel(
    store: StateStore,
    clock: Clock,
    deployment_id: str,
    identity: str,
    reason: str | None = None,
    *,
    config: Config,
) -> Deployment:
    return _decline(DecisionKind.cancel, store, clock, deployment_id, identity, reason, config)
