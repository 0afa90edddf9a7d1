from __future__ import annotations

import datetime as dt

import pytest
from orchestra.config import Config
from orchestra.errors import InputError
from orchestra.scheduling import (
    Schedule,
    configured_schedules,
    latest_slot,
    next_slot,
    schedule_trigger_id,
    slots_between,
)

UTC = dt.UTC


def at(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (at(2026, 1, 5, 2, 0), at(2026, 1, 5, 2, 0)),  # exactly on the slot: due now
        (dt.datetime(2026, 1, 5, 2, 0, 0, 1, tzinfo=UTC), at(2026, 1, 5, 2, 0)),
        (dt.datetime(2026, 1, 5, 1, 59, 59, 999999, tzinfo=UTC), at(2026, 1, 4, 2, 0)),
        (at(2026, 1, 5, 23, 0), at(2026, 1, 5, 2, 0)),
    ],
)
def test_latest_slot_counts_a_slot_at_exactly_now(now: dt.datetime, expected: dt.datetime) -> None:
    assert latest_slot("0 2 * * *", now) == expected


def test_next_slot_is_strictly_after_now() -> None:
    assert next_slot("0 2 * * *", at(2026, 1, 5, 2, 0)) == at(2026, 1, 6, 2, 0)
    assert next_slot("*/30 * * * *", at(2026, 1, 5, 2, 10)) == at(2026, 1, 5, 2, 30)


def test_slots_in_other_timezones_are_compared_in_utc() -> None:
    paris = dt.timezone(dt.timedelta(hours=1))
    assert latest_slot("0 2 * * *", dt.datetime(2026, 1, 5, 3, 30, tzinfo=paris)) == at(2026, 1, 5, 2, 0)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        latest_slot("0 2 * * *", dt.datetime(2026, 1, 5, 2, 0))


def test_slots_between_is_exclusive_then_inclusive() -> None:
    slots = slots_between("0 * * * *", at(2026, 1, 5, 1, 0), at(2026, 1, 5, 4, 0))
    assert slots == [at(2026, 1, 5, 2, 0), at(2026, 1, 5, 3, 0), at(2026, 1, 5, 4, 0)]
    assert slots_between("* * * * *", at(2026, 1, 1), at(2027, 1, 1), limit=5) == [
        at(2026, 1, 1, 0, m) for m in range(1, 6)
    ]


def test_trigger_id_names_task_environment_and_utc_slot() -> None:
    assert (
        schedule_trigger_id("cost", "production", at(2026, 1, 5, 6, 0))
        == "schedule:cost:production:2026-01-05T06:00:00Z"
    )
    schedule = Schedule("cost", "0 6 * * *", "production")
    assert (
        schedule.latest_due(at(2026, 1, 5, 7, 0)).trigger_id
        == "schedule:cost:production:2026-01-05T06:00:00Z"
    )


def test_configured_schedules_target_their_environments_else_the_controllers(
    controller_config: Config,
) -> None:
    result = configured_schedules(controller_config, "staging", available=["testing", "cost", "workspace"])
    assert sorted((s.task, s.environment, s.cron) for s in result.schedules) == [
        ("cost", "production", "*/30 * * * *"),
        ("cost", "staging", "*/30 * * * *"),
        ("testing", "staging", "0 2 * * *"),
    ]
    assert result.unavailable == []  # workspace is disabled: neither scheduled nor reported


def test_configured_schedules_report_unavailable_automations(controller_config: Config) -> None:
    result = configured_schedules(controller_config, None, available=["cost"])
    assert {s.task for s in result.schedules} == {"cost"}
    assert result.unavailable == ["testing"]
    # Without --environment the configuration's default environment is the target.
    assert {
        s.environment for s in configured_schedules(controller_config).schedules if s.task == "testing"
    } == {"development"}


def test_unknown_controller_environment_is_an_input_error(controller_config: Config) -> None:
    with pytest.raises(
        InputError, match="unknown environment 'prod'.*accepted: development, staging, production"
    ):
        configured_schedules(controller_config, "prod")
