"""next_opening visits the instants a window opens or a freeze ends lazily, in time order: it
must give what checking every such instant up to the horizon gives."""

from __future__ import annotations

import datetime as dt
import random
from zoneinfo import ZoneInfo

import pytest
from orchestra.automations.deployment.settings import DAYS, EnvironmentPolicy, Freeze, Window, minutes
from orchestra.automations.deployment.windows import HORIZON_DAYS, is_open, next_opening

T0 = dt.datetime(2026, 3, 20, 6, 0, tzinfo=dt.UTC)  # a week before the European DST change


def every_candidate(policy: EnvironmentPolicy, after: dt.datetime) -> dt.datetime | None:
    """The reference: all openings and freeze ends up to the horizon, sorted, the first open."""
    if is_open(policy, after):
        return after
    candidates = {f.end for f in policy.freezes if f.end > after}
    for window in policy.windows:
        tz = ZoneInfo(window.timezone)
        first = after.astimezone(tz).date()
        hours, mins = divmod(minutes(window.start), 60)
        for offset in range(HORIZON_DAYS + 1):
            day = first + dt.timedelta(days=offset)
            if DAYS[day.weekday()] in window.days:
                start = dt.datetime(day.year, day.month, day.day, hours, mins, tzinfo=tz).astimezone(dt.UTC)
                if start > after:
                    candidates.add(start)
    for candidate in sorted(candidates):
        if candidate - after > dt.timedelta(days=HORIZON_DAYS):
            break
        if is_open(policy, candidate):
            return candidate
    return None


def random_policy(rng: random.Random) -> EnvironmentPolicy:
    windows = []
    for _ in range(rng.randint(0, 3)):
        start = rng.randrange(0, 23 * 60, 30)
        end = rng.randrange(start + 30, 24 * 60 + 1, 30)
        windows.append(
            Window(
                days=rng.sample(list(DAYS), rng.randint(1, 7)),
                start=f"{start // 60:02d}:{start % 60:02d}",
                end=f"{end // 60:02d}:{end % 60:02d}",
                timezone=rng.choice(["UTC", "Europe/Paris", "America/New_York", "Australia/Sydney"]),
            )
        )
    freezes = []
    for _ in range(rng.randint(0, 3)):
        begin = T0 + dt.timedelta(hours=rng.randint(-48, 24 * 50))
        freezes.append(Freeze(start=begin, end=begin + dt.timedelta(hours=rng.randint(1, 24 * 20))))
    return EnvironmentPolicy(windows=windows, freezes=freezes)


@pytest.mark.parametrize("seed", range(30))
def test_next_opening_matches_checking_every_candidate(seed: int) -> None:
    rng = random.Random(seed)
    policy = random_policy(rng)
    for _ in range(20):
        after = T0 + dt.timedelta(minutes=rng.randint(0, 60 * 24 * 40))
        assert next_opening(policy, after) == every_candidate(policy, after)
