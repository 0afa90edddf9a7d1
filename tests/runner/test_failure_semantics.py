"""What counts as a failure, and what a failure undoes: breakers count faults of the automation and
its dependencies (never the caller's bad input), a failed action takes every earlier action of
its run with it, a crash is verified or rolled back without applying again, and retries wait on
the injected clock with full-jitter exponential backoff."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from orchestra.breaker import (
    BreakerState,
    CircuitBreaker,
    automation_breaker_name,
    call_dependency,
    dependency_breaker_name,
    find_breaker,
)
from orchestra.clock import FakeClock, RandomIds, SystemClock
from orchestra.config import Config, parse_config
from orchestra.errors import InputError, TransientError
from orchestra.models import ActionStatus, Lease, Mode, Run, RunPhase, RunStatus, TriggerKind, run_id_for
from orchestra.runner import Runner, RunRequest
from orchestra.store.base import StateStore

from tests.runner.automations import Counter, build_registry
from tests.runner.conftest import RUNNER_CONFIG
from tests.runner.worker import spawn_worker

REPO_ROOT = Path(__file__).resolve().parents[2]
NOOP_BREAKER = automation_breaker_name("noop", "development")


class RecordingClock(FakeClock):
    """A fake clock that also remembers every sleep it was asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        super().sleep(seconds)


class FixedRandom(RandomIds):
    """Seeded ids; ``random()`` returns the given values in turn (the jitter draws)."""

    def __init__(self, *draws: float) -> None:
        super().__init__(seed=1)
        self._draws = list(draws)

    def random(self) -> float:
        return self._draws.pop(0)


def make_runner(
    config: Config, store: StateStore, clock: Any, owner: str = "owner-a", **kwargs: Any
) -> Runner:
    return Runner(
        config,
        store,
        clock=clock,
        owner=owner,
        registry=build_registry(),
        heartbeat_in_background=False,
        **kwargs,
    )


def noop(trigger: str, **params: Any) -> RunRequest:
    return RunRequest(
        task="noop", params=params, trigger_kind=TriggerKind.event, trigger_id=trigger, requested_by="alice"
    )


def tuner(trigger: str, tmp_path: Path, **params: Any) -> RunRequest:
    params = {
        "target": str(tmp_path / "service.json"),
        "counter": str(tmp_path / "calls.log"),
        "risks": ["low", "low", "low"],
        "value": 9,
        **params,
    }
    return RunRequest(
        task="tuner",
        mode=Mode.apply,
        automation_level=1,
        params=params,
        trigger_kind=TriggerKind.event,
        trigger_id=trigger,
        requested_by="alice",
    )


def breaker_state(store: StateStore, name: str = NOOP_BREAKER) -> tuple[BreakerState, int]:
    record = find_breaker(store, name)
    return (BreakerState.closed, 0) if record is None else (record.state, record.failures)


def calls(tmp_path: Path, prefix: str) -> list[str]:
    """The counter's lines starting with ``prefix``, in the order they happened."""
    log = tmp_path / "calls.log"
    return [line for line in log.read_text().splitlines() if line.startswith(prefix)] if log.exists() else []


# ---------------------------------------------------------------- what a breaker counts


def test_bad_input_never_counts_however_often(store, runner_config, clock):
    runner = make_runner(runner_config, store, clock)
    threshold = runner_config.runner.breaker.failure_threshold
    for i in range(threshold + 2):
        run = runner.submit(noop(f"bad-{i}", bad_input=True)).run
        assert run.status == RunStatus.failed
        assert run.error.bad_input and run.error.type == "InputError" and not run.error.transient
    assert breaker_state(store) == (BreakerState.closed, 0)
    assert runner.submit(noop("good")).run.status == RunStatus.succeeded


def test_internal_faults_count_and_bad_input_in_between_changes_nothing(store, runner_config, clock):
    runner = make_runner(runner_config, store, clock)
    assert runner_config.runner.breaker.failure_threshold == 2
    runner.submit(noop("bug-1", permanent_failure=True))
    assert breaker_state(store) == (BreakerState.closed, 1)
    bad = runner.submit(noop("bad", bad_input=True)).run
    assert bad.error.bad_input
    assert breaker_state(store) == (BreakerState.closed, 1)  # neither counted nor reset
    bug = runner.submit(noop("bug-2", permanent_failure=True)).run
    assert bug.error.type == "RuntimeError" and not bug.error.bad_input
    assert breaker_state(store) == (BreakerState.open, 2)
    assert runner.submit(noop("while-open")).run.status == RunStatus.skipped


def _stale_run(trigger: str, params: dict[str, Any], now: dt.datetime) -> Run:
    """A run whose owner died while analysing: its lease has expired."""
    return Run(
        id=run_id_for("noop", trigger),
        task="noop",
        trigger_kind=TriggerKind.event,
        trigger_id=trigger,
        environment="development",
        mode=Mode.analyze,
        automation_level=1,
        requested_by="alice",
        params=params,
        status=RunStatus.running,
        phase=RunPhase.analyzing,
        attempts=1,
        lease=Lease(owner="dead", expires_at=now - dt.timedelta(seconds=1), heartbeat_at=now),
        created_at=now,
        updated_at=now,
        started_at=now,
        expires_at=now + dt.timedelta(days=1),
    )


def test_parameters_that_no_longer_validate_are_bad_input_not_a_fault(store, runner_config, clock):
    """Recovery re-validates the stored parameters; when they fail (the trigger's input), the run
    records bad input with the field, and the breaker does not count it."""
    runner = make_runner(runner_config, store, clock)
    for i in range(runner_config.runner.breaker.failure_threshold + 1):
        assert store.create_run(_stale_run(f"stale-{i}", {"sleep": "a while"}, clock.now()))
    recovered = runner.recover()
    assert len(recovered) == 3
    for run in recovered:
        assert run.status == RunStatus.failed
        assert run.error.bad_input and run.error.type == "InputError"
        assert "params.sleep" in run.error.message
    assert breaker_state(store) == (BreakerState.closed, 0)


def test_bad_input_on_the_half_open_probe_hands_the_probe_back(store, runner_config, clock):
    runner = make_runner(runner_config, store, clock)
    for i in range(2):
        runner.submit(noop(f"bug-{i}", permanent_failure=True))
    assert breaker_state(store)[0] == BreakerState.open
    clock.advance(runner_config.runner.breaker.open_seconds + 1)
    probe = runner.submit(noop("probe-bad", bad_input=True)).run
    assert probe.status == RunStatus.failed and probe.error.bad_input
    record = find_breaker(store, NOOP_BREAKER)
    assert record.state == BreakerState.half_open and record.probe_owner is None
    assert record.failures == 2  # a bad input is no verdict on the automation
    # Another instance probes at once instead of waiting for the abandoned probe lease.
    other = make_runner(runner_config, store, clock, owner="owner-b")
    assert other.submit(noop("probe-good")).run.status == RunStatus.succeeded
    assert breaker_state(store) == (BreakerState.closed, 0)


def test_dependency_breaker_ignores_bad_input_and_counts_faults(store, runner_config, clock):
    cfg = runner_config.runner.breaker
    name = dependency_breaker_name("billing-api")

    def refuse() -> None:
        raise InputError("row 3: amount is not a number", where="billing.csv")

    def broken() -> None:
        raise RuntimeError("500 from the API")

    for _ in range(cfg.failure_threshold + 1):
        with pytest.raises(InputError):
            call_dependency(store, cfg, clock, "owner-a", "billing-api", refuse)
    assert breaker_state(store, name) == (BreakerState.closed, 0)
    for _ in range(cfg.failure_threshold):
        with pytest.raises(RuntimeError):
            call_dependency(store, cfg, clock, "owner-a", "billing-api", broken)
    assert breaker_state(store, name) == (BreakerState.open, cfg.failure_threshold)
    # Half-open: a bad input hands the probe back; the breaker stays half-open for the next call.
    clock.advance(cfg.open_seconds + 1)
    with pytest.raises(InputError):
        call_dependency(store, cfg, clock, "owner-a", "billing-api", refuse)
    assert CircuitBreaker(store, name, cfg, clock).before_call("owner-b").probe


# ---------------------------------------------------------------- all or nothing


def test_failure_of_the_second_action_rolls_back_the_first_and_never_applies_the_third(
    store, runner_config, clock, tmp_path
):
    target = tmp_path / "service.json"
    original = {"key0": 1, "key1": 2, "key2": 3}
    target.write_text(json.dumps(original))
    runner = make_runner(runner_config, store, clock)
    run = runner.submit(tuner("three-fail-second", tmp_path, fail_apply_on=1)).run
    assert run.status == RunStatus.rolled_back
    first, second, third = run.actions
    assert first.status == ActionStatus.rolled_back
    assert second.status == ActionStatus.failed and "API refused" in second.reason
    assert third.status == ActionStatus.skipped and third.rollback is None and third.applied_at is None
    assert calls(tmp_path, "apply:") == ["apply:set-0", "apply:set-1"]
    assert calls(tmp_path, "rollback:") == ["rollback:set-1", "rollback:set-0"]  # newest first
    assert json.loads(target.read_text()) == original
    assert "set-1 failed to apply" in run.reason
    stored = store.get_run(run.id)
    assert [a.status for a in stored.actions] == [a.status for a in run.actions]
    assert find_breaker(store, automation_breaker_name("tuner", "development")).failures == 1


def test_failure_of_the_last_action_rolls_back_all_before_it(store, runner_config, clock, tmp_path):
    target = tmp_path / "service.json"
    target.write_text(json.dumps({"key0": 1}))
    runner = make_runner(runner_config, store, clock)
    run = runner.submit(tuner("three-fail-third", tmp_path, fail_apply_on=2)).run
    assert run.status == RunStatus.rolled_back
    assert [a.status for a in run.actions] == [
        ActionStatus.rolled_back,
        ActionStatus.rolled_back,
        ActionStatus.failed,
    ]
    assert calls(tmp_path, "rollback:") == ["rollback:set-2", "rollback:set-1", "rollback:set-0"]
    assert json.loads(target.read_text()) == {"key0": 1}


def test_failed_verification_rolls_back_every_applied_action_newest_first(
    store, runner_config, clock, tmp_path
):
    target = tmp_path / "service.json"
    target.write_text(json.dumps({"key0": 1, "key1": 2}))
    runner = make_runner(runner_config, store, clock)
    run = runner.submit(tuner("three-verify-bad", tmp_path, verify_ok=False)).run
    assert run.status == RunStatus.rolled_back
    assert [a.status for a in run.actions] == [ActionStatus.rolled_back] * 3
    assert calls(tmp_path, "apply:") == ["apply:set-0", "apply:set-1", "apply:set-2"]
    assert calls(tmp_path, "rollback:") == ["rollback:set-2", "rollback:set-1", "rollback:set-0"]
    assert json.loads(target.read_text()) == {"key0": 1, "key1": 2}


@pytest.mark.parametrize("verify_ok", [True, False])
def test_crash_after_the_first_of_three_actions_is_recovered_without_applying_again(
    store, runner_config, tmp_path, verify_ok
):
    target = tmp_path / "service.json"
    target.write_text(json.dumps({"key0": 1, "key1": 2, "key2": 3}))
    params = {
        "target": str(target),
        "counter": str(tmp_path / "calls.log"),
        "risks": ["low", "low", "low"],
        "value": 9,
        "verify_ok": verify_ok,
        "crash_after_apply_on": 0,
    }
    proc = spawn_worker(
        store.url, {"task": "tuner", "trigger_id": "crash-3", "mode": "apply", "level": 1, "params": params}
    )
    assert proc.wait(timeout=60) == 9, proc.stderr.read().decode()  # os._exit right after action 1
    run_id = run_id_for("tuner", "crash-3")
    crashed = store.get_run(run_id)
    assert crashed.status == RunStatus.running and crashed.phase == RunPhase.applying
    assert [a.rollback for a in crashed.actions] == [{"previous": 1}, None, None]
    assert json.loads(target.read_text()) == {"key0": 9, "key1": 2, "key2": 3}
    # The rescuer's clock is past the dead owner's lease: no waiting for it to expire.
    later = FakeClock(SystemClock().now() + dt.timedelta(seconds=runner_config.runner.lease.seconds + 5))
    rescuer = make_runner(runner_config, store, later, owner="rescuer")
    [recovered] = rescuer.recover()
    assert calls(tmp_path, "apply:") == ["apply:set-0"], "recovery must never apply again"
    assert Counter(tmp_path / "calls.log").get("verify") == 1
    first, second, third = recovered.actions
    assert second.status == third.status == ActionStatus.skipped
    if verify_ok:
        assert recovered.status == RunStatus.succeeded
        assert first.status == ActionStatus.applied and first.verified
        assert json.loads(target.read_text()) == {"key0": 9, "key1": 2, "key2": 3}
    else:
        assert recovered.status == RunStatus.rolled_back
        assert first.status == ActionStatus.rolled_back
        assert calls(tmp_path, "rollback:") == ["rollback:set-0"]
        assert json.loads(target.read_text()) == {"key0": 1, "key1": 2, "key2": 3}
    assert store.get_run(run_id).status == recovered.status


# ---------------------------------------------------------------- backoff


BACKOFF_CONFIG = RUNNER_CONFIG.replace(
    "retry: {attempts: 3, initial_seconds: 0.5, max_seconds: 4, max_deliveries: 5}",
    "retry: {attempts: 3, initial_seconds: 3, max_seconds: 4, max_deliveries: 5}",
)


def test_retries_wait_full_jitter_exponential_backoff_capped_at_max(store, tmp_path):
    config = parse_config(BACKOFF_CONFIG, "backoff-config")
    assert config.runner.retry.initial_seconds == 3 and config.runner.retry.max_seconds == 4
    clock = RecordingClock()
    start = clock.now()
    runner = make_runner(config, store, clock, ids=FixedRandom(0.5, 0.75))
    run = runner.submit(noop("flaky", counter=str(tmp_path / "c.log"), fail_times=2)).run
    assert run.status == RunStatus.succeeded and run.attempts == 3
    # Wait k (k = 0, 1) is draw_k * min(max, initial * 2^k): 0.5 * 3, then 0.75 * min(4, 6).
    assert clock.sleeps == pytest.approx([1.5, 3.0])
    assert clock.now() - start == dt.timedelta(seconds=4.5)  # the waits happened on the clock


def test_retry_waits_stay_within_their_growing_bounds(store, runner_config, tmp_path):
    retry = runner_config.runner.retry
    for seed in range(5):
        clock = RecordingClock()
        runner = make_runner(runner_config, store, clock, ids=RandomIds(seed=seed))
        CircuitBreaker(store, NOOP_BREAKER, runner_config.runner.breaker, clock).reset()  # independent runs
        with pytest.raises(TransientError):
            runner.submit(noop(f"down-{seed}", counter=str(tmp_path / f"c{seed}.log"), fail_times=5))
        assert len(clock.sleeps) == retry.attempts - 1
        bounds = [min(retry.max_seconds, retry.initial_seconds * 2**k) for k in range(len(clock.sleeps))]
        assert all(0 < wait <= bound for wait, bound in zip(clock.sleeps, bounds, strict=True)), (
            clock.sleeps,
            bounds,
        )
        assert bounds == sorted(bounds) and bounds[0] < bounds[-1]
