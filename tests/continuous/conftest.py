from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from orchestra.clock import FakeClock
from orchestra.config import Config, parse_config
from orchestra.registry import Registry

from tests.continuous.automations import build_registry

# Names must be product automation names (the configuration rejects others); the test registry
# maps them to small automations.
CONTROLLER_CONFIG = """
default_environment: development
environments:
  development: {automation_level: 1}
  staging: {automation_level: 1}
  production: {automation_level: 1, protected: true, approval_required_risk: high}
thresholds:
  cpu: {metric: cpu, above: 70, for_minutes: 15, focus: cpu}
  latency_p95: {metric: latency_p95, above: 500, for_minutes: 5, environments: [production], focus: latency}
automations:
  testing:
    schedule: "0 2 * * *"
  cost:
    schedule: "*/30 * * * *"
    environments: [staging, production]
  workspace:
    schedule: "0 3 * * 0"
    enabled: false
runner:
  lease: {seconds: 2, heartbeat_seconds: 0.5}
"""


@pytest.fixture
def controller_config() -> Config:
    return parse_config(CONTROLLER_CONFIG, "controller-test-config")


@pytest.fixture
def clock() -> FakeClock:
    # A Monday, well after the night's 02:00 slot.
    return FakeClock(dt.datetime(2026, 1, 5, 12, 10, tzinfo=dt.UTC))


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture
def test_registry(workdir: Path) -> Registry:
    return build_registry(workdir)
