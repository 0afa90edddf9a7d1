"""Deferred claims (``Automation.read_only_analysis``), on every state store: a run that changes
nothing is stored once, in its final state, with its trigger's claim and event record; the
exactly-once guarantees hold as they do for claimed runs (duplicates, crashes before and after
the first change, the store going down, lease expiry and recovery, breaker accounting, dead-letter
replay)."""

from __future__ import annotations

import dataclasses
import json
import signal
import subprocess
import threading
from typing import Any

import pytest
from orchestra.app import build_app
from orchestra.breaker import automation_breaker_name, find_breaker
from orchestra.clock import FakeClock, SystemClock
from orchestra.config import Config, parse_config
from orchestra.errors import StoreUnavailable, TransientError
from orchestra.events.dead_letters import replay_dead_letter
from orchestra.models import DeadLetter, Mode, Run, RunPhase, RunStatus, TriggerKind, run_id_for
from orchestra.runner import Claim, ClaimRefused, Runner, RunRequest
from orchestra.store.base import EVENTS, RUNS, StateStore

from tests.runner.automations import Counter
from tests.runner.conftest import RUNNER_CONFIG
from tests.runner.deferred_automations import Died, Reader, deferred_registry, with_record
from tests.runner.worker import crash_after_first_change, spawn_worker, wait_for
from tests.store.spy import record_writes


def config_text(claim_after: float = 2.0) -> str:
    text = RUNNER_CONFIG.replace(
        "lease: {seconds: 1, heartbeat_seconds: 0.3, on_expiry: retry}",
        f"lease: {{seconds: 1, heartbeat_seconds: 0.3, on_expiry: retry, claim_after_seconds: {claim_after}}}",
    )
    assert text != RUNNER_CONFIG
    return text


def config(claim_after: float = 2.0) -> Config:
    return parse_config(config_text(claim_after), "deferred-claim-test")


def runner_for(store: StateStore, clock: Any, owner: str = "owner-a", **kwargs: Any) -> Runner:
    return Runner(
        kwargs.pop("cfg", None) or config(),
        store,
        clock=clock,
        owner=owner,
        registry=deferred_registry(),
        heartbeat_in_background=kwargs.pop("background", False),
    )


def reader(trigger: str, **params: Any) -> RunRequest:
    return RunRequest(
        task="reader", params=params, trigger_kind=TriggerKind.event, trigger_id=trigger, requested_by="alice"
    )


@pytest.fixture(autouse=True)
def _forget_seen() -> None:
    Reader.seen.clear()


def test_a_run_that_changes_nothing_is_stored_once_with_its_claim_and_record(store, monkeypatch):
    clock = FakeClock()
    runner = runner_for(store, clock)
    claim = Claim(EVENTS, "test-messages:m1", {"id": "test-messages:m1", "fingerprint": "f"}, lambda: True)
    commits = record_writes(store, monkeypatch)
    outcome = runner.submit(dataclasses.replace(with_record(reader("m1"), clock), claim=claim))
    assert Reader.seen == [None], "nothing is stored while the run analyses"
    assert outcome.run.status == RunStatus.succeeded and not outcome.duplicate
    # One commit (the breaker is read, not written, on the healthy path).
    assert commits == ["_create_all"]
    stored = store.get_run(run_id_for("reader", "m1"))
    assert stored is not None and stored.status == RunStatus.succeeded and stored.lease is None
    assert stored.attempts == 1 and stored.phase == RunPhase.done
    assert store.get(EVENTS, "test-messages:m1") == claim.data
    assert outcome.record is not None and store.get_event("test:m1") == outcome.record


def test_a_later_delivery_is_a_duplicate_and_changes_nothing(store, tmp_path):
    clock = FakeClock()
    runner = runner_for(store, clock)
    first = runner.submit(with_record(reader("m2"), clock))
    recorded = store.get_event("test:m2")
    clock.advance(5)
    again = runner.submit(with_record(reader("m2"), clock))
    assert again.duplicate and again.run.id == first.run.id and again.record is None
    assert store.get_run(first.run.id) == first.run
    assert store.get_event("test:m2") == recorded, "the duplicate's record overwrote nothing"


def test_concurrent_deliveries_make_one_run(store, tmp_path):
    runners = [runner_for(store, SystemClock(), owner=f"owner-{i}") for i in range(6)]
    outcomes: list[Any] = []
    lock = threading.Lock()

    def deliver(runner: Runner) -> None:
        outcome = runner.submit(reader("m3", sleep=0.05))
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=deliver, args=(r,)) for r in runners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(outcomes) == 6
    assert sum(not o.duplicate for o in outcomes) == 1
    assert {o.run.id for o in outcomes} == {run_id_for("reader", "m3")}
    assert len(store.list_runs(task="reader", limit=None)) == 1


def test_a_claim_another_trigger_holds_refuses_the_run(store):
    runner = runner_for(store, FakeClock())
    assert store.create(EVENTS, "test-messages:m4", {"id": "test-messages:m4", "fingerprint": "other"})
    claim = Claim(
        EVENTS, "test-messages:m4", {"id": "test-messages:m4", "fingerprint": "mine"}, lambda: False
    )
    with pytest.raises(ClaimRefused):
        runner.submit(dataclasses.replace(reader("m4"), claim=claim))
    assert store.get_run(run_id_for("reader", "m4")) is None


def test_dying_before_the_first_change_leaves_nothing_and_the_redelivery_runs(store, tmp_path):
    clock = FakeClock()
    counter = str(tmp_path / "c.log")
    with pytest.raises(Died):
        runner_for(store, clock).submit(reader("m5", counter=counter, die=True))
    assert store.get_run(run_id_for("reader", "m5")) is None
    assert find_breaker(store, automation_breaker_name("reader", "development")) is None
    again = runner_for(store, clock, owner="owner-b").submit(reader("m5", counter=counter))
    assert again.run.status == RunStatus.succeeded and again.run.attempts == 1 and not again.duplicate


def test_a_long_run_is_claimed_and_an_expired_one_is_recovered(store, tmp_path):
    clock = FakeClock()
    counter = str(tmp_path / "c.log")
    # The analysis lasts past claim_after_seconds (2 s), beats, then the process dies.
    with pytest.raises(Died):
        runner_for(store, clock).submit(reader("m6", counter=counter, lasts=3, die=True))
    claimed = Reader.seen[-1]
    assert (
        claimed is not None
        and claimed["status"] == "running"
        and claimed["lease"]["owner"].startswith("owner-a#")
    )
    stale = store.get_run(run_id_for("reader", "m6"))
    assert stale is not None and stale.status == RunStatus.running
    # A redelivery while the lease is live is a duplicate; once it expired, recovery retries.
    assert runner_for(store, clock, owner="owner-b").submit(reader("m6", counter=counter)).duplicate
    clock.advance(2)
    [recovered] = runner_for(store, clock, owner="rescuer").recover()
    assert recovered.id == stale.id and recovered.status == RunStatus.succeeded
    final = store.get_run(stale.id)
    assert final.lease is None and final.attempts == 2


def test_a_short_run_is_not_claimed_before_it_ends(store):
    clock = FakeClock()
    outcome = runner_for(store, clock).submit(reader("m7", lasts=1))
    assert Reader.seen == [None] and outcome.run.status == RunStatus.succeeded


def test_the_store_down_at_the_end_leaves_nothing_and_the_redelivery_runs_at_once(store, monkeypatch):
    clock = FakeClock()
    runner = runner_for(store, clock)
    real = store._create_all

    def down(writes: Any) -> bool:
        raise StoreUnavailable("injected outage")

    monkeypatch.setattr(store, "_create_all", down)
    with pytest.raises(StoreUnavailable):
        runner.submit(reader("m8"))
    assert store.get_run(run_id_for("reader", "m8")) is None
    monkeypatch.setattr(store, "_create_all", real)
    again = runner.submit(reader("m8"))
    assert again.run.status == RunStatus.succeeded and not again.duplicate


def test_a_failure_is_counted_once_by_the_breaker(store):
    clock = FakeClock()
    runner = runner_for(store, clock)
    name = automation_breaker_name("reader", "development")
    failed = runner.submit(reader("m9", permanent_failure=True))
    assert failed.run.status == RunStatus.failed and store.get_run(failed.run.id).status == RunStatus.failed
    assert find_breaker(store, name).failures == 1
    assert runner_for(store, clock, owner="owner-b").submit(reader("m9", permanent_failure=True)).duplicate
    assert find_breaker(store, name).failures == 1, "a duplicate is not counted again"


def test_a_transient_failure_is_recorded_and_its_redelivery_retries(store, tmp_path):
    clock = FakeClock()
    counter = str(tmp_path / "c.log")
    runner = runner_for(store, clock)
    with pytest.raises(TransientError):
        runner.submit(reader("m10", counter=counter, fail_times=3))
    stored = store.get_run(run_id_for("reader", "m10"))
    assert stored.status == RunStatus.failed and stored.error.transient and stored.lease is None
    again = runner.submit(reader("m10", counter=counter, fail_times=3))
    assert again.run.status == RunStatus.succeeded and not again.duplicate


def test_the_first_change_is_made_under_a_claim(store, tmp_path):
    clock = FakeClock()
    target = tmp_path / "service.json"
    request = RunRequest(
        task="reader-tuner",
        mode=Mode.apply,
        automation_level=1,
        params={"target": str(target), "counter": str(tmp_path / "calls.log"), "value": 3},
        trigger_kind=TriggerKind.event,
        trigger_id="m11",
        requested_by="alice",
    )
    seen: list[Run | None] = []
    runner = runner_for(store, clock)
    real_apply = runner.registry.get_class("reader-tuner").apply

    def apply(self: Any, ctx: Any, action: Any) -> Any:
        seen.append(store.get_run(ctx.run.id))
        return real_apply(self, ctx, action)

    runner.registry.get_class("reader-tuner").apply = apply  # type: ignore[method-assign]
    try:
        outcome = runner.submit(request)
    finally:
        runner.registry.get_class("reader-tuner").apply = real_apply  # type: ignore[method-assign]
    [before] = seen
    assert before is not None and before.status == RunStatus.running and before.phase == RunPhase.applying
    assert before.actions[0].rollback == {"previous": None}
    assert outcome.run.status == RunStatus.succeeded and json.loads(target.read_text()) == {"key0": 3}
    assert runner_for(store, clock, owner="owner-b").submit(request).duplicate
    assert Counter(tmp_path / "calls.log").get("apply") == 1


def _spawn(store_url: str, spec: dict[str, Any], claim_after: float) -> subprocess.Popen[bytes]:
    return spawn_worker(store_url, spec, config=config_text(claim_after), registry="deferred")


@pytest.mark.parametrize("claim_after", [60.0, 0.5])
def test_a_killed_process_before_its_first_change(store, tmp_path, claim_after):
    """Killed while analysing: before claim_after_seconds nothing is stored (the redelivery simply
    runs); after it, the heartbeat has claimed the run and recovery takes it over."""
    counter = tmp_path / "c.log"
    run_id = run_id_for("reader", "m12")
    params = {"counter": str(counter), "hang_on_first_call": True}
    proc = _spawn(
        store.url, {"task": "reader", "trigger_id": "m12", "owner": "doomed", "params": params}, claim_after
    )
    try:
        wait_for(lambda: Counter(counter).get("analyze") == 1)
        if claim_after < 1:
            wait_for(lambda: store.get_run(run_id) is not None)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    runner = Runner(config(), store, clock=SystemClock(), owner="rescuer", registry=deferred_registry())
    if claim_after > 1:
        assert store.get_run(run_id) is None
        outcome = runner.submit(reader("m12", counter=str(counter), hang_on_first_call=True))
        assert outcome.run.status == RunStatus.succeeded and outcome.run.attempts == 1
        return
    assert store.get_run(run_id).status == RunStatus.running
    wait_for(lambda: store.get_run(run_id).lease.expires_at <= SystemClock().now(), timeout=5)
    [recovered] = runner.recover()
    assert recovered.id == run_id and recovered.status == RunStatus.succeeded and recovered.attempts == 2


def test_a_crash_after_the_first_change_is_verified_not_applied_again(store, tmp_path):
    target = tmp_path / "service.json"
    crash_after_first_change(
        store,
        "reader-tuner",
        "m13",
        target,
        tmp_path / "calls.log",
        config=config_text(60.0),
        registry="deferred",
    )
    [recovered] = Runner(config(), store, owner="rescuer", registry=deferred_registry()).recover()
    assert recovered.status == RunStatus.succeeded and json.loads(target.read_text()) == {"key0": 9}
    assert Counter(tmp_path / "calls.log").get("apply") == 1, "recovery never applies again"


def test_a_dead_letter_replays_once(store, tmp_path):
    clock = FakeClock()
    app = build_app(config=config(), store=store, clock=clock, registry=deferred_registry())
    body = {"task": "reader", "trigger_id": "k1", "params": {"counter": str(tmp_path / "c.log")}}
    letter = DeadLetter(
        id="dl1", message_id="dl1", origin="test", data=json.dumps(body), received_at=clock.now()
    )
    store.add_dead_letter(letter)
    first = replay_dead_letter(app, "dl1", "user:operator")
    assert first.outcome.run.status == RunStatus.succeeded and not first.outcome.duplicate
    second = replay_dead_letter(app, "dl1", "user:operator")
    assert second.outcome.duplicate and second.outcome.run.id == first.outcome.run.id
    assert store.get_dead_letter("dl1").replayed_run_ids == [first.outcome.run.id]
    assert len(store.query(RUNS)) == 1
