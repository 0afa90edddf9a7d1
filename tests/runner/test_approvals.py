"""One approval rule and one entry point: ``orchestra.approvals.decide`` and ``Runner.decide``.

A plugin that declares approvable subjects (here an operator's ``ticket``, no deployment involved)
is reached through the same entry point as runs, with the same four-eyes rule and the same
recorded decision."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any, ClassVar

import pytest
from orchestra.approvals import Decided, DecisionRequest, Pending, decide
from orchestra.automation import Analysis, Automation, DecisionContext, RunContext
from orchestra.clock import FakeClock
from orchestra.config import Config
from orchestra.errors import ApprovalRefused, IllegalTransition, InputError, NotFound
from orchestra.identities import Requester
from orchestra.models import Decision, DecisionKind, Mode, Run, RunStatus, TriggerKind
from orchestra.runner import Runner, RunRequest
from orchestra.store.base import StateStore

from tests.runner.automations import build_registry


class Tickets(Automation):
    """Keeps tickets (in memory) that wait for someone other than their author."""

    name = "tickets"
    approvable = ("ticket",)
    open: ClassVar[dict[str, dict[str, Any]]] = {}

    def analyze(self, ctx: RunContext) -> Analysis:
        return Analysis()

    @classmethod
    def decide(cls, subject_id: str, request: DecisionRequest, ctx: DecisionContext) -> Decided | None:
        ticket = cls.open.get(subject_id)
        if ticket is None:
            return None
        pending = Pending(
            kind="ticket",
            id=subject_id,
            environment="development",
            state=ticket["state"],
            requester=Requester.of(ticket["author"]),
            accepts={DecisionKind.approve: ("open",), DecisionKind.reject: ("open",)},
        )
        decision = decide(pending, request, ctx.config, ctx.clock.now())
        ticket["state"] = "approved" if decision.decision == DecisionKind.approve else "rejected"
        ticket["decision"] = decision.model_dump(mode="json")
        return Decided(decision=decision, status=ticket["state"], record=dict(ticket))


@pytest.fixture
def runner(sqlite_store: StateStore, runner_config: Config, clock: FakeClock) -> Runner:
    registry = build_registry()
    registry.register(Tickets)
    Tickets.open = {"T-1": {"author": "alice", "state": "open"}}
    return Runner(runner_config, sqlite_store, clock=clock, registry=registry, heartbeat_in_background=False)


def waiting_run(runner: Runner, tmp_path: Path, trigger: str = "prod-1") -> Run:
    run = runner.submit(
        RunRequest(
            task="tuner",
            environment="production",
            mode=Mode.apply,
            automation_level=3,
            params={
                "target": str(tmp_path / "service.json"),
                "counter": str(tmp_path / "c.log"),
                "risks": ["high"],
            },
            trigger_kind=TriggerKind.event,
            trigger_id=trigger,
            requested_by="alice",
        )
    ).run
    assert run.status == RunStatus.awaiting_approval, run.reason
    return run


def test_a_plugins_subject_is_decided_through_the_runner(runner: Runner, clock: FakeClock):
    with pytest.raises(ApprovalRefused, match="another identity"):
        runner.decide("T-1", DecisionKind.approve, "alice")
    assert Tickets.open["T-1"]["state"] == "open"
    decided = runner.decide("T-1", DecisionKind.approve, "bob", "fine")
    assert decided.kind == "ticket" and decided.status == "approved" and decided.run is None
    assert decided.decision == Decision(
        subject_kind="ticket",
        subject_id="T-1",
        decision=DecisionKind.approve,
        by="bob",
        at=clock.now(),
        comment="fine",
    )
    with pytest.raises(IllegalTransition, match="ticket T-1 is approved; only open tickets can be rejected"):
        runner.decide("T-1", DecisionKind.reject, "bob")


def test_runs_come_first_and_unknown_ids_name_every_kind(runner: Runner, tmp_path: Path):
    run = waiting_run(runner, tmp_path)
    Tickets.open[run.id] = {"author": "carol", "state": "open"}
    decided = runner.decide(run.id, DecisionKind.reject, "bob", "not now")
    assert decided.kind == "run" and decided.run is not None and decided.status == "skipped"
    assert Tickets.open[run.id]["state"] == "open"
    with pytest.raises(NotFound, match="no run or ticket with id 'T-404'") as caught:
        runner.decide("T-404", DecisionKind.approve, "bob")
    assert caught.value.where == "run_id"


def test_a_run_records_its_decision_for_approve_and_reject(runner: Runner, clock: FakeClock, tmp_path: Path):
    approved = runner.decide(waiting_run(runner, tmp_path, "a").id, DecisionKind.approve, "bob", "ok")
    assert approved.run is not None and approved.run.status == RunStatus.succeeded and not approved.failed
    assert approved.decision.model_dump(exclude={"subject_id", "at"}) == {
        "subject_kind": "run",
        "decision": DecisionKind.approve,
        "by": "bob",
        "comment": "ok",
    }
    rejected_id = waiting_run(runner, tmp_path, "r").id
    rejected = runner.decide(
        rejected_id, DecisionKind.reject, "alice", "withdrawn"
    )  # the requester withdraws
    stored = runner.store.get_run(rejected_id)
    assert stored is not None and stored.decision == rejected.decision
    assert stored.decision.decision == DecisionKind.reject and stored.decision.by == "alice"
    assert stored.status == RunStatus.skipped and stored.reason == "rejected by alice: withdrawn"
    with pytest.raises(InputError, match="a run cannot be cancelled") as caught:
        runner.decide(waiting_run(runner, tmp_path, "c").id, DecisionKind.cancel, "bob")
    assert caught.value.where == "decision"


# ----------------------------------------------------------------------------- the one rule

NOW = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)


def pending(**changes: Any) -> Pending:
    fields: dict[str, Any] = {
        "kind": "thing",
        "id": "x-1",
        "environment": "production",
        "state": "waiting",
        "requester": Requester.of("github:alice", "alice@corp.example"),
        "accepts": {DecisionKind.approve: ("waiting",), DecisionKind.reject: ("waiting",)},
        "expires_at": NOW + dt.timedelta(hours=1),
        "field": "thing_id",
    }
    return Pending(**{**fields, **changes})


def ask(kind: DecisionKind, identity: str, comment: str | None = None) -> DecisionRequest:
    return DecisionRequest(decision=kind, identity=identity, comment=comment)


def test_the_rule_refuses_the_requester_and_blank_identities(runner_config: Config):
    for who in ("ALICE@corp.example", "GitHub:Alice", "  "):
        with pytest.raises(ApprovalRefused) as caught:
            decide(pending(), ask(DecisionKind.approve, who), runner_config, NOW)
        assert caught.value.where == "approver"
    withdrawn = decide(pending(), ask(DecisionKind.reject, " github:alice "), runner_config, NOW)
    assert withdrawn.by == "github:alice" and withdrawn.decision == DecisionKind.reject


def test_the_rule_checks_the_state_then_the_deadline(runner_config: Config):
    with pytest.raises(
        IllegalTransition, match="thing x-1 is done; only waiting things can be approved"
    ) as caught:
        decide(pending(state="done"), ask(DecisionKind.approve, "bob"), runner_config, NOW)
    assert caught.value.where == "thing_id"
    expired: list[str] = []
    with pytest.raises(ApprovalRefused, match="thing x-1 expired") as refused:
        decide(
            pending(),
            ask(DecisionKind.approve, "bob"),
            runner_config,
            NOW + dt.timedelta(hours=1),
            on_expired=lambda: expired.append("x-1"),
        )
    assert expired == ["x-1"] and refused.value.where == "thing_id"
    # Declining is not bound by the approval deadline.
    late = decide(
        pending(), ask(DecisionKind.reject, "bob", "too late"), runner_config, NOW + dt.timedelta(days=1)
    )
    assert late.comment == "too late" and late.describe() == "rejected by bob: too late"


def test_a_decision_is_stored_and_read_back_unchanged():
    decision = Decision(
        subject_kind="deployment", subject_id="dep-1", decision=DecisionKind.cancel, by="bob", at=NOW
    )
    assert Decision.model_validate(json.loads(decision.model_dump_json())) == decision
    assert decision.describe() == "cancelled by bob"


def test_runs_stored_with_the_former_approval_read_as_decisions(runner: Runner, tmp_path: Path):
    run = waiting_run(runner, tmp_path)
    doc = run.model_dump(mode="json")
    doc.pop("decision")
    doc["approval"] = {"run_id": run.id, "approver": "bob", "approved_at": "2026-03-02T12:00:00.000000Z"}
    read = Run.model_validate(doc)
    assert read.decision == Decision(
        subject_kind="run", subject_id=run.id, decision=DecisionKind.approve, by="bob", at=NOW
    )
    assert "approval" not in read.model_dump()
