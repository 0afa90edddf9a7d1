"""Deployment windows and freezes: may an environment be deployed to at a given instant?"""

from __future__ import annotations

import datetime as dt
import heapq
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import chain
from zoneinfo import ZoneInfo

from ...models import format_timestamp
from .settings import DAYS, EnvironmentPolicy, Freeze, Window, minutes

# How far ahead to look for the next opening (a freeze can span weeks).
HORIZON_DAYS = 60


@dataclass(frozen=True)
class WindowStatus:
    open: bool
    reason: str
    next_open: dt.datetime | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "open": self.open,
            "reason": self.reason,
            "next_open": format_timestamp(self.next_open) if self.next_open else None,
        }


def in_window(window: Window, when: dt.datetime) -> bool:
    local = when.astimezone(ZoneInfo(window.timezone))
    if DAYS[local.weekday()] not in window.days:
        return False
    now_minutes = local.hour * 60 + local.minute
    return minutes(window.start) <= now_minutes < minutes(window.end)


def active_freeze(freezes: list[Freeze], when: dt.datetime) -> Freeze | None:
    for freeze in freezes:
        if freeze.start <= when < freeze.end:
            return freeze
    return None


def is_open(policy: EnvironmentPolicy, when: dt.datetime) -> bool:
    if active_freeze(policy.freezes, when):
        return False
    return not policy.windows or any(in_window(w, when) for w in policy.windows)


def _window_starts(window: Window, after: dt.datetime) -> Iterator[dt.datetime]:
    """The window's openings from the local day of ``after`` on, in order, up to the horizon."""
    tz = ZoneInfo(window.timezone)
    first = after.astimezone(tz).date()
    hours, mins = divmod(minutes(window.start), 60)
    days = frozenset(window.days)
    for offset in range(HORIZON_DAYS + 1):
        day = first + dt.timedelta(days=offset)
        if DAYS[day.weekday()] in days:
            # A start inside a DST gap resolves to the instant after the gap (fold=0 semantics).
            yield dt.datetime(day.year, day.month, day.day, hours, mins, tzinfo=tz).astimezone(dt.UTC)


def next_opening(policy: EnvironmentPolicy, after: dt.datetime) -> dt.datetime | None:
    """The first instant at or after ``after`` when deploying is allowed (None beyond the horizon).

    Deploying becomes allowed only when a window opens or a freeze ends: those instants are
    visited in time order, lazily, and the first one open is the answer."""
    if is_open(policy, after):
        return after
    horizon = after + dt.timedelta(days=HORIZON_DAYS)
    freeze_ends = sorted({f.end for f in policy.freezes if f.end > after})
    starts = [(s for s in _window_starts(w, after) if s > after) for w in policy.windows]
    # A freeze's end goes in before the window openings it precedes (few ends: no heap for them).
    openings = starts[0] if len(starts) == 1 else heapq.merge(*starts)
    ends = iter(freeze_ends)
    next_end = next(ends, None)
    previous = None
    for start in chain(openings, (None,)):
        while next_end is not None and (start is None or next_end <= start):
            candidate, next_end = next_end, next(ends, None)
            if candidate > horizon:
                return None
            if candidate != previous and is_open(policy, candidate):
                return candidate
            previous = candidate
        if start is None or start > horizon:
            return None
        if start != previous and is_open(policy, start):
            return start
        previous = start
    return None


def window_status(policy: EnvironmentPolicy, now: dt.datetime) -> WindowStatus:
    freeze = active_freeze(policy.freezes, now)
    if freeze is not None:
        return WindowStatus(
            False,
            f"change freeze until {format_timestamp(freeze.end)}: {freeze.reason}",
            next_opening(policy, now),
        )
    if not policy.windows:
        return WindowStatus(True, "no deployment window configured: any time")
    for window in policy.windows:
        if in_window(window, now):
            return WindowStatus(True, f"inside window {describe_window(window)}")
    windows = "; ".join(describe_window(w) for w in policy.windows)
    return WindowStatus(False, f"outside deployment window ({windows})", next_opening(policy, now))


def describe_window(window: Window) -> str:
    return f"{','.join(window.days)} {window.start}-{window.end} {window.timezone}"
