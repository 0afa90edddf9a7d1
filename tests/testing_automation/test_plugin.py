"""Which suites a run selects (push, schedule, manual), bad input, and the CLI."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from click.testing import CliRunner
from orchestra.cli.main import cli
from orchestra.clock import FakeClock
from orchestra.inputs import Origin
from orchestra.models import RunStatus, TriggerKind
from orchestra.runner import RunRequest

from tests.testing_automation.conftest import PY, make_runner, suite_config

UTC = dt.UTC


def quick(name: str, **triggers) -> dict:
    return {"command": [PY, "-c", f"print('{name}')"], "triggers": triggers}


SUITES = {
    "unit": quick("unit", push=["*"]),
    "integration": quick("integration", push=["main", "release/*"], manual=False),
    "nightly": quick("nightly", schedule="0 3 * * *", manual=False),
}


def ran(run) -> list[str]:
    return sorted(s["suite"] for s in run.summary["suites_run"])


def test_push_selects_suites_by_branch_pattern(sqlite_store, clock, tmp_path):
    runner = make_runner(suite_config(SUITES), sqlite_store, clock)
    feature = runner.submit(
        RunRequest(
            origin=Origin.local,
            task="testing",
            trigger_kind=TriggerKind.webhook,
            trigger_id="p-1",
            params={"branch": "refs/heads/feature/x", "repo": str(tmp_path)},
        )
    ).run
    assert ran(feature) == ["unit"] and feature.summary["trigger"] == "push"
    release = runner.submit(
        RunRequest(
            origin=Origin.local,
            task="testing",
            trigger_id="p-2",
            params={"branch": "release/2.0", "trigger": "push", "repo": str(tmp_path)},
        )
    ).run
    assert ran(release) == ["integration", "unit"]
    assert release.summary["suites_run"][0]["branch"] == "release/2.0"


def test_scheduled_suites_run_once_per_occurrence(sqlite_store, tmp_path):
    clock = FakeClock(dt.datetime(2026, 1, 5, 3, 30, tzinfo=UTC))
    runner = make_runner(suite_config(SUITES), sqlite_store, clock)

    def tick(trigger: str) -> list[str]:
        request = RunRequest(
            origin=Origin.local,
            task="testing",
            trigger_kind=TriggerKind.scheduled,
            trigger_id=trigger,
            params={"repo": str(tmp_path)},
        )
        return ran(runner.submit(request).run)

    assert tick("s-1") == ["nightly"]
    clock.set(dt.datetime(2026, 1, 5, 4, 0, tzinfo=UTC))
    assert tick("s-2") == []
    clock.set(dt.datetime(2026, 1, 6, 3, 1, tzinfo=UTC))
    assert tick("s-3") == ["nightly"]


def test_manual_run_selects_manual_suites_and_reports_when_none_match(sqlite_store, clock, tmp_path):
    runner = make_runner(suite_config(SUITES), sqlite_store, clock)
    run = runner.submit(
        RunRequest(origin=Origin.local, task="testing", trigger_id="m-1", params={"repo": str(tmp_path)})
    ).run
    assert ran(run) == ["unit"]
    none = (
        make_runner(suite_config({"nightly": SUITES["nightly"]}), sqlite_store, clock)
        .submit(
            RunRequest(origin=Origin.local, task="testing", trigger_id="m-2", params={"repo": str(tmp_path)})
        )
        .run
    )
    assert ran(none) == [] and any(f.id == "testing.nothing-selected" for f in none.findings)


def test_unknown_suite_and_push_without_branch_are_input_errors(sqlite_store, clock, tmp_path):
    runner = make_runner(suite_config(SUITES), sqlite_store, clock)
    run = runner.submit(
        RunRequest(origin=Origin.local, task="testing", trigger_id="u-1", params={"suite": "smoke"})
    ).run
    assert run.status == RunStatus.failed
    assert "unknown suite 'smoke'; configured: unit, integration, nightly" in run.error.message
    run = runner.submit(
        RunRequest(origin=Origin.local, task="testing", trigger_id="u-2", params={"trigger": "push"})
    ).run
    assert run.status == RunStatus.failed and "needs the branch" in run.error.message


def test_cli_runs_one_suite_with_json_output(tmp_path: Path):
    (tmp_path / "suite.py").write_text(
        'open(\'junit.xml\',\'w\').write(\'<testsuite name="s"><testcase classname="c" name="t" time="0.5"/></testsuite>\')\n'
    )
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "environments": {"development": {}},
                "automations": {
                    "testing": {
                        "settings": {"suites": {"unit": {"command": [PY, "suite.py"], "junit": "junit.xml"}}}
                    }
                },
            }
        )
    )
    result = CliRunner().invoke(
        cli,
        [
            "run",
            "testing",
            "--param",
            "suite=unit",
            "--repo",
            str(tmp_path),
            "--format",
            "json",
            "--config",
            str(config),
            "--store",
            f"sqlite:///{tmp_path / 'state.db'}",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.stderr
    run = json.loads(result.stdout)
    assert run["task"] == "testing" and run["status"] == "succeeded"
    (suite,) = run["summary"]["suites_run"]
    assert suite["status"] == "passed" and suite["counts"]["tests"] == 1
