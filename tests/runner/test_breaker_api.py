"""The breaker's own API is the only way to consult it: ``peek`` answers what ``before_call``
would, without taking the probe or writing; ``before_call`` takes the probe once it is due."""

from __future__ import annotations

import pytest
from orchestra.breaker import BreakerState, CircuitBreaker
from orchestra.clock import FakeClock
from orchestra.config import Config
from orchestra.store.base import BREAKERS, StateStore

NAME = "dependency:deployer:staging"


def opened(store: StateStore, config: Config, clock: FakeClock) -> CircuitBreaker:
    breaker = CircuitBreaker(store, NAME, config.runner.breaker, clock)
    for n in range(config.runner.breaker.failure_threshold):
        breaker.record_failure(f"failure {n}")
    record = breaker.read()
    assert record is not None and record.state == BreakerState.open
    return breaker


def stored(store: StateStore, breaker: CircuitBreaker) -> dict[str, object] | None:
    return store.get(BREAKERS, breaker.doc_id)


def test_peek_on_an_unknown_or_closed_breaker_allows_without_writing(store, runner_config, clock):
    breaker = CircuitBreaker(store, NAME, runner_config.runner.breaker, clock)
    permit = breaker.peek("a")
    assert permit.allowed and permit.clean and not permit.probe
    assert stored(store, breaker) is None


def test_peek_refuses_while_open_and_allows_the_probe_once_due(store, runner_config, clock):
    breaker = opened(store, runner_config, clock)
    open_seconds = runner_config.runner.breaker.open_seconds
    before = stored(store, breaker)

    clock.advance(open_seconds - 1)
    refused = breaker.peek("a")
    assert (
        not refused.allowed
        and "open since" in (refused.reason or "")
        and "next probe after" in refused.reason
    )

    clock.advance(1)
    due = breaker.peek("a")
    assert due.allowed and due.probe
    # Nothing was written: the breaker is still open, and every caller may still probe.
    assert stored(store, breaker) == before
    assert breaker.peek("b").allowed
    assert breaker.read().state == BreakerState.open


def test_one_probe_at_a_time_and_peek_agrees_with_before_call(store, runner_config, clock):
    breaker = opened(store, runner_config, clock)
    clock.advance(runner_config.runner.breaker.open_seconds)

    taken = breaker.before_call("a")
    assert taken.allowed and taken.probe
    record = breaker.read()
    assert record.state == BreakerState.half_open and record.probe_owner == "a"

    assert breaker.peek("a").allowed  # the probe's owner may go on
    for ask in (breaker.peek, breaker.before_call):
        other = ask("b")
        assert not other.allowed and "probe in progress by a" in (other.reason or "")


def test_an_abandoned_probe_expires_and_the_next_caller_probes(store, runner_config, clock):
    breaker = opened(store, runner_config, clock)
    clock.advance(runner_config.runner.breaker.open_seconds)
    assert breaker.before_call("a").probe
    clock.advance(runner_config.runner.breaker.probe_lease_seconds + 1)
    assert breaker.peek("b").allowed
    assert breaker.before_call("b").probe
    assert breaker.read().probe_owner == "b"


@pytest.mark.parametrize("succeeded", [True, False])
def test_the_probe_verdict_closes_or_reopens(store, runner_config, clock, succeeded):
    breaker = opened(store, runner_config, clock)
    clock.advance(runner_config.runner.breaker.open_seconds)
    permit = breaker.before_call("a")
    if succeeded:
        breaker.record_success(permit)
        assert breaker.read().state == BreakerState.closed
        assert breaker.peek("b").allowed and breaker.peek("b").clean
    else:
        breaker.record_failure("still failing", permit)
        record = breaker.read()
        assert record.state == BreakerState.open and record.opened_at == clock.now()
        assert not breaker.peek("b").allowed
        clock.advance(runner_config.runner.breaker.open_seconds)
        assert breaker.peek("b").allowed


def test_a_released_probe_goes_to_the_next_caller(store, runner_config, clock):
    breaker = opened(store, runner_config, clock)
    clock.advance(runner_config.runner.breaker.open_seconds)
    permit = breaker.before_call("a")
    breaker.release_probe("a", permit)
    assert breaker.read().state == BreakerState.half_open
    assert breaker.peek("b").allowed and breaker.before_call("b").probe
