from __future__ import annotations

import pytest
from orchestra.config import EnvironmentConfig
from orchestra.gates import Verdict, decide
from orchestra.models import Action, Risk

PRODUCTION = EnvironmentConfig(protected=True, approval_required_risk=Risk.high)
STAGING = EnvironmentConfig(approval_required_risk=Risk.medium)


def action(risk: str, approved_by: str | None = None) -> Action:
    return Action(id="a", description="change", risk=Risk(risk), kind="k", approved_by=approved_by)


@pytest.mark.parametrize(
    ("level", "risk", "expected"),
    [
        (0, "low", Verdict.skip),
        (1, "low", Verdict.apply),
        (1, "medium", Verdict.skip),
        (2, "medium", Verdict.apply),
        (2, "high", Verdict.skip),
        (3, "high", Verdict.apply),
    ],
)
def test_levels_in_an_unprotected_environment(level, risk, expected):
    assert decide(action(risk), level, "development", EnvironmentConfig()).verdict == expected


def test_protected_environment_holds_high_risk_even_at_level_three():
    decision = decide(action("high"), 3, "production", PRODUCTION)
    assert decision.verdict == Verdict.await_approval and "production" in decision.reason


def test_environment_can_hold_lower_risks_for_approval():
    assert decide(action("medium"), 2, "staging", STAGING).verdict == Verdict.await_approval
    assert decide(action("low"), 2, "staging", STAGING).verdict == Verdict.apply


def test_an_approved_action_applies_at_any_level_above_zero_without_asking_again():
    approved = action("high", approved_by="user:bob")
    decision = decide(approved, 1, "production", PRODUCTION)
    assert decision.verdict == Verdict.apply and "user:bob" in decision.reason
    assert decide(approved, 0, "production", PRODUCTION).verdict == Verdict.skip
