"""Injected time and identifiers, so tests are deterministic."""

from __future__ import annotations

import datetime as dt
import os
import random
import socket
import time
import uuid
from typing import Protocol

UTC = dt.UTC


class Clock(Protocol):
    def now(self) -> dt.datetime: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class FakeClock:
    """A clock that only moves when told to (``sleep`` advances it)."""

    def __init__(self, start: dt.datetime | None = None) -> None:
        self._now = start or dt.datetime(2026, 1, 5, 12, 0, tzinfo=UTC)

    def now(self) -> dt.datetime:
        return self._now

    def sleep(self, seconds: float) -> None:
        self._now += dt.timedelta(seconds=seconds)

    def advance(self, seconds: float = 0, **kwargs: float) -> None:
        self._now += dt.timedelta(seconds=seconds, **kwargs)

    def set(self, when: dt.datetime) -> None:
        self._now = when


class IdSource(Protocol):
    def new_id(self, prefix: str = "") -> str: ...

    def random(self) -> float: ...


class RandomIds:
    def __init__(self, seed: int | None = None) -> None:
        self._rng = random.Random(seed)
        self._seeded = seed is not None

    def new_id(self, prefix: str = "") -> str:
        value = uuid.UUID(int=self._rng.getrandbits(128)) if self._seeded else uuid.uuid4()
        return f"{prefix}{value.hex[:20]}"

    def random(self) -> float:
        return self._rng.random()


def process_owner() -> str:
    """A lease owner name that is unique per process and readable in `runs list`."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def utcnow() -> dt.datetime:
    return dt.datetime.now(UTC)


def isoformat(when: dt.datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")
