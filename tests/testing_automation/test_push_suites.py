"""A push runs the suites configured for its branch, once per revision, beside the deployment
request; the runner announces the finished suite run and the deployment automation releases or
blocks the deployment waiting for it. In process, on SQLite, with real suite processes."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, ClassVar

import pytest
from orchestra.app import App, build_app
from orchestra.automation import Analysis, Automation, EventContext, EventKind, EventOutcome, RunContext
from orchestra.automations.deployment.plugin import DeploymentAutomation
from orchestra.automations.deployment.state import find_deployment, list_deployments
from orchestra.automations.testing.plugin import TestingAutomation
from orchestra.automations.testing.settings import TestingSettings
from orchestra.clock import FakeClock, RandomIds
from orchestra.config import parse_config
from orchestra.errors import ConfigError, InputError
from orchestra.events.github import handle_github
from orchestra.events.records import record_id
from orchestra.inputs import Origin
from orchestra.models import RunStatus
from orchestra.registry import Registry
from orchestra.runner import RunRequest
from orchestra.store.sqlite import SqliteStateStore
from pydantic import BaseModel

PY = sys.executable
PASS = "1" * 40
FAIL = "2" * 40

# Exits with the verdict recorded for ORCHESTRA_REVISION in VERDICTS (pass unless listed as
# fail) and counts each execution, so the tests see how often the suite really ran.
SUITE = """
import json, os, pathlib, sys
revision = os.environ["ORCHESTRA_REVISION"]
with open(os.environ["SUITE_COUNTER"], "a") as out:
    out.write(f"{os.environ['ORCHESTRA_SUITE']} {revision} {os.environ['ORCHESTRA_BRANCH']}\\n")
verdicts = json.loads(pathlib.Path(os.environ["VERDICTS"]).read_text())
sys.exit(1 if verdicts.get(revision) == "fail" else 0)
"""
DEPLOY = """
import os, sys
with open(os.environ["DEPLOY_LOG"], "a") as out:
    out.write(sys.argv[1] + "\\n")
"""


class Files:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.suite = root / "suite.py"
        self.deploy = root / "deploy.py"
        self.counter = root / "suite-runs.log"
        self.verdicts = root / "verdicts.json"
        self.deploys_log = root / "deploys.log"
        self.suite.write_text(SUITE)
        self.deploy.write_text(DEPLOY)
        self.verdict(PASS, "pass")
        self.verdict(FAIL, "fail")

    def verdict(self, revision: str, verdict: str) -> None:
        known = json.loads(self.verdicts.read_text()) if self.verdicts.exists() else {}
        self.verdicts.write_text(json.dumps({**known, revision: verdict}))

    def suite_runs(self) -> list[str]:
        return self.counter.read_text().splitlines() if self.counter.exists() else []

    def deploys(self) -> list[str]:
        return self.deploys_log.read_text().split() if self.deploys_log.exists() else []


def config_for(files: Files) -> Any:
    doc = {
        "default_environment": "development",
        "environments": {
            "development": {"automation_level": 1},
            "staging": {"automation_level": 1},
            "production": {"automation_level": 1, "protected": True},
        },
        "automations": {
            "deployment": {
                "settings": {
                    "environments": {
                        "development": {
                            "required_suites": ["unit"],
                            "deployer": {
                                "type": "command",
                                "deploy": [[PY, str(files.deploy), "{revision}"]],
                                "env": {"DEPLOY_LOG": str(files.deploys_log)},
                            },
                        }
                    }
                }
            },
            "testing": {
                "settings": {
                    "suites": {
                        "unit": {
                            "command": [PY, str(files.suite)],
                            "environment": {
                                "SUITE_COUNTER": str(files.counter),
                                "VERDICTS": str(files.verdicts),
                            },
                            "timeout_seconds": 60,
                            "triggers": {"push": ["feature/*"]},
                        }
                    }
                }
            },
        },
    }
    return parse_config(json.dumps(doc), "push-suites-test-config")


class Broken(Automation):
    """A push handler that fails: the other handlers' work must stand."""

    name = "broken"
    handles: ClassVar[frozenset[EventKind]] = frozenset({EventKind.push})

    @classmethod
    def handle_event(cls, kind: EventKind, event: BaseModel, ctx: EventContext) -> EventOutcome:
        raise RuntimeError("push handler crashed")

    def analyze(self, ctx: RunContext) -> Analysis:
        return Analysis()


def registry(*extra: type[Automation]) -> Registry:
    reg = Registry({})
    for cls in (DeploymentAutomation, TestingAutomation, *extra):
        reg.register(cls)
    return reg


@pytest.fixture
def files(tmp_path: Path) -> Files:
    return Files(tmp_path)


def make_app(files: Files, reg: Registry) -> App:
    store = SqliteStateStore(files.root / "state.db")
    return build_app(config=config_for(files), store=store, clock=FakeClock(), ids=RandomIds(5), registry=reg)


@pytest.fixture
def app(files: Files) -> Any:
    built = make_app(files, registry())
    yield built
    built.close()


def push(branch: str, after: str) -> dict[str, Any]:
    return {
        "ref": f"refs/heads/{branch}",
        "before": "0" * 40,
        "after": after,
        "created": True,
        "repository": {"full_name": "acme/shop"},
        "pusher": {"name": "alice", "email": "alice@example.com"},
        "sender": {"login": "alice"},
        "head_commit": {"id": after, "timestamp": "2026-01-05T11:59:00Z"},
    }


def only_deployment(app: App) -> Any:
    (deployment,) = list_deployments(app.store)
    return deployment


def test_the_registry_lists_every_handler_of_a_kind_by_name() -> None:
    reg = registry(Broken)
    assert [c.name for c in reg.handlers(EventKind.push)] == ["broken", "deployment", "testing"]
    assert reg.handler(EventKind.push) is Broken
    assert [c.name for c in reg.handlers(EventKind.run_finished)] == ["deployment"]
    reg.unregister("broken")
    assert [c.name for c in reg.handlers(EventKind.push)] == ["deployment", "testing"]
    assert Registry({}).handlers(EventKind.push) == []


def test_a_passing_suite_releases_the_deployment_it_gates(app: App, files: Files) -> None:
    handled = handle_github(app, event_name="push", delivery_id="d-1", data=push("feature/cart", PASS))

    assert handled.status == "accepted", handled.reason
    handlers = handled.record.payload["handlers"]
    assert handlers["deployment"]["status"] == "accepted"
    assert handlers["testing"]["status"] == "accepted"
    (test_run,) = handled.runs
    assert test_run.task == "testing" and test_run.status == RunStatus.succeeded
    assert handlers["testing"]["run_ids"] == [test_run.id]
    assert handled.extra["suites"] == ["unit"]
    assert files.suite_runs() == [f"unit {PASS} feature/cart"]
    # The finished suite run released the deployment: deployed once, through its gates.
    deployment = only_deployment(app)
    assert deployment.state == "succeeded" and deployment.blocked is None
    assert files.deploys() == [PASS]
    announced = app.store.get_event(record_id("runner", f"run-finished:{test_run.id}"))
    assert announced is not None and announced.status == "accepted"
    assert announced.payload["handlers"]["deployment"]["status"] == "accepted"
    (deploy_run_id,) = announced.run_ids
    deploy_run = app.store.get_run(deploy_run_id)
    assert deploy_run is not None and deploy_run.task == "deployment"
    assert (deploy_run.environment, deploy_run.status) == ("development", RunStatus.succeeded)


def test_a_failing_suite_blocks_the_deployment_naming_the_suite(app: App, files: Files) -> None:
    handled = handle_github(app, event_name="push", delivery_id="d-1", data=push("feature/cart", FAIL))

    assert handled.status == "accepted", handled.reason
    deployment = only_deployment(app)
    assert deployment.state == "approved"  # pending, never deployed
    assert deployment.blocked is not None
    assert deployment.blocked.startswith(
        f"required suite failed on {FAIL[:12]}: unit (failed: command failed"
    )
    assert files.deploys() == []
    (test_run,) = handled.runs
    announced = app.store.get_event(record_id("runner", f"run-finished:{test_run.id}"))
    assert announced is not None
    assert "blocked: required suite failed: unit (failed" in announced.reason
    (deploy_run_id,) = announced.run_ids
    deploy_run = app.store.get_run(deploy_run_id)
    assert deploy_run is not None and deploy_run.actions == []
    assert any(f.id == f"deployment.tests-failed.{deployment.id}" for f in deploy_run.findings)

    # The suite fixed (a flaky failure, or the environment): a new run on the same revision
    # passes, and the deployment goes out without anyone in between.
    files.verdict(FAIL, "pass")
    app.clock.advance(minutes=10)  # type: ignore[attr-defined]
    rerun = app.runner.submit(
        RunRequest(task="testing", params={"suite": "unit", "revision": FAIL}, trigger_id="rerun-1")
    )
    assert rerun.run.status == RunStatus.succeeded
    released = find_deployment(app.store, deployment.id)
    assert released is not None and released.state == "succeeded" and released.blocked is None
    assert files.deploys() == [FAIL]


def test_the_same_push_runs_its_suites_once_whatever_the_delivery(app: App, files: Files) -> None:
    first = handle_github(app, event_name="push", delivery_id="d-1", data=push("feature/cart", PASS))
    resent = handle_github(app, event_name="push", delivery_id="d-2", data=push("feature/cart", PASS))
    redelivered = handle_github(app, event_name="push", delivery_id="d-1", data=push("feature/cart", PASS))

    assert first.status == "accepted"
    assert resent.status == "duplicate", resent.reason
    handlers = resent.record.payload["handlers"]
    assert handlers["deployment"]["status"] == "duplicate"
    assert handlers["testing"]["status"] == "duplicate"
    assert handlers["testing"]["reason"].startswith("already handled: run ")
    assert [r.id for r in resent.runs] == [r.id for r in first.runs]
    assert redelivered.status == "duplicate"
    assert files.suite_runs() == [f"unit {PASS} feature/cart"]
    assert files.deploys() == [PASS]


def test_a_branch_with_no_suite_runs_none(app: App, files: Files) -> None:
    handled = handle_github(app, event_name="push", delivery_id="d-1", data=push("docs/readme", PASS))

    assert handled.status == "accepted"  # the deployment was requested
    testing = handled.record.payload["handlers"]["testing"]
    assert testing == {
        "status": "ignored",
        "reason": "no suite runs on pushes to docs/readme (automations.testing.settings.suites.NAME.triggers.push)",
    }
    assert handled.runs == [] and files.suite_runs() == []
    assert app.store.list_runs(task="testing", limit=None) == []
    # Nothing ran the required suite: the deployment keeps waiting for it.
    assert only_deployment(app).state == "requested" and files.deploys() == []


def test_tags_and_deletions_run_no_suite(app: App, files: Files) -> None:
    tag = push("x", PASS) | {"ref": "refs/tags/v1.0"}
    deleted = push("feature/cart", "0" * 40) | {"deleted": True, "head_commit": None}

    tagged = handle_github(app, event_name="push", delivery_id="d-tag", data=tag)
    gone = handle_github(app, event_name="push", delivery_id="d-del", data=deleted)

    assert tagged.status == "ignored"
    assert "testing: refs/tags/v1.0 is not a branch; suites run on branch pushes" in (tagged.reason or "")
    assert gone.status == "ignored"
    assert "testing: deletion of refs/heads/feature/cart runs no suite" in (gone.reason or "")
    assert files.suite_runs() == []


def test_one_handler_failing_is_recorded_and_loses_nothing_of_the_others(files: Files) -> None:
    app = make_app(files, registry(Broken))
    try:
        handled = handle_github(app, event_name="push", delivery_id="d-1", data=push("feature/cart", PASS))

        assert handled.status == "accepted"
        handlers = handled.record.payload["handlers"]
        assert handlers["broken"] == {
            "status": "failed",
            "reason": "RuntimeError: push handler crashed",
            "transient": False,
        }
        assert handlers["deployment"]["status"] == "accepted" and handlers["testing"]["status"] == "accepted"
        assert files.suite_runs() == [f"unit {PASS} feature/cart"]
        assert only_deployment(app).state == "succeeded"
    finally:
        app.close()


def test_a_push_every_handler_refuses_is_a_bad_request(app: App) -> None:
    bad = push("feature/cart", "not a revision!")

    with pytest.raises(InputError) as caught:
        handle_github(app, event_name="push", delivery_id="d-bad", data=bad)

    assert "not a revision" in str(caught.value)


def test_a_run_without_suite_results_moves_no_deployment(app: App, files: Files) -> None:
    handle_github(app, event_name="push", delivery_id="d-1", data=push("docs/readme", PASS))
    # A testing run that selects no suite records no result: nothing acts on its end.
    run = app.runner.submit(
        RunRequest(
            task="testing",
            params={"trigger": "push", "branch": "docs/readme", "revision": PASS},
            trigger_id="none",
            origin=Origin.local,
        )
    ).run
    assert run.status == RunStatus.succeeded and files.suite_runs() == []
    assert app.store.get_event(record_id("runner", f"run-finished:{run.id}")) is None
    assert only_deployment(app).state == "requested"


@pytest.mark.parametrize(
    ("suite", "message"),
    [
        ({"runner": "cloud-build"}, "runner cloud-build needs cloud_build: {project: P, image: IMAGE}"),
        (
            {
                "runner": "cloud-build",
                "junit": "r.xml",
                "cloud_build": {"project": "my-project", "image": "python:3.11"},
            },
            "junit is not read from Cloud Build",
        ),
        (
            {"cloud_build": {"project": "my-project", "image": "python:3.11"}},
            "cloud_build is set but runner is command",
        ),
        (
            {"runner": "cloud-build", "cloud_build": {"project": "P", "image": "python:3.11"}},
            "cloud_build.project",
        ),
        (
            {
                "runner": "cloud-build",
                "cloud_build": {
                    "project": "my-project",
                    "image": "python:3.11",
                    "service_account": "me@gmail.com",
                },
            },
            "is not a service account e-mail",
        ),
        ({"runner": "docker"}, "runner"),
        (
            {
                "runner": "cloud-build",
                "cwd": "../outside",
                "cloud_build": {"project": "my-project", "image": "python:3.11"},
            },
            "a cloud-build suite's cwd is a directory inside the build's source",
        ),
    ],
)
def test_runner_fields_are_validated_with_the_field_named(suite: dict[str, Any], message: str) -> None:
    doc = {
        "environments": {"development": {}},
        "automations": {"testing": {"settings": {"suites": {"unit": {"command": ["pytest"], **suite}}}}},
    }
    config = parse_config(json.dumps(doc), "cfg")

    with pytest.raises(ConfigError) as caught:
        config.settings_for("testing", TestingSettings)

    text = "\n".join(caught.value.problems)
    assert "automations.testing.settings.suites.unit" in text
    assert message in text


def test_a_valid_cloud_build_suite_is_accepted() -> None:
    settings = TestingSettings.model_validate(
        {
            "suites": {
                "unit": {
                    "command": ["python", "-m", "pytest"],
                    "runner": "cloud-build",
                    "cloud_build": {
                        "project": "my-project",
                        "region": "europe-west1",
                        "image": "python:3.11",
                        "source_url": "https://github.com/acme/shop.git",
                        "service_account": "suites@my-project.iam.gserviceaccount.com",
                    },
                }
            }
        }
    )
    cloud_build = settings.suites["unit"].cloud_build
    assert cloud_build is not None and cloud_build.poll_seconds == 10 and cloud_build.region == "europe-west1"
