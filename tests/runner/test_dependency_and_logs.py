from __future__ import annotations

import json
import logging

import pytest
from orchestra.breaker import BreakerState, DependencyUnavailable, call_dependency, find_breaker
from orchestra.errors import InputError
from orchestra.logs import JsonFormatter, TextFormatter, set_trace, trace_context


def test_dependency_breaker_opens_and_refuses_calls(sqlite_store, runner_config, clock):
    cfg = runner_config.runner.breaker
    calls = []

    def flaky() -> str:
        calls.append(1)
        raise ConnectionError("503 from Cloud Run Admin API")

    for _ in range(2):
        with pytest.raises(ConnectionError):
            call_dependency(sqlite_store, cfg, clock, "me", "cloud-run", flaky)
    assert find_breaker(sqlite_store, "dependency:cloud-run").state == BreakerState.open
    with pytest.raises(DependencyUnavailable, match="open"):
        call_dependency(sqlite_store, cfg, clock, "me", "cloud-run", flaky)
    assert len(calls) == 2
    clock.advance(cfg.open_seconds + 1)
    assert call_dependency(sqlite_store, cfg, clock, "me", "cloud-run", lambda: "ok") == "ok"
    assert find_breaker(sqlite_store, "dependency:cloud-run").state == BreakerState.closed


def test_bad_input_does_not_count_against_a_dependency(sqlite_store, runner_config, clock):
    def bad() -> None:
        raise InputError("no such service", where="service")

    for _ in range(3):
        with pytest.raises(InputError):
            call_dependency(sqlite_store, runner_config.runner.breaker, clock, "me", "cloud-run", bad)
    assert find_breaker(sqlite_store, "dependency:cloud-run") is None


def _record(**extra: object) -> logging.LogRecord:
    record = logging.LogRecord(
        "orchestra.runner", logging.WARNING, __file__, 1, "took over %s", ("r1",), None
    )
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_json_logs_carry_severity_run_and_trace():
    token = trace_context.set(None)
    try:
        set_trace("105445aa7843bc8bf206b12000100000/1;o=1", "my-project")
        line = json.loads(JsonFormatter().format(_record(run_id="r1", task="performance")))
    finally:
        trace_context.reset(token)
    assert line["severity"] == "WARNING"
    assert line["message"] == "took over r1"
    assert line["run_id"] == "r1" and line["task"] == "performance"
    assert (
        line["logging.googleapis.com/trace"] == "projects/my-project/traces/105445aa7843bc8bf206b12000100000"
    )


def test_text_logs_are_readable():
    assert TextFormatter().format(_record(run_id="r1")) == "warning orchestra.runner: took over r1 [run r1]"
