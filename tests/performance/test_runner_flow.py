"""Through the real runner: apply mode, gates, verification and rollback from the stored action."""

from __future__ import annotations

from pathlib import Path

from orchestra.clock import FakeClock, RandomIds
from orchestra.config import AutomationConfig
from orchestra.inputs import Origin
from orchestra.models import ActionStatus, Mode, RunStatus
from orchestra.registry import Registry
from orchestra.runner import Runner, RunRequest
from orchestra.store.base import StateStore

from .helpers import CPU_HIGH, copy_yaml, csv_rows, default_config, write_csv


def _runner(store: StateStore, settings: dict[str, object]) -> Runner:
    config = default_config()
    config.automations["performance"] = AutomationConfig(settings=settings)
    registry = Registry({"performance": "orchestra.automations.performance:PerformanceAutomation"})
    return Runner(
        config, store, clock=FakeClock(), ids=RandomIds(3), registry=registry, heartbeat_in_background=False
    )


def _request(tmp_path: Path, level: int, environment: str = "development") -> tuple[RunRequest, Path, Path]:
    service_yaml = copy_yaml(tmp_path)
    cpu = write_csv(tmp_path / "cpu.csv", csv_rows(CPU_HIGH)[:2000])
    request = RunRequest(
        origin=Origin.local,
        task="performance",
        environment=environment,
        mode=Mode.apply,
        automation_level=level,
        params={"metrics": {"cpu": str(cpu)}, "service_yaml": str(service_yaml)},
        trigger_id=f"t-{level}-{environment}",
    )
    return request, service_yaml, cpu


def test_a_change_it_cannot_judge_yet_waits_for_verification(
    tmp_path: Path, sqlite_store: StateStore
) -> None:
    request, service_yaml, cpu = _request(tmp_path, level=3)
    original = service_yaml.read_text()
    runner = _runner(sqlite_store, {"settle_seconds": 0})
    run = runner.submit(request).run
    # No post-change samples: inconclusive, so neither kept for good nor rolled back yet.
    assert run.status == RunStatus.awaiting_verification, run.reason
    assert run.actions[0].status == ActionStatus.applied and run.actions[0].verified is None
    record = run.actions[0].result["verification"]
    assert (record["outcome"], record["pending"], record["decided_by"]) == ("inconclusive", True, None)
    assert record["window_ends_at"] == "2026-01-05T13:00:00.000000Z"  # development: 60 min
    assert record["checks"][0]["verdict"] == "inconclusive"
    assert "no samples after the change yet" in (run.reason or "")
    assert "cpu: '2'" in service_yaml.read_text()
    assert run.actions[0].rollback and run.actions[0].rollback["previous_text"] == original

    # Cooler samples arrive; the next pass checks again and the change is verified.
    cpu.write_text(cpu.read_text() + "2014-04-17 02:44:00,41.0\n2014-04-17 02:49:00,40.5\n")
    assert isinstance(runner.clock, FakeClock)
    runner.clock.advance(minutes=20)
    (checked,) = runner.recheck_verifications()
    assert checked.status == RunStatus.succeeded, checked.reason
    record = checked.actions[0].result["verification"]
    assert (record["outcome"], record["decided_by"], record["attempts"]) == ("passed", "checks", 2)
    assert record["checks"][0]["verdict"] == "better"
    assert checked.actions[0].verified is True
    assert "cpu: '2'" in service_yaml.read_text()
    assert sqlite_store.get_run(run.id).status == RunStatus.succeeded  # type: ignore[union-attr]


def test_production_rolls_back_a_change_still_unproven_when_the_window_ends(
    tmp_path: Path, sqlite_store: StateStore
) -> None:
    request, service_yaml, _ = _request(tmp_path, level=3, environment="production")
    original = service_yaml.read_text()
    runner = _runner(sqlite_store, {"settle_seconds": 0})
    run = runner.submit(request).run
    assert run.status == RunStatus.awaiting_verification, run.reason
    assert "production's policy (verification.on_inconclusive: rollback)" in (run.reason or "")
    assert isinstance(runner.clock, FakeClock)
    runner.clock.advance(minutes=61)
    # The next performance run in production checks it first: still no samples, window over.
    later = RunRequest(**{**request.__dict__, "mode": Mode.analyze, "trigger_id": "later"})
    runner.submit(later)
    stored = sqlite_store.get_run(run.id)
    assert stored is not None and stored.status == RunStatus.rolled_back, stored and stored.reason
    record = stored.actions[0].result["verification"]
    assert (record["outcome"], record["decided_by"]) == ("inconclusive", "policy:rollback")
    assert "rolled back by production's policy" in (stored.reason or "")
    assert service_yaml.read_text() == original


def test_runner_rolls_back_on_worse_metric(tmp_path: Path, sqlite_store: StateStore) -> None:
    request, service_yaml, cpu = _request(tmp_path, level=3)
    original = service_yaml.read_text()
    runner = _runner(sqlite_store, {"settle_seconds": 120})

    # The clock's sleep is the settle period: new samples "arrive" while verification waits.
    sleep = runner.clock.sleep

    def settle(seconds: float) -> None:
        sleep(seconds)
        cpu.write_text(cpu.read_text() + "2014-04-17 02:44:00,99.9\n2014-04-17 02:49:00,99.8\n")

    runner.clock.sleep = settle  # type: ignore[method-assign]
    run = runner.submit(request).run
    assert run.status == RunStatus.rolled_back, run.reason
    assert run.actions[0].status == ActionStatus.rolled_back
    assert run.actions[0].result["verification"]["checks"][0]["verdict"] == "worse"
    assert service_yaml.read_text() == original


def test_production_gate_holds_medium_risk_at_low_level(tmp_path: Path, sqlite_store: StateStore) -> None:
    request, service_yaml, _ = _request(tmp_path, level=1, environment="production")
    original = service_yaml.read_text()
    run = _runner(sqlite_store, {"settle_seconds": 0}).submit(request).run
    assert run.actions[0].status != ActionStatus.applied
    assert service_yaml.read_text() == original
