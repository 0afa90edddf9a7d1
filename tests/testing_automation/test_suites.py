"""Running suites for real: pytest and a JUnit-writing script, timeouts that kill the process
group, unreadable results, and what is stored."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from orchestra.automations.testing.results import TEST_RESULTS, SuiteRun, fit, suite_history
from orchestra.automations.testing.settings import Suite
from orchestra.automations.testing.suites import execute_suite
from orchestra.inputs import Origin
from orchestra.models import RunStatus
from orchestra.runner import RunRequest

from tests.testing_automation.conftest import PY, flipping_suite, git, make_runner, suite_config


def test_a_real_pytest_suite_is_run_and_its_results_stored(sqlite_store, clock, project):
    config = suite_config(
        {
            "unit": {
                "command": [
                    PY,
                    "-m",
                    "pytest",
                    "-q",
                    "-p",
                    "no:cacheprovider",
                    "--junitxml=reports/unit.xml",
                    "tests",
                ],
                "junit": "reports/unit.xml",
                "timeout_seconds": 120,
            }
        }
    )
    run = (
        make_runner(config, sqlite_store, clock)
        .submit(
            RunRequest(
                origin=Origin.local,
                task="testing",
                params={"suite": "unit", "repo": str(project)},
                trigger_id="t-1",
            )
        )
        .run
    )
    assert run.status == RunStatus.succeeded
    (suite,) = run.summary["suites_run"]
    assert suite["status"] == "passed" and suite["counts"]["tests"] == 2
    assert suite["revision"] == git(project, "rev-parse", "HEAD") and suite["branch"] == "develop"
    stored = SuiteRun.model_validate(sqlite_store.get(TEST_RESULTS, suite["result_id"]))
    assert sorted(t.id for t in stored.tests) == [
        "tests.test_cart::test_discount",
        "tests.test_cart::test_total",
    ]
    assert any(f.id == "testing.suite.unit.passed" for f in run.findings)


def test_failed_suite_reports_the_failing_tests(sqlite_store, clock, project, tmp_path):
    (tmp_path / "counter.txt").write_text("1")  # the next run is a failing one
    config = suite_config({"unit": flipping_suite(tmp_path)})
    run = (
        make_runner(config, sqlite_store, clock)
        .submit(
            RunRequest(
                origin=Origin.local,
                task="testing",
                params={"suite": "unit", "repo": str(project)},
                trigger_id="t-1",
            )
        )
        .run
    )
    (finding,) = [f for f in run.findings if f.id == "testing.suite.unit.failed"]
    assert finding.severity == "high" and "shop.cart::test_flaky" in finding.summary
    assert finding.evidence["failing"][0]["message"] == "timeout talking to payments\nReadTimeout"
    assert run.summary["suites_run"][0]["counts"] == {
        "passed": 2,
        "failed": 1,
        "error": 0,
        "skipped": 0,
        "tests": 3,
    }


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in status


def test_a_hanging_suite_is_killed_with_its_children_at_the_timeout(clock, tmp_path):
    hang = (
        "import subprocess, sys, time, pathlib\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
        "pathlib.Path('child.pid').write_text(str(child.pid))\n"
        "print('started', flush=True)\n"
        "time.sleep(600)\n"
    )
    (tmp_path / "hang.py").write_text(hang)
    suite = Suite(command=[PY, "hang.py"], timeout_seconds=1.0, junit="junit.xml")
    result = execute_suite("integration", suite, run_id="run-1", clock=clock, repo=str(tmp_path))
    assert result.status == "timed_out" and result.timed_out
    assert "timed out after 1s; the process group was killed" in result.reason
    assert "started" in result.output_tail
    child = int((tmp_path / "child.pid").read_text())
    assert not _alive(child)


def test_malformed_junit_is_reported_clearly(sqlite_store, clock, tmp_path):
    (tmp_path / "bad.py").write_text(
        "open('junit.xml', 'w').write('<testsuites><testsuite name=\"u\"><testcase name=\"a\">')\n"
    )
    config = suite_config({"unit": {"command": [PY, "bad.py"], "junit": "junit.xml"}})
    run = (
        make_runner(config, sqlite_store, clock)
        .submit(
            RunRequest(
                origin=Origin.local,
                task="testing",
                params={"suite": "unit", "repo": str(tmp_path)},
                trigger_id="t-1",
            )
        )
        .run
    )
    (finding,) = [f for f in run.findings if f.id == "testing.suite.unit.error"]
    assert finding.severity == "high"
    assert "JUnit results unusable" in finding.summary and "junit.xml:1" in finding.summary
    assert "not well-formed XML" in finding.evidence["junit_problem"]


def test_a_stale_report_is_never_taken_for_this_run(clock, tmp_path):
    (tmp_path / "junit.xml").write_text("<testsuite><testcase name='old'/></testsuite>")
    suite = Suite(command=[PY, "-c", "raise SystemExit(3)"], junit="junit.xml")
    result = execute_suite("unit", suite, run_id="run-1", clock=clock, repo=str(tmp_path))
    assert result.status == "error" and "not found" in (result.junit_problem or "")
    assert result.tests == []


def test_missing_program_and_plain_exit_codes(clock, tmp_path):
    missing = execute_suite(
        "x", Suite(command=["no-such-program-xyz"]), run_id="r", clock=clock, repo=str(tmp_path)
    )
    assert missing.status == "error" and "cannot start 'no-such-program-xyz'" in missing.reason
    failing = execute_suite(
        "y", Suite(command=[PY, "-c", "raise SystemExit(2)"]), run_id="r", clock=clock, repo=str(tmp_path)
    )
    assert failing.status == "failed" and failing.exit_code == 2
    env = execute_suite(
        "z",
        Suite(
            command=[
                PY,
                "-c",
                "import os,sys; sys.exit(0 if os.environ['ORCHESTRA_SUITE']=='z' and os.environ['MODE']=='ci' else 1)",
            ],
            environment={"MODE": "ci"},
        ),
        run_id="r",
        clock=clock,
        repo=str(tmp_path),
    )
    assert env.status == "passed" and env.revision is None


def test_huge_results_stay_under_the_document_limit(clock):
    from orchestra.automations.testing.results import MAX_DOC_BYTES, TestResult, _size

    tests = [
        TestResult(
            id=f"pkg.module_{i // 100}.TestCase::test_case_number_{i}",
            outcome="passed",
            duration_seconds=i / 1000,
            message="x" * 400,
        )
        for i in range(12_000)
    ] + [TestResult(id=f"pkg.f::test_fail_{i}", outcome="failed", message="boom " * 100) for i in range(50)]
    run = SuiteRun(
        id="r:unit",
        suite="unit",
        status="failed",
        reason="50 failed",
        started_at=clock.now(),
        finished_at=clock.now(),
        duration_seconds=1.0,
        tests=tests,
    )
    fitted = fit(run)
    assert _size(fitted.model_dump(mode="json")) <= MAX_DOC_BYTES
    assert sum(1 for t in fitted.tests if t.outcome == "failed") == 50
    assert fitted.omitted_tests + len(fitted.tests) == len(tests)
    kept_ids = {t.id for t in fitted.tests}
    kept = [t.duration_seconds or 0 for t in fitted.tests if t.outcome == "passed"]
    dropped = [t.duration_seconds or 0 for t in tests if t.outcome == "passed" and t.id not in kept_ids]
    assert kept and dropped and min(kept) >= max(dropped)  # the slowest passing tests are kept


def test_history_is_newest_first(sqlite_store, clock, project, tmp_path):
    config = suite_config({"unit": flipping_suite(tmp_path)})
    runner = make_runner(config, sqlite_store, clock)
    for i in range(3):
        runner.submit(
            RunRequest(
                origin=Origin.local,
                task="testing",
                params={"suite": "unit", "repo": str(project)},
                trigger_id=f"t-{i}",
            )
        )
        clock.advance(minutes=1)
    history = suite_history(sqlite_store, "unit")
    assert [h.status for h in history] == ["passed", "failed", "passed"]
    assert history[0].started_at > history[-1].started_at
    assert os.environ.get("COUNTER") is None and sys.executable == PY
