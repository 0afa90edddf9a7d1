"""A service with a manifest is sized from the manifest, never from a stale configuration, and
never below its observed peak memory plus headroom."""

from __future__ import annotations

import numpy as np
from orchestra.actuators.base import ServiceConfig
from orchestra.actuators.rules import ServiceFacts
from orchestra.automations.cost import RunService, WasteSettings
from orchestra.automations.cost.waste import TargetState, as_targeted, disagreements, rightsize
from orchestra.metrics.base import make_series


def series(metric: str, level: float) -> object:
    t = np.arange(300, dtype=np.int64) * 300_000 + 1_700_000_000_000
    return make_series(metric, t, np.full(t.shape, level), "synthetic")


def test_manifest_configuration_wins_over_stale_settings() -> None:
    stale = RunService(name="api", vcpu=8, memory_gib=2, manifest="service.yaml")
    state = TargetState(ServiceConfig(cpu=4, memory_mib=12 * 1024), ServiceFacts(), "read from service.yaml")
    differ = disagreements(stale, state)
    assert differ["vcpu"] == {"configured": 8, "actual": 4.0}
    assert differ["memory_gib"] == {"configured": 2, "actual": 12.0}
    service = as_targeted(stale, state)
    # 9 GiB of 12 used at peak, CPU mostly idle.
    sized = rightsize(
        service, series("cpu", 5), series("memory", 75), WasteSettings(), memory_limit_percent=80, state=state
    )
    assert sized is not None
    vcpu, memory_gib, evidence = sized
    assert memory_gib >= 9 * 1.15 and memory_gib <= 12
    assert evidence["memory_peak_gib"] == 9.0
    # And had the stale settings been trusted, memory would have been sized from 2 GiB.
    assert rightsize(stale, series("cpu", 5), series("memory", 75), WasteSettings())[1] < 9


def test_fractional_service_is_sized_within_fractional_cpu() -> None:
    config = ServiceConfig(cpu=0.5, memory_mib=1024, concurrency=1)
    service = RunService(name="tiny", vcpu=0.5, memory_gib=1, manifest="tiny.yaml")
    state = TargetState(config, ServiceFacts(execution_environment="gen1"), "file")
    sized = rightsize(service, series("cpu", 10), series("memory", 20), WasteSettings(), state=state)
    assert sized is not None and sized[0] < 0.5 and sized[1] <= 0.5
