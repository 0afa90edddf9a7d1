"""Flaky, broken and slow tests, and duration trends, from real suite runs and stored history."""

from __future__ import annotations

import datetime as dt

from orchestra.automations.testing.flaky import broken_tests, duration_trends, flaky_tests, slowest_tests
from orchestra.automations.testing.results import SuiteRun, TestResult, save_suite_run
from orchestra.automations.testing.settings import FlakyRules
from orchestra.inputs import Origin
from orchestra.runner import RunRequest

from tests.testing_automation.conftest import flipping_suite, make_runner, suite_config

T0 = dt.datetime(2026, 1, 5, 12, 0, tzinfo=dt.UTC)


def run_of(
    i: int,
    outcomes: dict[str, str],
    *,
    revision: str | None = None,
    seconds: float = 10.0,
    reruns: dict[str, int] | None = None,
) -> SuiteRun:
    return SuiteRun(
        id=f"run-{i}:unit",
        suite="unit",
        status="passed",
        reason="",
        revision=revision or f"commit{i:03d}",
        started_at=T0 + dt.timedelta(hours=i),
        finished_at=T0 + dt.timedelta(hours=i, seconds=seconds),
        duration_seconds=seconds,
        tests=[
            TestResult(id=t, outcome=o, duration_seconds=1.0, reruns_failed=(reruns or {}).get(t, 0))
            for t, o in outcomes.items()
        ],
    )


def test_same_commit_flake_from_real_runs_is_detected_and_quarantine_suggested(
    sqlite_store, clock, project, tmp_path
):
    config = suite_config({"unit": flipping_suite(tmp_path)})
    runner = make_runner(config, sqlite_store, clock)
    for i in range(4):
        run = runner.submit(
            RunRequest(
                origin=Origin.local,
                task="testing",
                params={"suite": "unit", "repo": str(project)},
                trigger_id=f"t-{i}",
            )
        ).run
        clock.advance(minutes=10)
    flaky = run.summary["flaky"]
    assert [f["test"] for f in flaky] == ["shop.cart::test_flaky"]
    (item,) = flaky
    assert item["flake_rate"] == 0.5 and item["quarantine"] is True and item["runs"] == 4
    assert "failed and passed on the same commit" in item["reasons"][0]
    assert run.summary["quarantine_suggested"] == ["unit::shop.cart::test_flaky"]
    finding = next(f for f in run.findings if f.id.startswith("testing.flaky."))
    assert finding.severity == "medium" and "suggest quarantine" in finding.summary
    assert run.summary["slowest"][0]["test"] == "shop.cart::test_slow"
    assert run.summary["slowest"][0]["latest_seconds"] == 1.5


def test_flip_rate_across_commits_needs_enough_runs():
    rules = FlakyRules(min_runs=5, flip_rate=0.3)
    pattern = ["passed", "failed", "passed", "passed", "failed", "passed"]
    runs = [run_of(i, {"t::flip": o, "t::steady": "passed"}) for i, o in enumerate(pattern)]
    (item,) = flaky_tests(runs, rules)
    assert item.test == "t::flip" and item.flips == 4 and item.flip_rate == 0.8
    assert item.same_commit == [] and "flipped 4 times in 6 runs" in item.reasons[0]
    assert round(item.flake_rate, 3) == round(2 / 6, 3) and item.quarantine
    # Four runs are not enough to judge flips.
    assert flaky_tests(runs[:4], rules) == []


def test_rerun_passes_are_flaky_and_consistent_failures_are_broken():
    rules = FlakyRules()
    runs = [
        run_of(0, {"t::rerun": "passed", "t::broken": "passed"}),
        run_of(1, {"t::rerun": "passed", "t::broken": "failed"}, reruns={"t::rerun": 1}),
        run_of(2, {"t::rerun": "passed", "t::broken": "failed"}),
        run_of(3, {"t::rerun": "skipped", "t::broken": "error"}),
    ]
    (item,) = flaky_tests(runs, rules)
    assert item.test == "t::rerun" and item.reruns == 1 and item.runs == 3  # the skip is not judged
    assert broken_tests(runs) == [{"suite": "unit", "test": "t::broken", "failing_runs": 3}]


def test_slowest_tests_and_duration_trend():
    runs = [run_of(i, {"t::a": "passed"}, seconds=s) for i, s in enumerate([10, 11, 10, 10, 14, 15, 16])]
    (trend,) = duration_trends(runs, window=3)
    assert trend["recent_median_seconds"] == 15 and trend["previous_median_seconds"] == 10
    assert trend["change"] == 0.5
    runs[-1].tests.append(TestResult(id="t::slow", outcome="passed", duration_seconds=42.0))
    assert [s["test"] for s in slowest_tests(runs, 2)] == ["t::slow", "t::a"]


def test_with_no_suites_configured_the_stored_history_is_analysed(sqlite_store, clock):
    for i, outcome in enumerate(["passed", "failed", "passed"]):
        save_suite_run(sqlite_store, run_of(i, {"api::test_login": outcome}, revision="samecommit"))
    for i, seconds in enumerate([10, 10, 10, 10, 10, 20, 21, 22, 23, 24]):
        save_suite_run(
            sqlite_store,
            run_of(10 + i, {"api::test_ok": "passed"}, seconds=seconds).model_copy(
                update={"id": f"trend-{i}", "suite": "e2e"}
            ),
        )
    run = (
        make_runner(suite_config({}), sqlite_store, clock)
        .submit(RunRequest(origin=Origin.local, task="testing", trigger_id="t-1"))
        .run
    )
    assert run.summary["suites_run"] == []
    assert "no suites configured" in run.summary["note"] and "13 stored suite run(s)" in run.summary["note"]
    assert [f["test"] for f in run.summary["flaky"]] == ["api::test_login"]
    ids = {f.id for f in run.findings}
    assert "testing.no-suites" in ids and "testing.slower.e2e" in ids
