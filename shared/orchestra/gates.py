"""Automation levels and approval gates.

Level 0 applies nothing, 1 low-risk actions, 2 low and medium, 3 everything. Independently of
the level, protected environments (production) always hold high-risk actions for approval, and
an environment may hold lower risks too (``approval_required_risk``).

An action that a person other than the requester already approved (``approved_by``, e.g. a
deployment approved through `orchestra deployments approve`) is no longer the automation acting
on its own: it applies at any level above 0 without asking a second time.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .config import EnvironmentConfig
from .models import RISK_ORDER, Action, Risk

LEVEL_MAX_RISK: dict[int, Risk | None] = {0: None, 1: Risk.low, 2: Risk.medium, 3: Risk.high}


class Verdict(StrEnum):
    apply = "apply"
    skip = "skip"
    await_approval = "await_approval"


@dataclass(frozen=True)
class GateDecision:
    verdict: Verdict
    reason: str


def decide(action: Action, level: int, environment_name: str, environment: EnvironmentConfig) -> GateDecision:
    allowed = LEVEL_MAX_RISK[level]
    if allowed is None:
        return GateDecision(Verdict.skip, "automation level 0 only analyzes")
    if action.approved_by:
        return GateDecision(Verdict.apply, f"{action.risk} risk, approved by {action.approved_by}")
    if RISK_ORDER[action.risk] > RISK_ORDER[allowed]:
        return GateDecision(
            Verdict.skip,
            f"{action.risk} risk needs automation level {RISK_ORDER[action.risk]} (run has {level})",
        )
    if environment.protected and action.risk == Risk.high:
        return GateDecision(
            Verdict.await_approval, f"high-risk action in protected environment {environment_name}"
        )
    threshold = environment.approval_required_risk
    if threshold is not None and RISK_ORDER[action.risk] >= RISK_ORDER[threshold]:
        return GateDecision(
            Verdict.await_approval, f"{action.risk} risk needs approval in {environment_name}"
        )
    return GateDecision(Verdict.apply, f"allowed at level {level}")
