"""The deployment state machine and approvals, on every state store (SQLite and Firestore)."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from orchestra.automations.deployment.approvals import approve, cancel, reject
from orchestra.automations.deployment.requests import request_deployment
from orchestra.automations.deployment.settings import DeploymentSettings, EnvironmentPolicy
from orchestra.automations.deployment.state import (
    ALLOWED,
    TERMINAL,
    DeploymentState,
    get_deployment,
    transition,
)
from orchestra.clock import FakeClock, RandomIds
from orchestra.config import parse_config
from orchestra.errors import ApprovalRefused, IllegalTransition, NotFound

S = DeploymentState
SETTINGS = DeploymentSettings(environments={"production": EnvironmentPolicy(requires_approval=True)})
CONFIG = parse_config(
    """
environments:
  development: {}
  production: {protected: true}
identities:
  github:alice: alice@corp.example
  user:alice: alice@corp.example
""",
    "state-test-config",
)


def new(store, clock, *, env="production", event="delivery-1", by="github:alice", revision="a" * 40):
    return request_deployment(
        store,
        clock,
        RandomIds(1),
        environment=env,
        ref="refs/heads/main",
        revision=revision,
        repository="o/r",
        requested_by=by,
        source_event=event,
    )


def test_every_state_is_reachable_and_terminal_states_are_final():
    reachable = {S.requested}
    frontier = [S.requested]
    while frontier:
        for nxt in ALLOWED[frontier.pop()]:
            if nxt not in reachable:
                reachable.add(nxt)
                frontier.append(nxt)
    assert reachable == set(S)
    assert TERMINAL == {S.succeeded, S.rolled_back, S.rejected, S.expired, S.superseded, S.cancelled}


def test_illegal_transitions_are_refused_and_nothing_is_written(store):
    clock = FakeClock()
    dep = new(store, clock)
    with pytest.raises(IllegalTransition, match="cannot become deploying"):
        transition(store, clock, dep, S.deploying, actor="user:x")
    with pytest.raises(IllegalTransition):
        transition(store, clock, dep, S.succeeded, actor="user:x")
    stored = get_deployment(store, dep.id)
    assert stored.state == S.requested and stored.version == 0 and len(stored.history) == 1


def test_transitions_record_actor_time_and_reason(store):
    clock = FakeClock()
    dep = new(store, clock)
    clock.advance(minutes=3)
    approved = approve(store, clock, SETTINGS, dep.id, "user:bob", "ship it", config=CONFIG)
    history = get_deployment(store, approved.id).history
    assert [(t.from_state, t.to_state, t.actor) for t in history] == [
        (None, S.requested, "github:alice"),
        (S.requested, S.awaiting_approval, "automation:deployment"),
        (S.awaiting_approval, S.approved, "user:bob"),
    ]
    assert history[-1].at == clock.now() and history[-1].reason == "approved by user:bob: ship it"


def test_redelivered_request_is_the_same_deployment(store):
    clock = FakeClock()
    first = new(store, clock, event="delivery-9")
    clock.advance(seconds=30)
    second = new(store, clock, event="delivery-9")
    assert second.id == first.id and second.created_at == first.created_at


def test_a_stale_copy_cannot_overwrite_a_newer_state(store):
    clock = FakeClock()
    dep = new(store, clock)
    reject(store, clock, dep.id, "user:carol", "not this week", config=CONFIG)
    with pytest.raises(IllegalTransition, match="changed concurrently"):
        transition(store, clock, dep, S.approved, actor="user:bob")  # `dep` is the stale copy
    assert get_deployment(store, dep.id).state == S.rejected


def test_two_concurrent_approvals_only_one_wins(store):
    clock = FakeClock()
    dep = new(store, clock)
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def act(approver: str) -> None:
        barrier.wait()
        try:
            approve(store, clock, SETTINGS, dep.id, approver, config=CONFIG)
            outcomes.append(approver)
        except IllegalTransition:
            outcomes.append("refused")

    threads = [threading.Thread(target=act, args=(who,)) for who in ("user:bob", "user:carol")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    final = get_deployment(store, dep.id)
    assert sorted(outcomes).count("refused") == 1
    winner = next(o for o in outcomes if o != "refused")
    assert final.state == S.approved and final.approved_by == winner
    assert [t.to_state for t in final.history].count(S.approved) == 1
    for before, after in zip(final.history, final.history[1:], strict=False):
        assert after.from_state == before.to_state and after.to_state in ALLOWED[before.to_state]
    assert final.version == len(final.history) - 1


def test_approval_rules(store):
    clock = FakeClock()
    dep = new(store, clock, by="github:Alice")
    with pytest.raises(ApprovalRefused, match="linked to github:Alice"):
        approve(store, clock, SETTINGS, dep.id, "user:alice", config=CONFIG)  # mapped to one person
    with pytest.raises(ApprovalRefused, match="someone else"):
        approve(store, clock, SETTINGS, dep.id, "GitHub:ALICE", config=CONFIG)  # logins ignore case
    with pytest.raises(ApprovalRefused):
        approve(store, clock, SETTINGS, dep.id, "", config=CONFIG)
    with pytest.raises(NotFound):
        approve(store, clock, SETTINGS, "dep-missing", "user:bob", config=CONFIG)
    approve(store, clock, SETTINGS, dep.id, "user:bob", config=CONFIG)
    with pytest.raises(IllegalTransition, match="only requested or awaiting_approval"):
        approve(store, clock, SETTINGS, dep.id, "user:carol", config=CONFIG)
    with pytest.raises(IllegalTransition):
        reject(store, clock, dep.id, "user:carol", config=CONFIG)
    assert cancel(store, clock, dep.id, "user:carol", config=CONFIG).state == S.cancelled
    with pytest.raises(IllegalTransition, match="only pending"):
        cancel(store, clock, dep.id, "user:carol", config=CONFIG)


def test_unapproved_requests_expire(store):
    clock = FakeClock()
    dep = new(store, clock)
    clock.advance(hours=72)
    with pytest.raises(ApprovalRefused, match="expired"):
        approve(store, clock, SETTINGS, dep.id, "user:bob", config=CONFIG)
    stored = get_deployment(store, dep.id)
    assert stored.state == S.expired and stored.history[-1].actor == "automation:deployment"
    assert stored.updated_at == dt.datetime(2026, 1, 8, 12, 0, tzinfo=dt.UTC)
