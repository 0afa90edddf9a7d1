"""The soak's invariant checker on a SQLite store filled by the real runner and the soak
automation: a clean store passes, and each kind of violation is found and names its event."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from orchestra.app import App, build_app
from orchestra.clock import FakeClock, RandomIds
from orchestra.config import parse_config
from orchestra.models import DeadLetter, Mode, RunStatus, run_id_for
from orchestra.registry import Registry
from orchestra.runner import RunRequest
from orchestra.store.sqlite import SqliteStateStore

from soak.checker import check, ledger_violation
from soak.events import Send, SoakEvent, make_plan
from soak.plugin import append_line, register, target_path
from soak.progress import Progress

CONFIG = """
default_environment: development
environments:
  development: {{automation_level: 3}}
runner:
  retry: {{attempts: 1, initial_seconds: 0.01, max_seconds: 0.01, max_deliveries: 2}}
automations:
  soak:
    settings: {{ledger: {ledger}, targets: {targets}, heal_file: {heal}}}
"""


class Soaked:
    def __init__(self, tmp: Path) -> None:
        self.ledger, self.targets, self.heal = tmp / "ledger.jsonl", tmp / "targets", tmp / "healed"
        text = CONFIG.format(
            ledger=json.dumps(str(self.ledger)),
            targets=json.dumps(str(self.targets)),
            heal=json.dumps(str(self.heal)),
        )
        registry = Registry({})
        register(registry)
        self.clock = FakeClock()
        self.app: App = build_app(
            config=parse_config(text, "soak-test"),
            store=SqliteStateStore(tmp / "state.db"),
            clock=self.clock,
            ids=RandomIds(3),
            registry=registry,
        )
        self.events: list[SoakEvent] = []
        self.sends: list[Send] = []

    def event(self, key: str, kind: str = "scheduled", **fields: object) -> SoakEvent:
        event = SoakEvent(
            index=len(self.events), key=key, kind=kind, environment="development", phase="chaos", **fields
        )
        self.events.append(event)
        self.sends.append(Send(key=key, at=1000.0, channel="orchestra-schedule", message_id=f"m-{key}"))
        return event

    def run(self, key: str, **params: object) -> None:
        request = RunRequest(task="soak", mode=Mode.apply, trigger_id=key, params={"key": key, **params})
        try:
            self.app.runner.submit(request)
        except Exception:  # noqa: BLE001 - a doomed run raises after recording its failure
            pass

    def check(self):
        return check(
            self.app, self.events, self.sends, ledger=self.ledger, targets=self.targets, heal_file=self.heal
        )


@pytest.fixture
def soaked(tmp_path: Path):
    soaked = Soaked(tmp_path)
    try:
        yield soaked
    finally:
        soaked.app.close()


def test_a_store_where_every_event_ran_once_passes(soaked: Soaked):
    for key in ("e1", "e2", "e3"):
        soaked.event(key)
        soaked.run(key)
    report = soaked.check()
    assert report.ok, report.violations
    assert (report.runs, report.lost, report.done_twice, report.stuck) == (3, 0, 0, 0)
    assert report.statuses == {"succeeded": 3}


def test_an_event_with_no_run_is_lost_by_name(soaked: Soaked):
    soaked.event("e1")
    soaked.run("e1")
    soaked.event("e2")
    report = soaked.check()
    assert report.lost == 1
    assert [v.key for v in report.violations] == ["e2"]
    assert "lost" in report.violations[0].what


def test_an_action_applied_twice_is_found(soaked: Soaked):
    soaked.event("e1")
    soaked.run("e1")
    append_line(soaked.ledger, {"op": "apply", "key": "e1", "run": "soak-other", "pid": 1, "at": 0})
    report = soaked.check()
    assert report.done_twice == 1
    assert any(v.key == "e1" and "applied twice" in v.what for v in report.violations)


def test_a_run_left_running_is_stuck(soaked: Soaked):
    soaked.event("e1")
    soaked.run("e1")
    run = soaked.app.store.get_run(run_id_for("soak", "e1"))
    run.status = RunStatus.running
    soaked.app.store.save_run(run)
    report = soaked.check()
    assert report.stuck == 1
    assert any(v.key == "e1" and "left running" in v.what for v in report.violations)


def test_a_rolled_back_run_whose_target_changed_is_found(soaked: Soaked):
    soaked.event("e1")
    soaked.run("e1")
    run = soaked.app.store.get_run(run_id_for("soak", "e1"))
    run.status = RunStatus.rolled_back
    soaked.app.store.save_run(run)
    report = soaked.check()
    assert any(v.key == "e1" and "target changed" in v.what for v in report.violations)
    target_path(soaked.targets, "e1").unlink()
    assert soaked.check().ok


def test_a_breaker_still_open_is_a_violation(soaked: Soaked):
    soaked.event("e1")
    soaked.run("e1")
    soaked.app.store.put("breakers", "b1", {"name": "automation:soak:development", "state": "open"})
    report = soaked.check()
    assert report.breakers_open == 1
    assert [v.key for v in report.violations] == ["automation:soak:development"]


def test_a_dead_letter_replays_once_after_the_dependency_heals(soaked: Soaked):
    doomed = soaked.event("e1", kind="doom")
    soaked.run("e1", doom=True)
    soaked.run("e1", doom=True)
    run = soaked.app.store.get_run(run_id_for("soak", "e1"))
    assert run.status == RunStatus.failed and run.error.transient
    progress = Progress(max_deliveries=2)
    assert progress.check(soaked.app, soaked.events, soaked.sends).waiting == ["e1 (dead letter)"]
    data = json.dumps(
        {"task": "soak", "mode": "apply", "trigger_id": "e1", "params": {"key": "e1", "doom": True}}
    )
    soaked.app.store.add_dead_letter(
        DeadLetter(
            id="dl1",
            message_id="dl1",
            origin="test",
            data=data,
            attributes={"soak_key": doomed.key},
            received_at=soaked.clock.now(),
        )
    )
    assert progress.check(soaked.app, soaked.events, soaked.sends).waiting == []
    report = soaked.check()
    assert report.ok, report.violations
    assert (report.dead_letters, report.replayed) == (1, 1)
    applies = [json.loads(line) for line in soaked.ledger.read_text().splitlines()]
    assert [a["op"] for a in applies] == ["apply"]


def test_a_poison_message_needs_exactly_one_rejection(soaked: Soaked):
    soaked.event("p1", kind="poison", poison="not-json")
    report = soaked.check()
    assert report.lost == 1 and "0 rejection records" in report.violations[0].what


@pytest.mark.parametrize(
    ("entries", "problem"),
    [
        ([("apply", "r1"), ("rollback", "r1"), ("apply", "r2")], None),
        ([("apply", "r1"), ("apply", "r2")], "applied twice"),
        ([("apply", "r1"), ("rollback", "r1"), ("apply", "r1")], "after that run rolled back"),
        ([("rollback", "r1")], None),
    ],
)
def test_ledger_rules(entries, problem):
    found = ledger_violation({"op": op, "run": run} for op, run in entries)
    assert (found is None) if problem is None else (problem in found)


def test_the_plan_is_seeded_and_pairs_every_opening_with_its_closing():
    first = make_plan(5, 400, clean=40, duplicate_rate=0.1, warmup=10)
    assert first.events == make_plan(5, 400, clean=40, duplicate_rate=0.1, warmup=10).events
    assert first.events != make_plan(6, 400, clean=40, duplicate_rate=0.1, warmup=10).events
    assert len(first.events) == 400 and len(first.keys) == 400
    opened = {e.incident for e in first.events if e.kind == "alert_open"}
    closed = [e.incident for e in first.events if e.kind == "alert_close"]
    assert closed and set(closed) <= opened
    assert [e.phase for e in first.events[:10]] == ["warmup"] * 10
    assert {e.kind for e in first.events} >= {
        "scheduled",
        "poison",
        "push",
        "controller",
        "alert_open",
        "doom",
    }


def test_progress_reads_only_the_events_still_open(soaked: Soaked):
    """Each pass reads the documents of the events without their outcome, never the done ones:
    its cost follows what is still open, not the size of the store."""
    for n in range(20):
        soaked.event(f"d{n}")
        soaked.run(f"d{n}")
    soaked.event("late")
    soaked.event("never")
    progress = Progress(max_deliveries=2)
    first = progress.check(soaked.app, soaked.events, soaked.sends)
    assert (first.waiting, first.done) == (["late", "never"], 20)
    soaked.run("late")
    reads = soaked.app.store.ops["read"]
    second = progress.check(soaked.app, soaked.events, soaked.sends)
    assert soaked.app.store.ops["read"] - reads == 2  # the two open runs, not the 20 done
    assert (second.waiting, second.done) == (["never"], 1)
    assert progress.done == {f"d{n}" for n in range(20)} | {"late"}


def test_progress_waits_for_events_sent_before_the_cutoff_only(soaked: Soaked):
    soaked.event("old")
    soaked.event("new")
    soaked.sends[-1] = soaked.sends[-1].model_copy(update={"at": 2000.0})
    progress = Progress(max_deliveries=2)
    assert progress.check(soaked.app, soaked.events, soaked.sends, before=1500.0).waiting == ["old"]
    assert progress.check(soaked.app, soaked.events, soaked.sends).waiting == ["old", "new"]


def test_progress_knows_a_poison_rejection_and_an_ignored_opening(soaked: Soaked):
    from orchestra.events.records import record_id
    from orchestra.models import EventRecord

    soaked.event("p1", kind="poison", poison="not-json")
    soaked.event("a1", kind="alert_open", incident="i1")
    progress = Progress(max_deliveries=2)
    assert progress.check(soaked.app, soaked.events, soaked.sends).waiting == ["p1", "a1"]
    now = soaked.clock.now()
    for source, key, status in (("scheduled", "m-p1", "rejected"), ("alerts", "i1:open", "ignored")):
        soaked.app.store.record_event(
            EventRecord(
                id=record_id(source, key),
                source=source,
                event_id=key,
                kind="test",
                status=status,
                received_at=now,
            )
        )
    assert progress.check(soaked.app, soaked.events, soaked.sends).waiting == []
