"""Deployment windows and freezes: open/closed, next opening, time zones, configuration errors."""

from __future__ import annotations

import datetime as dt

import pytest
from orchestra.automations.deployment.settings import CommandDeployerConfig, EnvironmentPolicy, Freeze, Window
from orchestra.automations.deployment.windows import is_open, next_opening, window_status
from pydantic import ValidationError

UTC = dt.UTC
MON_THU = Window(days=["mon", "tue", "wed", "thu"], start="09:00", end="16:00")


def at(y: int, m: int, d: int, hh: int, mm: int = 0) -> dt.datetime:
    return dt.datetime(y, m, d, hh, mm, tzinfo=UTC)


@pytest.mark.parametrize(
    ("when", "open_"),
    [
        (at(2026, 1, 8, 8, 59), False),  # Thursday before the start
        (at(2026, 1, 8, 9, 0), True),  # start is inclusive
        (at(2026, 1, 8, 15, 59), True),
        (at(2026, 1, 8, 16, 0), False),  # end is exclusive
        (at(2026, 1, 9, 10, 0), False),  # Friday
        (at(2026, 1, 11, 10, 0), False),  # Sunday
    ],
)
def test_window_edges(when, open_):
    assert is_open(EnvironmentPolicy(windows=[MON_THU]), when) is open_


def test_next_opening_skips_the_weekend():
    policy = EnvironmentPolicy(windows=[MON_THU])
    assert next_opening(policy, at(2026, 1, 8, 16, 0)) == at(2026, 1, 12, 9, 0)
    assert next_opening(policy, at(2026, 1, 12, 9, 30)) == at(2026, 1, 12, 9, 30)


def test_windows_follow_their_time_zone_across_daylight_saving():
    paris = Window(
        days=["mon", "tue", "wed", "thu", "fri"], start="09:00", end="12:00", timezone="Europe/Paris"
    )
    policy = EnvironmentPolicy(windows=[paris])
    # Winter: 09:00 Paris = 08:00 UTC; summer: 07:00 UTC.
    assert is_open(policy, at(2026, 1, 6, 8, 0)) and not is_open(policy, at(2026, 1, 6, 7, 30))
    assert is_open(policy, at(2026, 7, 7, 7, 0)) and not is_open(policy, at(2026, 7, 7, 10, 0))
    # Friday 27 March 2026 after the window -> Monday 30 March, after the clocks changed.
    assert next_opening(policy, at(2026, 3, 27, 12, 0)) == at(2026, 3, 30, 7, 0)


def test_freeze_inside_a_window_and_the_opening_after_it():
    freeze = Freeze(start=at(2026, 1, 12, 0, 0), end=at(2026, 1, 13, 11, 30), reason="release freeze")
    policy = EnvironmentPolicy(windows=[MON_THU], freezes=[freeze])
    status = window_status(policy, at(2026, 1, 12, 10, 0))
    assert not status.open and "release freeze" in status.reason
    assert status.next_open == at(2026, 1, 13, 11, 30)
    # A freeze ending outside any window opens at the next window start.
    late = EnvironmentPolicy(
        windows=[MON_THU], freezes=[Freeze(start=at(2026, 1, 8, 0), end=at(2026, 1, 8, 20))]
    )
    assert next_opening(late, at(2026, 1, 8, 10, 0)) == at(2026, 1, 12, 9, 0)


def test_no_window_means_any_time_unless_frozen():
    assert window_status(EnvironmentPolicy(), at(2026, 1, 10, 3, 0)).open
    frozen = EnvironmentPolicy(freezes=[Freeze(start=at(2026, 1, 1, 0), end=at(2026, 2, 1, 0))])
    assert not window_status(frozen, at(2026, 1, 10, 3, 0)).open


@pytest.mark.parametrize(
    ("window", "message"),
    [
        ({"days": ["mon"], "start": "9:00", "end": "16:00"}, "expected HH:MM"),
        ({"days": ["mon"], "start": "16:00", "end": "09:00"}, "must be before end"),
        ({"days": ["monday"], "start": "09:00", "end": "16:00"}, "days"),
        (
            {"days": ["mon"], "start": "09:00", "end": "16:00", "timezone": "Mars/Olympus"},
            "unknown time zone",
        ),
    ],
)
def test_bad_windows_are_configuration_errors(window, message):
    with pytest.raises(ValidationError, match=message):
        Window.model_validate(window)


@pytest.mark.parametrize(
    "argv",
    [
        ["sh", "-c", "deploy {revision}"],
        ["./deploy", "--revision={revision}"],
        ["./deploy", "{nonsense}"],
    ],
)
def test_placeholders_must_be_whole_known_arguments(argv):
    with pytest.raises(ValidationError, match="placeholder"):
        CommandDeployerConfig.model_validate({"type": "command", "deploy": [argv]})
    CommandDeployerConfig.model_validate(
        {"type": "command", "deploy": [["./deploy", "--revision", "{revision}"]]}
    )
