"""Verification that proves something: an applied change whose checks cannot tell yet
(inconclusive) waits, is checked again by the next run of its automation in its environment or
by ``recover``, and ends verified, rolled back on a failed check, or, when the environment's
window ends undecided, as its ``on_inconclusive`` policy says."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from orchestra.automation import Verification
from orchestra.breaker import automation_breaker_name, find_breaker
from orchestra.clock import FakeClock
from orchestra.config import Config, ConfigError, parse_config
from orchestra.models import ActionStatus, Lease, Mode, RunPhase, RunStatus, TriggerKind
from orchestra.runner import Runner, RunRequest
from orchestra.store.base import StateStore
from pydantic import ValidationError

from tests.runner.automations import build_registry
from tests.runner.conftest import RUNNER_CONFIG

START = dt.datetime(2026, 1, 5, 12, 0, tzinfo=dt.UTC)


def make_runner(config: Config, store: StateStore, clock: FakeClock, owner: str = "owner-a") -> Runner:
    return Runner(
        config, store, clock=clock, owner=owner, registry=build_registry(), heartbeat_in_background=False
    )


class Probe:
    """The files one probe run works on: the target it changes and the script of its checks."""

    def __init__(self, tmp_path: Path, **outcomes: list[str]) -> None:
        self.target = tmp_path / "service.json"
        self.script = tmp_path / "script.json"
        self.target.write_text(json.dumps({"key0": "old", "key1": "old"}))
        self.script.write_text(json.dumps({k.replace("_", "-"): v for k, v in outcomes.items()}))

    def request(self, trigger: str, env: str = "development", actions: int = 1, **kw: Any) -> RunRequest:
        return RunRequest(
            task="probe",
            environment=env,
            mode=kw.pop("mode", Mode.apply),
            automation_level=3,
            params={"target": str(self.target), "script": str(self.script), "actions": actions},
            trigger_kind=TriggerKind.event,
            trigger_id=trigger,
            requested_by="alice",
        )

    def value(self, key: str = "key0") -> str:
        return str(json.loads(self.target.read_text())[key])

    def checked(self) -> list[str]:
        return list(json.loads(self.script.read_text()).get("checked", []))


def record(run: Any, index: int = 0) -> dict[str, Any]:
    return dict(run.actions[index].result["verification"])


def config_with(environments: str) -> Config:
    base = RUNNER_CONFIG.split("environments:")[0]
    rest = RUNNER_CONFIG.split("runner:")[1]
    return parse_config(f"{base}environments:\n{environments}runner:{rest}", "verification-test")


# ------------------------------------------------------------------------ the model and the config
def test_verification_reads_ok_and_outcome_the_same_way() -> None:
    assert Verification(ok=True).outcome == "passed"
    assert Verification(ok=False).outcome == "failed"
    undecided = Verification(outcome="inconclusive")
    assert (undecided.ok, undecided.inconclusive) == (False, True)
    assert Verification(outcome="passed").ok is True
    with pytest.raises(ValidationError, match="contradicts"):
        Verification(ok=True, outcome="inconclusive")


def test_environment_policy_defaults_and_overrides(runner_config: Config) -> None:
    assert runner_config.environment("production").verification.on_inconclusive == "rollback"
    assert runner_config.environment("development").verification.on_inconclusive == "accept"
    assert runner_config.environment("development").verification.window_minutes == 60
    config = config_with(
        "  development: {verification: {window_minutes: 15, on_inconclusive: rollback}}\n"
        "  production: {protected: true, verification: {on_inconclusive: accept}}\n"
    )
    assert config.environment("development").on_inconclusive == "rollback"
    assert config.environment("development").verification.window_minutes == 15
    assert config.environment("production").on_inconclusive == "accept"


@pytest.mark.parametrize(
    ("setting", "field"),
    [
        ("{window_minutes: -1}", "environments.development.verification.window_minutes"),
        ("{window_minutes: 10081}", "environments.development.verification.window_minutes"),
        ("{on_inconclusive: keep}", "environments.development.verification.on_inconclusive"),
        ("{window: 5}", "environments.development.verification.window"),
    ],
)
def test_bad_verification_settings_name_the_field(setting: str, field: str) -> None:
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        config_with(f"  development: {{verification: {setting}}}\n")


# ------------------------------------------------------------------------ through the runner
def test_inconclusive_waits_then_passes_when_the_next_run_checks_again(
    store: StateStore, runner_config: Config, clock: FakeClock, tmp_path: Path
) -> None:
    probe = Probe(tmp_path, set_0=["inconclusive", "passed"])
    runner = make_runner(runner_config, store, clock)
    run = runner.submit(probe.request("first")).run
    assert run.status == RunStatus.awaiting_verification, run.reason
    assert (run.phase, run.finished_at, run.lease) == (RunPhase.verifying, None, None)
    assert run.actions[0].status == ActionStatus.applied and run.actions[0].verified is None
    assert record(run) | {"reason": None} == {
        "value": "new",
        "reason": None,
        "outcome": "inconclusive",
        "decided_by": None,
        "pending": True,
        "window_ends_at": "2026-01-05T13:00:00.000000Z",
        "checked_at": "2026-01-05T12:00:00.000000Z",
        "attempts": 1,
    }
    assert "no samples after the change yet" in (run.reason or "")
    assert "development's policy (verification.on_inconclusive: accept)" in (run.reason or "")
    assert probe.value() == "new"

    clock.advance(minutes=10)
    # The next run of the same automation in the same environment checks it first.
    runner.submit(probe.request("second", mode=Mode.analyze))
    stored = store.get_run(run.id)
    assert stored is not None and stored.status == RunStatus.succeeded, stored and stored.reason
    assert stored.phase == RunPhase.done and stored.finished_at == START + dt.timedelta(minutes=10)
    assert (record(stored)["outcome"], record(stored)["decided_by"]) == ("passed", "checks")
    assert (record(stored)["pending"], record(stored)["attempts"]) == (False, 2)
    assert stored.actions[0].verified is True
    assert "passed when checked again" in (stored.reason or "")
    assert probe.value() == "new"
    assert probe.checked() == ["set-0", "set-0"]


def test_a_failed_check_again_rolls_back(
    store: StateStore, runner_config: Config, clock: FakeClock, tmp_path: Path
) -> None:
    probe = Probe(tmp_path, set_0=["inconclusive", "failed"])
    runner = make_runner(runner_config, store, clock)
    run = runner.submit(probe.request("first")).run
    assert run.status == RunStatus.awaiting_verification
    clock.advance(minutes=30)
    (checked,) = runner.recheck_verifications()
    assert checked.status == RunStatus.rolled_back, checked.reason
    assert checked.actions[0].status == ActionStatus.rolled_back and checked.actions[0].verified is False
    assert (record(checked)["outcome"], record(checked)["decided_by"]) == ("failed", "checks")
    assert probe.value() == "old"
    breaker = find_breaker(store, automation_breaker_name("probe", "development"))
    assert breaker is not None and breaker.failures == 1


def test_inside_the_window_it_stays_pending(
    store: StateStore, runner_config: Config, clock: FakeClock, tmp_path: Path
) -> None:
    probe = Probe(tmp_path, set_0=["inconclusive"])
    runner = make_runner(runner_config, store, clock)
    run = runner.submit(probe.request("first")).run
    clock.advance(minutes=59)
    (checked,) = runner.recheck_verifications(task="probe", environment="development")
    assert checked.status == RunStatus.awaiting_verification
    assert (record(checked)["attempts"], record(checked)["pending"]) == (2, True)
    assert record(checked)["window_ends_at"] == "2026-01-05T13:00:00.000000Z"  # not moved by the check
    # recover() checks it too, but lists only the runs whose verification was decided.
    assert runner.recover() == []
    assert probe.checked() == ["set-0"] * 3
    assert store.get_run(run.id).status == RunStatus.awaiting_verification  # type: ignore[union-attr]


def test_window_end_accepts_where_the_policy_is_accept(
    store: StateStore, runner_config: Config, clock: FakeClock, tmp_path: Path
) -> None:
    probe = Probe(tmp_path, set_0=["inconclusive"])
    runner = make_runner(runner_config, store, clock)
    run = runner.submit(probe.request("first")).run
    clock.advance(minutes=60)
    (decided,) = runner.recover()
    assert decided.id == run.id and decided.status == RunStatus.succeeded, decided.reason
    assert (record(decided)["outcome"], record(decided)["decided_by"]) == ("inconclusive", "policy:accept")
    assert record(decided)["pending"] is False and decided.actions[0].verified is None
    assert "kept by development's policy (verification.on_inconclusive: accept)" in (decided.reason or "")
    assert decided.actions[0].status == ActionStatus.applied and probe.value() == "new"
    # Decided: nothing is checked again.
    clock.advance(minutes=5)
    assert runner.recheck_verifications() == []
    assert probe.checked() == ["set-0", "set-0"]


def test_window_end_rolls_back_in_a_protected_environment(
    store: StateStore, runner_config: Config, clock: FakeClock, tmp_path: Path
) -> None:
    probe = Probe(tmp_path, set_0=["inconclusive"])
    runner = make_runner(runner_config, store, clock)
    run = runner.submit(probe.request("first", env="production")).run
    assert run.status == RunStatus.awaiting_verification, run.reason
    clock.advance(minutes=61)
    runner.submit(probe.request("second", env="production", mode=Mode.analyze))
    stored = store.get_run(run.id)
    assert stored is not None and stored.status == RunStatus.rolled_back, stored and stored.reason
    assert (record(stored)["outcome"], record(stored)["decided_by"]) == ("inconclusive", "policy:rollback")
    assert "rolled back by production's policy (verification.on_inconclusive: rollback)" in (
        stored.reason or ""
    )
    assert stored.actions[0].status == ActionStatus.rolled_back
    assert probe.value() == "old"


def test_a_zero_window_lets_the_policy_decide_at_once(
    store: StateStore, clock: FakeClock, tmp_path: Path
) -> None:
    config = config_with("  development: {verification: {window_minutes: 0, on_inconclusive: rollback}}\n")
    probe = Probe(tmp_path, set_0=["inconclusive"])
    run = make_runner(config, store, clock).submit(probe.request("first")).run
    assert run.status == RunStatus.rolled_back, run.reason
    assert record(run)["decided_by"] == "policy:rollback" and probe.value() == "old"


def test_runs_of_other_environments_or_automations_do_not_check_it(
    store: StateStore, runner_config: Config, clock: FakeClock, tmp_path: Path
) -> None:
    probe = Probe(tmp_path, set_0=["inconclusive", "failed"])
    runner = make_runner(runner_config, store, clock)
    run = runner.submit(probe.request("first")).run
    clock.advance(minutes=5)
    runner.submit(probe.request("prod", env="production", mode=Mode.analyze))
    runner.submit(RunRequest(task="noop", trigger_kind=TriggerKind.event, trigger_id="n1"))
    assert probe.checked() == ["set-0"]
    assert store.get_run(run.id).status == RunStatus.awaiting_verification  # type: ignore[union-attr]


def test_only_pending_actions_are_checked_again_and_a_failure_undoes_all(
    store: StateStore, runner_config: Config, clock: FakeClock, tmp_path: Path
) -> None:
    probe = Probe(tmp_path, set_0=["passed"], set_1=["inconclusive", "failed"])
    runner = make_runner(runner_config, store, clock)
    run = runner.submit(probe.request("first", actions=2)).run
    assert run.status == RunStatus.awaiting_verification
    assert [record(run, i)["outcome"] for i in (0, 1)] == ["passed", "inconclusive"]
    clock.advance(minutes=10)
    (checked,) = runner.recheck_verifications()
    assert probe.checked() == ["set-0", "set-1", "set-1"]
    assert checked.status == RunStatus.rolled_back
    assert [a.status for a in checked.actions] == [ActionStatus.rolled_back] * 2
    assert probe.value("key0") == probe.value("key1") == "old"


def test_a_pending_check_another_owner_claimed_is_left_to_it(
    store: StateStore, runner_config: Config, clock: FakeClock, tmp_path: Path
) -> None:
    probe = Probe(tmp_path, set_0=["inconclusive", "passed"])
    first = make_runner(runner_config, store, clock)
    run = first.submit(probe.request("first")).run
    stale = store.get_run(run.id)
    assert stale is not None
    clock.advance(minutes=1)
    assert first.recheck_verifications()[0].status == RunStatus.succeeded
    # A second runner that listed the run before the first one checked it: the claim fails.
    assert make_runner(runner_config, store, clock, owner="owner-b")._recheck(stale) is None
    assert probe.checked() == ["set-0", "set-0"]


def test_a_check_again_interrupted_by_a_crash_is_finished_by_recovery(
    store: StateStore, runner_config: Config, clock: FakeClock, tmp_path: Path
) -> None:
    probe = Probe(tmp_path, set_0=["inconclusive", "inconclusive", "passed"])
    runner = make_runner(runner_config, store, clock)
    run = runner.submit(probe.request("first")).run
    # The owner that claimed the check again died while verifying.
    stored = store.get_run(run.id)
    assert stored is not None
    crashed = stored.model_copy(deep=True)
    crashed.status = RunStatus.running
    crashed.lease = Lease(owner="owner-dead", expires_at=START + dt.timedelta(seconds=1), heartbeat_at=START)
    crashed.updated_at = START
    assert store.replace_run(crashed, expect_updated_at=stored.updated_at)
    clock.advance(minutes=5)
    recovered = make_runner(runner_config, store, clock, owner="owner-b").recover()
    assert [r.id for r in recovered] == [run.id]
    assert recovered[0].status == RunStatus.awaiting_verification, recovered[0].reason
    assert record(recovered[0])["attempts"] == 2
    clock.advance(minutes=5)
    (done,) = make_runner(runner_config, store, clock, owner="owner-c").recover()
    assert done.status == RunStatus.succeeded and record(done)["attempts"] == 3


def test_a_pending_verification_survives_a_restart(
    store: StateStore, runner_config: Config, tmp_path: Path
) -> None:
    """Through both stores: a new runner (a new process) on the same store finds the pending
    verification and decides it, with the window stored when the change was made."""
    probe = Probe(tmp_path, set_0=["inconclusive"])
    first_clock = FakeClock(START)
    run = make_runner(runner_config, store, first_clock).submit(probe.request("first", env="production")).run
    assert run.status == RunStatus.awaiting_verification
    listed = store.list_runs(task="probe", status=RunStatus.awaiting_verification)
    assert [r.id for r in listed] == [run.id]

    later = FakeClock(START + dt.timedelta(minutes=30))
    (still,) = make_runner(runner_config, store, later, owner="owner-b").recheck_verifications()
    assert still.status == RunStatus.awaiting_verification and record(still)["attempts"] == 2

    after = FakeClock(START + dt.timedelta(minutes=61))
    (decided,) = make_runner(runner_config, store, after, owner="owner-c").recover()
    assert decided.status == RunStatus.rolled_back, decided.reason
    stored = store.get_run(run.id)
    assert stored is not None and stored.status == RunStatus.rolled_back
    assert record(stored)["decided_by"] == "policy:rollback"
    assert record(stored)["window_ends_at"] == "2026-01-05T13:00:00.000000Z"
    assert probe.value() == "old"


def test_a_pending_change_rolled_back_with_a_failed_one_is_no_longer_pending(
    store: StateStore, runner_config: Config, clock: FakeClock, tmp_path: Path
) -> None:
    probe = Probe(tmp_path, set_0=["inconclusive", "failed"], set_1=["inconclusive"])
    runner = make_runner(runner_config, store, clock)
    runner.submit(probe.request("first", actions=2))
    clock.advance(minutes=10)
    (checked,) = runner.recheck_verifications()
    assert checked.status == RunStatus.rolled_back
    assert probe.checked() == ["set-0", "set-1", "set-0"]  # set-1 is not checked after set-0 failed
    second = record(checked, 1)
    assert (second["pending"], second["decided_by"], second["outcome"]) == (False, "checks", "inconclusive")
    assert "rolled back with set-0" in second["note"]
    assert probe.value("key0") == probe.value("key1") == "old"
