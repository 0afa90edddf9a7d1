"""The runner's guarantees under faults, against every state store (see the `store` fixture)."""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path
from typing import Any

import pytest
from orchestra.breaker import BreakerState, CircuitBreaker, automation_breaker_name, find_breaker
from orchestra.clock import FakeClock, SystemClock
from orchestra.config import Config, parse_config
from orchestra.errors import ApprovalRefused, StoreUnavailable, TransientError
from orchestra.health import Status, check_health
from orchestra.models import ActionStatus, Mode, RunStatus, TriggerKind, run_id_for
from orchestra.runner import Runner, RunRequest
from orchestra.store.base import StateStore

from tests.runner.automations import Counter, build_registry
from tests.runner.conftest import RUNNER_CONFIG
from tests.runner.worker import crash_after_first_change, spawn_worker, wait_for


def make_runner(config: Config, store: StateStore, clock: Any, owner: str = "owner-a") -> Runner:
    return Runner(
        config, store, clock=clock, owner=owner, registry=build_registry(), heartbeat_in_background=False
    )


def noop(trigger: str, **params: Any) -> RunRequest:
    return RunRequest(
        task="noop", params=params, trigger_kind=TriggerKind.event, trigger_id=trigger, requested_by="alice"
    )


def tuner(
    trigger: str, tmp_path: Path, *, env: str = "development", level: int = 1, **params: Any
) -> RunRequest:
    params = {"target": str(tmp_path / "service.json"), "counter": str(tmp_path / "calls.log"), **params}
    return RunRequest(
        task="tuner",
        environment=env,
        mode=Mode.apply,
        automation_level=level,
        params=params,
        trigger_kind=TriggerKind.event,
        trigger_id=trigger,
        requested_by="alice",
    )


def test_duplicate_delivery_returns_the_existing_run(store, runner_config, clock, tmp_path):
    runner = make_runner(runner_config, store, clock)
    counter = str(tmp_path / "calls.log")
    first = runner.submit(noop("msg-1", counter=counter))
    second = runner.submit(noop("msg-1", counter=counter))
    assert first.run.status == RunStatus.succeeded and not first.duplicate
    assert second.duplicate and second.run.id == first.run.id
    assert Counter(Path(counter)).get("analyze") == 1


def test_twenty_concurrent_deliveries_execute_once(store, tmp_path):
    # A lease long enough that a loaded machine cannot let it expire mid-run: this test is about
    # concurrent duplicates, not about taking over an expired lease (tested below).
    runner_config = parse_config(
        RUNNER_CONFIG.replace("seconds: 1, heartbeat_seconds: 0.3", "seconds: 60, heartbeat_seconds: 20"),
        "runner-test-config",
    )
    assert runner_config.runner.lease.seconds == 60
    counter = str(tmp_path / "calls.log")
    outcomes = []
    barrier = threading.Barrier(20)

    def deliver(i: int) -> None:
        runner = Runner(runner_config, store, owner=f"instance-{i}", registry=build_registry())
        barrier.wait()
        outcomes.append(runner.submit(noop("msg-concurrent", counter=counter, sleep=0.2)))

    threads = [threading.Thread(target=deliver, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert Counter(Path(counter)).get("analyze") == 1
    assert len(outcomes) == 20
    assert sum(not o.duplicate for o in outcomes) == 1
    assert len({o.run.id for o in outcomes}) == 1
    assert store.get_run(run_id_for("noop", "msg-concurrent")).status == RunStatus.succeeded


def test_transient_errors_are_retried_in_process_and_counted(store, runner_config, clock, tmp_path):
    runner = make_runner(runner_config, store, clock)
    start = clock.now()
    outcome = runner.submit(noop("msg-flaky", counter=str(tmp_path / "c.log"), fail_times=2))
    assert outcome.run.status == RunStatus.succeeded
    assert outcome.run.attempts == 3
    assert clock.now() - start <= __import__("datetime").timedelta(seconds=8)  # full jitter, capped


def test_transient_exhaustion_raises_then_redelivery_resumes(store, runner_config, clock, tmp_path):
    runner = make_runner(runner_config, store, clock)
    request = noop("msg-down", counter=str(tmp_path / "c.log"), fail_times=3)
    with pytest.raises(TransientError):
        runner.submit(request)
    stored = store.get_run(run_id_for("noop", "msg-down"))
    assert stored.status == RunStatus.failed and stored.error.transient and stored.attempts == 3
    outcome = runner.submit(request)  # the platform redelivers
    assert not outcome.duplicate
    assert outcome.run.status == RunStatus.succeeded and outcome.run.attempts == 4


def test_permanent_failure_is_recorded_and_not_retried(store, runner_config, clock, tmp_path):
    runner = make_runner(runner_config, store, clock)
    request = noop("msg-bug", counter=str(tmp_path / "c.log"), permanent_failure=True)
    outcome = runner.submit(request)
    assert outcome.run.status == RunStatus.failed
    assert outcome.run.error.type == "RuntimeError" and not outcome.run.error.transient
    assert outcome.run.attempts == 1
    again = runner.submit(request)
    assert again.duplicate and Counter(tmp_path / "c.log").get("analyze") == 1


def test_healthy_path_writes_at_most_three_times(store, runner_config, clock):
    runner = make_runner(runner_config, store, clock)
    store.ops.clear()
    runner.submit(noop("msg-cheap"))
    assert store.ops["write"] <= 3
    assert find_breaker(store, automation_breaker_name("noop", "development")) is None


def test_breaker_opens_skips_probes_and_closes(store, runner_config, clock, tmp_path):
    runner = make_runner(runner_config, store, clock)
    name = automation_breaker_name("noop", "development")
    for i in range(2):
        assert runner.submit(noop(f"bad-{i}", permanent_failure=True)).run.status == RunStatus.failed
    assert find_breaker(store, name).state == BreakerState.open
    skipped = runner.submit(noop("while-open"))
    assert skipped.run.status == RunStatus.skipped and "open" in skipped.run.reason
    clock.advance(61)
    # Half-open: exactly one instance gets the probe.
    other = CircuitBreaker(store, name, runner_config.runner.breaker, clock)
    probe_runner = make_runner(runner_config, store, clock, owner="prober")
    assert other.before_call("prober").probe
    assert not other.before_call("someone-else").allowed
    probe = probe_runner.submit(noop("probe"))
    assert probe.run.status == RunStatus.succeeded
    assert find_breaker(store, name).state == BreakerState.closed
    assert runner.submit(noop("after")).run.status == RunStatus.succeeded


def test_failed_probe_reopens(store, runner_config, clock):
    runner = make_runner(runner_config, store, clock)
    for i in range(2):
        runner.submit(noop(f"bad-{i}", permanent_failure=True))
    clock.advance(61)
    runner.submit(noop("probe", permanent_failure=True))
    record = find_breaker(store, automation_breaker_name("noop", "development"))
    assert record.state == BreakerState.open and record.opened_at == clock.now()


def test_levels_and_gates(store, runner_config, clock, tmp_path):
    runner = make_runner(runner_config, store, clock)
    outcome = runner.submit(tuner("gates-1", tmp_path, level=1, risks=["low", "medium", "high"]))
    statuses = [a.status for a in outcome.run.actions]
    assert statuses == [ActionStatus.applied, ActionStatus.skipped, ActionStatus.skipped]
    assert outcome.run.status == RunStatus.succeeded
    analyze_only = runner.submit(tuner("gates-0", tmp_path, level=0, risks=["low"]))
    assert [a.status for a in analyze_only.run.actions] == [ActionStatus.skipped]


def test_production_high_risk_waits_and_requester_cannot_approve(store, runner_config, clock, tmp_path):
    runner = make_runner(runner_config, store, clock)
    outcome = runner.submit(
        tuner("prod-1", tmp_path, env="production", level=3, risks=["low", "high"], value=7)
    )
    run = outcome.run
    assert run.status == RunStatus.awaiting_approval
    assert [a.status for a in run.actions] == [ActionStatus.applied, ActionStatus.awaiting_approval]
    with pytest.raises(ApprovalRefused):
        runner.approve(run.id, "alice")
    approved = runner.approve(run.id, "bob", comment="looks right")
    assert approved.status == RunStatus.succeeded
    assert approved.decision.by == "bob" and approved.decision.at == clock.now()
    assert json.loads((tmp_path / "service.json").read_text()) == {"key0": 7, "key1": 7}


def test_approvals_expire(store, runner_config, clock, tmp_path):
    runner = make_runner(runner_config, store, clock)
    run = runner.submit(tuner("prod-exp", tmp_path, env="production", level=3, risks=["high"])).run
    clock.advance(hours=2)
    with pytest.raises(ApprovalRefused):
        runner.approve(run.id, "bob")
    stored = store.get_run(run.id)
    assert stored.status == RunStatus.skipped and "expired" in stored.reason


def test_failed_verification_rolls_back(store, runner_config, clock, tmp_path):
    (tmp_path / "service.json").write_text(json.dumps({"key0": 1}))
    runner = make_runner(runner_config, store, clock)
    run = runner.submit(tuner("verify-bad", tmp_path, value=5, verify_ok=False)).run
    assert run.status == RunStatus.rolled_back
    assert run.actions[0].status == ActionStatus.rolled_back
    verification = run.actions[0].result["verification"]
    assert verification["current"] == 5
    assert (verification["outcome"], verification["decided_by"], verification["pending"]) == (
        "failed",
        "checks",
        False,
    )
    assert json.loads((tmp_path / "service.json").read_text()) == {"key0": 1}
    record = find_breaker(store, automation_breaker_name("tuner", "development"))
    assert record.failures == 1


def test_failed_apply_rolls_back(store, runner_config, clock, tmp_path):
    runner = make_runner(runner_config, store, clock)
    run = runner.submit(tuner("apply-bad", tmp_path, fail_apply=True)).run
    assert run.status == RunStatus.rolled_back
    assert run.actions[0].status == ActionStatus.failed
    assert "API refused" in run.reason


class FlakyStore:
    """Wraps a real store; raises StoreUnavailable while ``down`` or on chosen write numbers."""

    def __init__(self, inner: StateStore) -> None:
        self._inner = inner
        self.down = False
        self.fail_writes: set[int] = set()
        self.writes = 0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name in {"create", "get", "put", "update_if", "query", "delete", "ping"}:

            def guarded(*args: Any, **kwargs: Any) -> Any:
                if name in {"create", "put", "update_if", "delete"}:
                    self.writes += 1
                    if self.writes in self.fail_writes:
                        raise StoreUnavailable("injected outage")
                if self.down:
                    raise StoreUnavailable("injected outage")
                return attr(*args, **kwargs)

            return guarded
        return attr


def test_store_unavailable_then_back(store, runner_config, clock, tmp_path):
    from orchestra.store.base import StateStore as Port

    flaky = FlakyStore(store)
    # Typed helpers live on the port; bind them to the flaky primitives.
    for helper in ("create_run", "get_run", "save_run", "replace_run", "list_runs"):
        setattr(flaky, helper, getattr(Port, helper).__get__(flaky))
    runner = make_runner(runner_config, flaky, clock)  # type: ignore[arg-type]
    counter = str(tmp_path / "c.log")
    flaky.down = True
    with pytest.raises(StoreUnavailable):
        runner.submit(noop("msg-outage", counter=counter))
    assert Counter(Path(counter)).get("analyze") == 0
    flaky.down = False
    # The final write fails: the run stays leased; a redelivery waits for the lease, then resumes.
    flaky.writes = 0
    flaky.fail_writes = {2}
    with pytest.raises(StoreUnavailable):
        runner.submit(noop("msg-outage", counter=counter))
    assert store.get_run(run_id_for("noop", "msg-outage")).status == RunStatus.running
    assert runner.submit(noop("msg-outage", counter=counter)).duplicate
    clock.advance(2)
    resumed = runner.submit(noop("msg-outage", counter=counter))
    assert resumed.run.status == RunStatus.succeeded and resumed.run.attempts == 2


def test_killed_process_mid_run_is_recovered(store, runner_config, tmp_path):
    counter = tmp_path / "c.log"
    run_id = run_id_for("noop", "msg-killed")
    proc = spawn_worker(
        store.url,
        {
            "task": "noop",
            "trigger_id": "msg-killed",
            "owner": "doomed",
            "params": {"counter": str(counter), "hang_on_first_call": True},
        },
    )
    try:
        wait_for(lambda: Counter(counter).get("analyze") == 1)
        assert store.get_run(run_id).status == RunStatus.running
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    runner = Runner(runner_config, store, clock=SystemClock(), owner="rescuer", registry=build_registry())
    wait_for(lambda: store.get_run(run_id).lease.expires_at <= SystemClock().now(), timeout=5)
    health = check_health(runner_config, store, SystemClock(), build_registry())
    assert health.status == Status.degraded
    assert run_id in next(c for c in health.checks if c.name == "leases").data["stale"]
    recovered = runner.recover()
    assert [r.id for r in recovered] == [run_id]
    final = store.get_run(run_id)
    assert final.status == RunStatus.succeeded and final.attempts == 2 and final.lease is None


@pytest.mark.parametrize("verify_ok", [False, True])
def test_crash_between_apply_and_verify_is_verified_or_rolled_back(store, runner_config, tmp_path, verify_ok):
    target = tmp_path / "service.json"
    crash_after_first_change(store, "tuner", "msg-crash", target, tmp_path / "calls.log", verify_ok=verify_ok)
    runner = Runner(runner_config, store, owner="rescuer", registry=build_registry())
    [recovered] = runner.recover()
    counts = Counter(tmp_path / "calls.log")
    assert counts.get("apply") == 1, "recovery must never apply again"
    assert counts.get("verify") == 1
    if verify_ok:
        assert recovered.status == RunStatus.succeeded
        assert json.loads(target.read_text()) == {"key0": 9}
    else:
        assert recovered.status == RunStatus.rolled_back
        assert json.loads(target.read_text()) == {"key0": 1}


def test_fake_clock_is_the_only_time_source(runner_config, store):
    clock = FakeClock()
    runner = make_runner(runner_config, store, clock)
    run = runner.submit(noop("msg-time")).run
    assert run.created_at == clock.now() and run.finished_at == clock.now()
