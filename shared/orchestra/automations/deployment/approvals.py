"""Human decisions on one deployment: approve, reject, cancel.

Approval is per deployment (per revision): the approver must be a different person from anyone
who pushed or requested it — every identity the request carries (a push: the pusher's name and
e-mail, the sender's login), compared as people through the configuration's ``identities``
(see :mod:`orchestra.identities`) — and, when the environment lists ``approvers``, one of them.
Rejecting or cancelling is for the requester (withdrawing) or someone who may approve.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from ...errors import ApprovalRefused, IllegalTransition
from ...identities import Requester, check_approver, check_decliner, may_approve, same_person
from .state import PENDING, Deployment, DeploymentState, get_deployment, transition

if TYPE_CHECKING:
    from ...clock import Clock
    from ...config import Config
    from ...store.base import StateStore
    from .settings import DeploymentSettings

S = DeploymentState
POLICY_ACTOR = "automation:deployment"


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


def expired(deployment: Deployment, settings: DeploymentSettings, now: dt.datetime) -> bool:
    ttl = settings.policy(deployment.environment).approval_ttl_hours
    return now >= deployment.created_at + dt.timedelta(hours=ttl)


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
    deployment = get_deployment(store, deployment_id)
    check_approver(
        identity,
        requester(deployment),
        deployment.environment,
        config,
        subject=f"deployment {deployment_id}",
    )
    if deployment.state not in (S.requested, S.awaiting_approval):
        raise IllegalTransition(
            f"deployment {deployment_id} is {deployment.state}; only requested or awaiting_approval "
            "deployments can be approved",
            where="deployment",
        )
    now = clock.now()
    if expired(deployment, settings, now):
        ttl = settings.policy(deployment.environment).approval_ttl_hours
        transition(
            store, clock, deployment, S.expired, actor=POLICY_ACTOR, reason=f"not approved within {ttl:g}h"
        )
        raise ApprovalRefused(
            f"deployment {deployment_id} expired (not approved within {ttl:g}h)", where="deployment"
        )
    if deployment.state == S.requested and settings.policy(deployment.environment).requires_approval:
        deployment = require_decision(store, clock, deployment, settings)
    reason = f"approved by {identity}" + (f": {comment}" if comment else "")
    return transition(
        store, clock, deployment, S.approved, actor=identity, reason=reason, changes={"approved_by": identity}
    )


def reject(
    store: StateStore,
    clock: Clock,
    deployment_id: str,
    identity: str,
    reason: str | None = None,
    *,
    config: Config,
) -> Deployment:
    deployment = get_deployment(store, deployment_id)
    check_decliner(
        identity,
        requester(deployment),
        deployment.environment,
        config,
        subject=f"deployment {deployment_id}",
        verb="reject",
    )
    if deployment.state not in (S.requested, S.awaiting_approval):
        raise IllegalTransition(
            f"deployment {deployment_id} is {deployment.state}; only requested or awaiting_approval "
            "deployments can be rejected (use cancel for approved ones)",
            where="deployment",
        )
    text = f"rejected by {identity}" + (f": {reason}" if reason else "")
    return transition(store, clock, deployment, S.rejected, actor=identity, reason=text)


def cancel(
    store: StateStore,
    clock: Clock,
    deployment_id: str,
    identity: str,
    reason: str | None = None,
    *,
    config: Config,
) -> Deployment:
    deployment = get_deployment(store, deployment_id)
    check_decliner(
        identity,
        requester(deployment),
        deployment.environment,
        config,
        subject=f"deployment {deployment_id}",
        verb="cancel",
    )
    if deployment.state not in PENDING:
        raise IllegalTransition(
            f"deployment {deployment_id} is {deployment.state}; only pending deployments "
            f"({', '.join(sorted(PENDING))}) can be cancelled",
            where="deployment",
        )
    text = f"cancelled by {identity}" + (f": {reason}" if reason else "")
    return transition(store, clock, deployment, S.cancelled, actor=identity, reason=text)
