"""The suite gate's reaction to a finished run: only the deployments of a revision whose
environment requires a suite that run recorded are moved; a deployment still missing another
required suite waits; a failure marks it blocked, a later pass clears it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from orchestra.automation import EventContext, RunFinished
from orchestra.automations.deployment.gate import handle_run_finished
from orchestra.automations.deployment.requests import request_deployment
from orchestra.automations.deployment.state import get_deployment
from orchestra.automations.testing.results import SuiteRun, SuiteStatus, save_suite_run
from orchestra.clock import FakeClock, RandomIds

from tests.deployment.conftest import make_config

REV = "a" * 40
OTHER = "b" * 40


def finished(run_id: str) -> RunFinished:
    return RunFinished(
        run_id=run_id,
        task="testing",
        status="succeeded",
        environment="development",
        trigger_kind="manual",
        trigger_id=run_id,
    )


def result(store: Any, clock: FakeClock, run_id: str, suite: str, revision: str, status: str) -> None:
    now = clock.now()
    save_suite_run(
        store,
        SuiteRun(
            id=f"{run_id}:{suite}",
            suite=suite,
            status=SuiteStatus(status),
            reason=f"{suite} {status}",
            revision=revision,
            run_id=run_id,
            started_at=now,
            finished_at=now + dt.timedelta(seconds=3),
            duration_seconds=3,
        ),
    )


IDS = RandomIds(1)


def request(store: Any, clock: FakeClock, environment: str, revision: str) -> Any:
    return request_deployment(
        store,
        clock,
        IDS,
        environment=environment,
        ref="refs/heads/develop",
        revision=revision,
        repository="acme/shop",
        requested_by="github:alice",
        source_event=None,
    )


def test_the_gate_moves_only_what_the_run_tested(sqlite_store: Any) -> None:
    clock = FakeClock()
    config = make_config(
        {
            "staging": {"required_suites": ["unit", "lint"]},
            "development": {"required_suites": ["unit"]},
            "production": {"requires_approval": True, "required_suites": ["e2e"]},
        }
    )
    ctx = EventContext(config=config, store=sqlite_store, clock=clock, ids=RandomIds(2))
    staging = request(sqlite_store, clock, "staging", REV)
    development = request(sqlite_store, clock, "development", REV)
    production = request(sqlite_store, clock, "production", REV)
    elsewhere = request(sqlite_store, clock, "development", OTHER)

    assert handle_run_finished("deployment", finished("t-0"), ctx).status == "ignored"  # no results

    result(sqlite_store, clock, "t-1", "unit", REV, "passed")
    outcome = handle_run_finished("deployment", finished("t-1"), ctx)

    assert outcome.status == "accepted"
    verdicts = outcome.payload["deployments"]
    # production requires e2e only; the other revision was not tested: neither is touched.
    assert sorted(verdicts) == sorted([staging.id, development.id])
    assert production.id not in verdicts and elsewhere.id not in verdicts
    assert verdicts[staging.id]["suites"] == "waits for required suite(s) lint"
    assert verdicts[development.id]["suites"] == "required suites passed"
    # Only development has every result: only its deployment run is asked for.
    assert [(r.task, r.environment, r.mode, r.trigger_id) for r in outcome.requests] == [
        ("deployment", "development", "apply", "suites:t-1:development")
    ]

    clock.advance(minutes=1)
    result(sqlite_store, clock, "t-2", "lint", REV, "failed")
    outcome = handle_run_finished("deployment", finished("t-2"), ctx)

    assert [r.environment for r in outcome.requests] == ["staging"]
    blocked = get_deployment(sqlite_store, staging.id).blocked
    assert blocked == f"required suite failed on {REV[:12]}: lint (failed: lint failed)"

    clock.advance(minutes=1)
    result(sqlite_store, clock, "t-3", "lint", REV, "passed")
    handle_run_finished("deployment", finished("t-3"), ctx)

    assert get_deployment(sqlite_store, staging.id).blocked is None


def test_no_environment_requiring_suites_reads_nothing(sqlite_store: Any) -> None:
    config = make_config({})
    ctx = EventContext(config=config, store=sqlite_store, clock=FakeClock(), ids=RandomIds(2))

    outcome = handle_run_finished("deployment", finished("t-1"), ctx)

    assert (outcome.status, outcome.reason) == ("ignored", "no environment requires suites")
