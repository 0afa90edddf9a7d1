from __future__ import annotations

from collections.abc import Iterator

import pytest
from orchestra.clock import FakeClock
from orchestra.config import Config, parse_config

RUNNER_CONFIG = """
default_environment: development
environments:
  development: {automation_level: 1}
  production: {automation_level: 1, protected: true, approval_required_risk: high}
runner:
  retry: {attempts: 3, initial_seconds: 0.5, max_seconds: 4, max_deliveries: 5}
  breaker: {failure_threshold: 2, window_seconds: 3600, open_seconds: 60, probe_lease_seconds: 30}
  lease: {seconds: 1, heartbeat_seconds: 0.3, on_expiry: retry}
  approval_ttl_hours: 1
"""


@pytest.fixture
def runner_config() -> Config:
    return parse_config(RUNNER_CONFIG, "runner-test-config")


@pytest.fixture
def clock() -> Iterator[FakeClock]:
    yield FakeClock()
