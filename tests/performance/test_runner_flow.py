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


def test_runner_keeps_a_change_it_cannot_judge_yet(tmp_path: Path, sqlite_store: StateStore) -> None:
    request, service_yaml, _ = _request(tmp_path, level=3)
    original = service_yaml.read_text()
    runner = _runner(sqlite_store, {"settle_seconds": 0})
    run = runner.submit(request).run
    # No post-change samples: verification is inconclusive and keeps the change.
    assert run.status == RunStatus.succeeded, run.reason
    assert run.actions[0].status == ActionStatus.applied
    assert "cpu: '2'" in service_yaml.read_text()
    assert run.actions[0].rollback and run.actions[0].rollback["previous_text"] == original


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
