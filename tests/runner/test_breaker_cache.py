"""A runner trusts a breaker it read closed with no failures for ``runner.breaker.cache_seconds``
of its clock: the healthy path reads no breaker document, a breaker opened by another instance is
honoured within that time, and this instance's own failures are seen at once."""

from __future__ import annotations

from typing import Any

import pytest
from orchestra.breaker import BreakerState, CircuitBreaker, ClosedCache, automation_breaker_name, find_breaker
from orchestra.clock import FakeClock
from orchestra.config import Config, parse_config
from orchestra.models import RunStatus, TriggerKind
from orchestra.runner import Runner, RunRequest
from orchestra.store.base import BREAKERS, StateStore

from tests.runner.automations import build_registry
from tests.runner.conftest import RUNNER_CONFIG

NAME = automation_breaker_name("noop", "development")


def config_with(cache_seconds: float) -> Config:
    text = RUNNER_CONFIG.replace(
        "probe_lease_seconds: 30}", f"probe_lease_seconds: 30, cache_seconds: {cache_seconds}}}"
    )
    assert text != RUNNER_CONFIG
    return parse_config(text, "breaker-cache-config")


def noop(trigger: str, **params: Any) -> RunRequest:
    return RunRequest(
        task="noop", params=params, trigger_kind=TriggerKind.event, trigger_id=trigger, requested_by="alice"
    )


def runner_for(config: Config, store: StateStore, clock: FakeClock) -> Runner:
    return Runner(
        config, store, clock=clock, owner="owner-a", registry=build_registry(), heartbeat_in_background=False
    )


def open_elsewhere(store: StateStore, config: Config, clock: FakeClock) -> None:
    """Another instance (no cache of its own state) sees enough failures to open the breaker."""
    other = CircuitBreaker(store, NAME, config.runner.breaker, clock)
    for _ in range(config.runner.breaker.failure_threshold):
        other.record_failure("RuntimeError: down elsewhere")
    assert find_breaker(store, NAME).state == BreakerState.open


def count_breaker_reads(store: StateStore, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    reads: list[str] = []
    real_get = store.get

    def get(collection: str, doc_id: str) -> Any:
        if collection == BREAKERS:
            reads.append(doc_id)
        return real_get(collection, doc_id)

    monkeypatch.setattr(store, "get", get)
    return reads


def test_the_default_is_five_seconds() -> None:
    assert parse_config(RUNNER_CONFIG, "c").runner.breaker.cache_seconds == 5


def test_healthy_runs_read_the_breaker_once_per_window(store, monkeypatch) -> None:
    clock = FakeClock()
    runner = runner_for(config_with(5), store, clock)
    reads = count_breaker_reads(store, monkeypatch)
    for i in range(3):
        assert runner.submit(noop(f"ok-{i}")).run.status == RunStatus.succeeded
    assert len(reads) == 1
    clock.advance(5)
    assert runner.submit(noop("after-window")).run.status == RunStatus.succeeded
    assert len(reads) == 2


def test_a_breaker_opened_elsewhere_is_honoured_within_the_window(store) -> None:
    clock = FakeClock()
    config = config_with(5)
    runner = runner_for(config, store, clock)
    assert runner.submit(noop("first")).run.status == RunStatus.succeeded
    open_elsewhere(store, config, clock)
    clock.advance(4.9)
    # Still inside the window this instance trusts its closed reading: the run goes ahead.
    assert runner.submit(noop("inside")).run.status == RunStatus.succeeded
    clock.advance(0.1)
    skipped = runner.submit(noop("after")).run
    assert skipped.status == RunStatus.skipped and skipped.reason.startswith("circuit " + NAME + " open")


def test_zero_reads_the_breaker_before_every_run(store) -> None:
    clock = FakeClock()
    config = config_with(0)
    runner = runner_for(config, store, clock)
    assert runner.submit(noop("first")).run.status == RunStatus.succeeded
    open_elsewhere(store, config, clock)
    assert runner.submit(noop("next")).run.status == RunStatus.skipped


def test_own_failures_are_seen_at_once(store) -> None:
    clock = FakeClock()
    config = config_with(60)
    runner = runner_for(config, store, clock)
    assert runner.submit(noop("ok")).run.status == RunStatus.succeeded
    for i in range(config.runner.breaker.failure_threshold):
        assert runner.submit(noop(f"bad-{i}", permanent_failure=True)).run.status == RunStatus.failed
    # No time passed: the cached closed state was dropped by the first failure.
    assert runner.submit(noop("while-open")).run.status == RunStatus.skipped


def test_open_and_failing_states_are_not_cached(store) -> None:
    clock = FakeClock()
    config = config_with(60)
    breaker = CircuitBreaker(store, NAME, config.runner.breaker, clock, cache=ClosedCache(60))
    breaker.record_failure("one failure")
    assert breaker.before_call("owner-a").allowed
    assert not breaker.cache.fresh(NAME, clock.now())  # failures on record: read again next time
    breaker.record_success(breaker.before_call("owner-a"))
    assert breaker.before_call("owner-a").clean and breaker.cache.fresh(NAME, clock.now())
    breaker.reset()
    assert not breaker.cache.fresh(NAME, clock.now())
