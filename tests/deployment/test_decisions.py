"""A deployment's decisions: recorded as the core's Decision, on every state store, and read back
from records written before decisions were kept."""

from __future__ import annotations

import datetime as dt

from orchestra.automations.deployment.approvals import approve, cancel
from orchestra.automations.deployment.state import Deployment, DeploymentState, get_deployment
from orchestra.clock import FakeClock
from orchestra.models import Decision, DecisionKind

from tests.deployment.test_state import CONFIG, SETTINGS, new

S = DeploymentState


def test_every_decision_is_kept_in_order_and_approved_by_follows_them(store):
    clock = FakeClock()
    dep = new(store, clock)
    approved_at = clock.now()
    approve(store, clock, SETTINGS, dep.id, "user:bob", "looks fine", config=CONFIG)
    clock.advance(minutes=5)
    cancel(store, clock, dep.id, "user:carol", "freeze", config=CONFIG)
    stored = get_deployment(store, dep.id)
    assert stored.state == S.cancelled and stored.approved_by == "user:bob"
    assert stored.decisions == [
        Decision(
            subject_kind="deployment",
            subject_id=dep.id,
            decision=DecisionKind.approve,
            by="user:bob",
            at=approved_at,
            comment="looks fine",
        ),
        Decision(
            subject_kind="deployment",
            subject_id=dep.id,
            decision=DecisionKind.cancel,
            by="user:carol",
            at=clock.now(),
            comment="freeze",
        ),
    ]
    assert [t.reason for t in stored.history[-2:]] == [
        "approved by user:bob: looks fine",
        "cancelled by user:carol: freeze",
    ]


def test_a_record_with_only_approved_by_reads_as_its_approval(store):
    clock = FakeClock()
    dep = new(store, clock)
    approve(store, clock, SETTINGS, dep.id, "user:bob", config=CONFIG)
    doc = get_deployment(store, dep.id).model_dump(mode="json")
    approved_at = doc["history"][-1]["at"]
    doc.pop("decisions")
    assert doc["approved_by"] == "user:bob"
    doc["updated_at"] = "2030-01-01T00:00:00.000000Z"  # the history, not the last update, dates it
    former = Deployment.model_validate(doc)
    assert former.approved_by == "user:bob"
    (decision,) = former.decisions
    assert (decision.subject_kind, decision.subject_id, decision.decision) == (
        "deployment",
        dep.id,
        "approve",
    )
    assert decision.at == dt.datetime.fromisoformat(approved_at.replace("Z", "+00:00"))
    # A record written now round-trips unchanged.
    current = get_deployment(store, dep.id)
    assert Deployment.model_validate(current.model_dump(mode="json")) == current


def test_nobody_approved_means_no_approver():
    clock = FakeClock()
    doc = {
        "id": "dep-1",
        "environment": "production",
        "ref": None,
        "revision": "a" * 40,
        "repository": "o/r",
        "requested_by": "user:alice",
        "created_at": clock.now(),
        "updated_at": clock.now(),
        "approved_by": None,
    }
    read = Deployment.model_validate(doc)
    assert read.approved_by is None and read.decisions == []
