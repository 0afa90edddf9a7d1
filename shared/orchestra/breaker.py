"""Circuit breakers whose state lives in the store, so every function instance sees the same one.

Semantics (configurable under ``runner.breaker``):
- CLOSED: calls pass. ``failure_threshold`` consecutive failures, the first no older than
  ``window_seconds``, open the breaker. A success resets the count.
- OPEN: calls are refused (runs are recorded as ``skipped`` with the reason) for ``open_seconds``.
- HALF_OPEN: after ``open_seconds`` exactly one caller may probe; the probe is a lease on the
  breaker document (``probe_owner`` / ``probe_expires_at``) taken by compare-and-set, so two
  instances never probe at once, and a probe whose owner died expires. Probe success closes the
  breaker; probe failure opens it again.

Callers consult a breaker only through ``before_call`` (which takes the probe when one is due)
or ``peek`` (the same answer, read-only); the stored state alone cannot say whether an open
breaker is due for its probe.

The healthy path reads one document and writes nothing: state is written only on transitions
and while failures accumulate. With a :class:`ClosedCache` (the runner keeps one per instance,
``runner.breaker.cache_seconds``, default 5) it reads nothing either: a breaker this instance read
closed with no failures is trusted for that long. So a breaker opened by another instance is
honoured here within ``cache_seconds``, and a success here does not reset failures another
instance recorded within that time (they count as if consecutive). This instance's own failure,
probe hand-back or reset forgets the cached state at once; open, half-open and failing states are
never cached. ``cache_seconds: 0`` reads the breaker before every call.

Transitions are announced (:mod:`orchestra.announcements`, through the process's announcer):
``dev.orchestra.breaker.opened.v1`` when a closed or half-open breaker opens,
``dev.orchestra.breaker.closed.v1`` when a half-open probe succeeds or an open or half-open
breaker is reset. Staying open (a late failure) and taking a probe are not announced.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from . import announcements
from .clock import Clock
from .config import BreakerConfig
from .errors import InputError, TransientError
from .models import Timestamp, format_timestamp, safe_doc_id
from .store.base import BREAKERS, StateStore


class BreakerState(StrEnum):
    closed = "closed"
    open = "open"
    half_open = "half_open"


class BreakerRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    id: str
    name: str
    state: BreakerState = BreakerState.closed
    failures: int = 0
    first_failure_at: Timestamp | None = None
    opened_at: Timestamp | None = None
    probe_owner: str | None = None
    probe_expires_at: Timestamp | None = None
    last_error: str | None = None
    updated_at: Timestamp
    version: int = 0


@dataclass(frozen=True)
class Permit:
    allowed: bool
    probe: bool = False
    reason: str | None = None
    # The breaker had no failures on record when the call started: a success changes nothing.
    clean: bool = False


T = TypeVar("T")


class DependencyUnavailable(TransientError):
    """A dependency's breaker is open: the call was not attempted."""


# Every reason a refused call gets starts with this, so a run skipped by a breaker can be told
# from one skipped for another reason (an expired approval, a rejection).
REASON_PREFIX = "circuit "


class ClosedCache:
    """Breakers this instance read closed with no failures, trusted for ``seconds`` of the
    injected clock (see the module docstring). Thread-safe; shared by every breaker of a runner."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._until: dict[str, dt.datetime] = {}
        self._lock = threading.Lock()

    def fresh(self, name: str, now: dt.datetime) -> bool:
        with self._lock:
            until = self._until.get(name)
            return until is not None and now < until

    def remember(self, name: str, now: dt.datetime) -> None:
        if self.seconds <= 0:
            return
        with self._lock:
            self._until[name] = now + dt.timedelta(seconds=self.seconds)

    def forget(self, name: str) -> None:
        with self._lock:
            self._until.pop(name, None)


def automation_breaker_name(task: str, environment: str) -> str:
    return f"automation:{task}:{environment}"


def is_params_error(exc: BaseException, automation: object) -> bool:
    """A pydantic error raised by validating the automation's ``Params`` model (the trigger's
    parameters), as opposed to one from the automation's own models."""
    params_model = getattr(automation, "Params", None)
    return (
        isinstance(exc, ValidationError) and params_model is not None and exc.title == params_model.__name__
    )


def is_bad_input(exc: BaseException, automation: object = None) -> bool:
    """The caller's fault (a permanent input error): recorded against the run, never counted by a
    breaker. Breakers count failures of the automation and of its dependencies, and transient
    faults; a trigger with a bad file or parameter says nothing about either."""
    return isinstance(exc, InputError) or is_params_error(exc, automation)


def skipped_by_breaker(status: str, reason: str | None) -> bool:
    """A run recorded as skipped because its breaker refused it (open, or half-open with another
    instance probing)."""
    return status == "skipped" and reason is not None and reason.startswith(REASON_PREFIX)


def dependency_breaker_name(dependency: str) -> str:
    return f"dependency:{dependency}"


class CircuitBreaker:
    def __init__(
        self,
        store: StateStore,
        name: str,
        config: BreakerConfig,
        clock: Clock,
        *,
        cache: ClosedCache | None = None,
    ) -> None:
        self.store = store
        self.name = name
        self.doc_id = safe_doc_id(name)
        self.config = config
        self.clock = clock
        self.cache = cache

    def _forget(self) -> None:
        if self.cache is not None:
            self.cache.forget(self.name)

    def read(self) -> BreakerRecord | None:
        doc = self.store.get(BREAKERS, self.doc_id)
        return BreakerRecord.model_validate(doc) if doc else None

    def _announce(self, record: BreakerRecord, *, opened: bool) -> None:
        open_until = (
            record.opened_at + dt.timedelta(seconds=self.config.open_seconds)
            if opened and record.opened_at
            else None
        )
        announcer = announcements.current()
        announcements.announce_safely(
            f"breaker {self.name} {'opened' if opened else 'closed'}",
            announcer.breaker_changed,
            self.name,
            opened=opened,
            failures=record.failures,
            open_until=open_until,
        )

    def _write(self, new: BreakerRecord, old: BreakerRecord | None) -> bool:
        data = new.model_dump(mode="json")
        if old is None:
            return self.store.create(BREAKERS, self.doc_id, data)
        return self.store.update_if(BREAKERS, self.doc_id, data, expect={"version": old.version})

    def _refusal(self, record: BreakerRecord | None, owner: str, now: dt.datetime) -> Permit | None:
        """What the stored state says about a call by ``owner`` at ``now``: a permit when the
        answer needs no write (closed: pass; open and not yet due: refused; half-open: the
        owner's own probe, or refused while another owner's probe lease is live), else None:
        the caller may take the probe."""
        if record is None or record.state == BreakerState.closed:
            return Permit(allowed=True, clean=record is None or record.failures == 0)
        if record.state == BreakerState.open:
            assert record.opened_at is not None
            retry_at = record.opened_at + dt.timedelta(seconds=self.config.open_seconds)
            if now < retry_at:
                return Permit(
                    allowed=False,
                    reason=(
                        f"{REASON_PREFIX}{self.name} open since {format_timestamp(record.opened_at)} after "
                        f"{record.failures} failures (last: {record.last_error}); "
                        f"next probe after {format_timestamp(retry_at)}"
                    ),
                )
        elif record.state == BreakerState.half_open:
            if record.probe_owner == owner:
                return Permit(allowed=True, probe=True)
            if record.probe_expires_at and record.probe_expires_at > now:
                return Permit(
                    allowed=False,
                    reason=f"{REASON_PREFIX}{self.name} half-open: probe in progress by {record.probe_owner}",
                )
        return None

    def peek(self, owner: str) -> Permit:
        """What ``before_call(owner)`` would answer now, without taking a probe or writing
        anything: for deciding whether to propose a call (an analysis, a report). An open
        breaker whose ``open_seconds`` have passed answers allowed (as a probe), so whoever
        proposes the call goes on to ``before_call``, which takes the probe."""
        record = self.read()
        return self._refusal(record, owner, self.clock.now()) or Permit(allowed=True, probe=True)

    def before_call(self, owner: str) -> Permit:
        cache = self.cache
        if cache is not None and cache.fresh(self.name, self.clock.now()):
            return Permit(allowed=True, clean=True)
        for _ in range(5):
            now = self.clock.now()
            record = self.read()
            decided = self._refusal(record, owner, now)
            if decided is not None:
                if cache is not None and decided.clean:
                    cache.remember(self.name, now)
                return decided
            assert record is not None  # a missing record is closed
            probe = record.model_copy(
                update={
                    "state": BreakerState.half_open,
                    "probe_owner": owner,
                    "probe_expires_at": now + dt.timedelta(seconds=self.config.probe_lease_seconds),
                    "updated_at": now,
                    "version": record.version + 1,
                }
            )
            if self._write(probe, record):
                return Permit(allowed=True, probe=True)
        return Permit(allowed=False, reason=f"{REASON_PREFIX}{self.name}: contention while taking the probe")

    def record_success(self, permit: Permit | None = None) -> None:
        if permit is not None and permit.clean:
            return  # healthy path: no read, no write
        for _ in range(5):
            record = self.read()
            if record is None or (record.state == BreakerState.closed and record.failures == 0):
                return  # healthy path: nothing to write
            if record.state == BreakerState.open:
                return  # a late success from before the breaker opened does not close it
            closed = record.model_copy(
                update={
                    "state": BreakerState.closed,
                    "failures": 0,
                    "first_failure_at": None,
                    "opened_at": None,
                    "probe_owner": None,
                    "probe_expires_at": None,
                    "updated_at": self.clock.now(),
                    "version": record.version + 1,
                }
            )
            if self._write(closed, record):
                if record.state == BreakerState.half_open:
                    self._announce(closed, opened=False)
                return

    def release_probe(self, owner: str, permit: Permit | None = None) -> None:
        """Hand back a half-open probe without a verdict (the call failed on its input, which
        proves nothing either way): the breaker stays half-open and the next caller probes."""
        if permit is None or not permit.probe:
            return
        self._forget()
        for _ in range(5):
            record = self.read()
            if record is None or record.state != BreakerState.half_open or record.probe_owner != owner:
                return
            released = record.model_copy(
                update={
                    "probe_owner": None,
                    "probe_expires_at": None,
                    "updated_at": self.clock.now(),
                    "version": record.version + 1,
                }
            )
            if self._write(released, record):
                return

    def record_failure(self, error: str, permit: Permit | None = None) -> BreakerState:
        self._forget()
        for _ in range(5):
            now = self.clock.now()
            record = self.read()
            base = record or BreakerRecord(id=self.doc_id, name=self.name, updated_at=now)
            update: dict[str, object] = {
                "last_error": error[:500],
                "updated_at": now,
                "version": base.version + 1,
            }
            if base.state == BreakerState.half_open or base.state == BreakerState.open:
                update |= {
                    "state": BreakerState.open,
                    "opened_at": now,
                    "failures": base.failures + 1,
                    "probe_owner": None,
                    "probe_expires_at": None,
                }
            else:
                window_start = now - dt.timedelta(seconds=self.config.window_seconds)
                fresh = base.first_failure_at is None or base.first_failure_at < window_start
                failures = 1 if fresh else base.failures + 1
                update |= {"failures": failures, "first_failure_at": now if fresh else base.first_failure_at}
                if failures >= self.config.failure_threshold:
                    update |= {"state": BreakerState.open, "opened_at": now}
            new = base.model_copy(update=update)
            if self._write(new, record):
                if new.state == BreakerState.open and base.state != BreakerState.open:
                    self._announce(new, opened=True)
                return new.state
        raise RuntimeError(f"circuit {self.name}: could not record a failure under contention")

    def reset(self) -> None:
        self._forget()
        now = self.clock.now()
        record = self.read()
        fresh = BreakerRecord(
            id=self.doc_id, name=self.name, updated_at=now, version=(record.version + 1) if record else 0
        )
        self.store.put(BREAKERS, self.doc_id, fresh.model_dump(mode="json"))
        if record is not None and record.state != BreakerState.closed:
            self._announce(fresh, opened=False)


def list_breakers(store: StateStore) -> list[BreakerRecord]:
    return [BreakerRecord.model_validate(d) for d in store.query(BREAKERS, order_by="name")]


def find_breaker(store: StateStore, name: str) -> BreakerRecord | None:
    doc = store.get(BREAKERS, safe_doc_id(name))
    return BreakerRecord.model_validate(doc) if doc else None


def call_dependency(
    store: StateStore, config: BreakerConfig, clock: Clock, owner: str, dependency: str, fn: Callable[[], T]
) -> T:
    """Call an external dependency (an API, a deployer) behind its own breaker.

    Failures other than bad input count against the dependency; while its breaker is open the
    call is refused with ``DependencyUnavailable`` (transient: the trigger is retried later).
    """
    breaker = CircuitBreaker(store, dependency_breaker_name(dependency), config, clock)
    permit = breaker.before_call(owner)
    if not permit.allowed:
        raise DependencyUnavailable(permit.reason or f"dependency {dependency} unavailable")
    try:
        result = fn()
    except InputError:
        breaker.release_probe(owner, permit)
        raise
    except Exception as exc:
        breaker.record_failure(f"{type(exc).__name__}: {exc}", permit)
        raise
    breaker.record_success(permit)
    return result
