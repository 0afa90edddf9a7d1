"""This hour's min-instances decision and the scaling changes it leads to."""

from __future__ import annotations

from orchestra.actuators.base import ServiceConfig
from orchestra.automations.infrastructure.engine import _decide_min_instances, _scaling_changes


def config(min_instances: int, max_instances: int = 10) -> ServiceConfig:
    return ServiceConfig(min_instances=min_instances, max_instances=max_instances)


def test_the_schedule_is_followed_upwards() -> None:
    decision = _decide_min_instances(4, config(1), recent_need=0)
    assert decision == {"scheduled_min": 4, "current_min": 1, "min_instances": 4}


def test_lowering_stops_at_what_current_demand_needs() -> None:
    decision = _decide_min_instances(1, config(5), recent_need=3)
    assert decision["min_instances"] == 3
    assert decision["held_at"] == 3
    assert "current demand needs 3 instance(s)" in decision["reason"]


def test_lowering_never_goes_above_the_current_setting() -> None:
    assert _decide_min_instances(1, config(2), recent_need=7)["min_instances"] == 2


def test_lowering_follows_the_schedule_when_current_demand_is_low() -> None:
    decision = _decide_min_instances(1, config(5), recent_need=1)
    assert decision == {"scheduled_min": 1, "current_min": 5, "min_instances": 1}


def test_without_current_demand_data_nothing_is_lowered() -> None:
    decision = _decide_min_instances(0, config(3), recent_need=None)
    assert decision["min_instances"] == 3
    assert decision["reason"] == "no current demand data: not lowering on a forecast alone"
    # Raising needs no current demand data.
    assert _decide_min_instances(5, config(3), recent_need=None)["min_instances"] == 5


def test_scaling_changes() -> None:
    assert _scaling_changes(config(2, 10), desired_min=2, max_needed=8) == {}
    assert _scaling_changes(config(2, 10), desired_min=4, max_needed=8) == {"min_instances": 4}
    # Max instances rise to what peak demand needs ...
    assert _scaling_changes(config(2, 5), desired_min=2, max_needed=8) == {"max_instances": 8}
    # ... and never below the new min instances.
    assert _scaling_changes(config(2, 5), desired_min=12, max_needed=8) == {
        "min_instances": 12,
        "max_instances": 12,
    }
