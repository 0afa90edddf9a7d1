"""The deployment pipeline end to end: real git repositories, a real HTTP service deployed and
rolled back by the command deployer, approvals, windows and locks under an injected clock."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from orchestra.app import build_app
from orchestra.automations.deployment.approvals import approve
from orchestra.automations.deployment.requests import (
    deployment_settings,
    environment_for_ref,
    request_deployment,
)
from orchestra.automations.deployment.state import DeploymentState, get_deployment, list_deployments
from orchestra.breaker import automation_breaker_name, find_breaker
from orchestra.clock import FakeClock, RandomIds
from orchestra.config import Config
from orchestra.errors import ApprovalRefused, InputError
from orchestra.events.github import handle_github
from orchestra.events.records import record_id
from orchestra.inputs import Origin
from orchestra.models import ActionStatus, Mode, RunStatus, TriggerKind
from orchestra.runner import RunRequest
from orchestra.store.base import StateStore

from tests.deployment.conftest import (
    THURSDAY_10,
    VERIFICATION,
    WEBHOOKS,
    Repo,
    Service,
    command_deployer,
    make_config,
    make_runner,
    push_payload,
    registry,
)

S = DeploymentState
UTC = dt.UTC


def request_from_push(
    config: Config, store: StateStore, clock: FakeClock, payload: dict[str, Any], delivery: str
) -> Any:
    """A verified push through the webhook's handler: the deployment it requested or found, or
    None when it deploys nothing (deletions, tags)."""
    app = build_app(config=config, store=store, clock=clock, ids=RandomIds(1), registry=registry())
    handle_github(app, event_name="push", delivery_id=delivery, data=payload)
    record = store.get_event(record_id("webhooks", delivery))
    found = record.payload.get("deployment_id") if record else None
    return get_deployment(store, found) if found else None


def deploy_run(env: str, trigger: str, level: int | None = None, **params: Any) -> RunRequest:
    return RunRequest(
        task="deployment",
        environment=env,
        mode=Mode.apply,
        automation_level=level,
        params=params,
        trigger_kind=TriggerKind.scheduled,
        trigger_id=trigger,
        requested_by="scheduler",
    )


def states(store: StateStore, dep_id: str) -> list[str]:
    return [str(t.to_state) for t in get_deployment(store, dep_id).history]


def dev_config(repo: Repo, service: Service, **policy: Any) -> Config:
    return make_config(
        {"development": {"deployer": command_deployer(repo, service), "verification": VERIFICATION, **policy}}
    )


def test_push_to_a_feature_branch_deploys_to_development_and_verifies(sqlite_store, clock, repo, service):
    repo.commit("main", title="v1")
    sha = repo.commit("feature/login", title="login page")
    config = dev_config(repo, service)
    payload = push_payload("feature/login", sha)
    dep = request_from_push(config, sqlite_store, clock, payload, "delivery-1")
    assert dep.environment == "development" and dep.state == S.requested
    # A redelivered webhook returns the same deployment.
    again = request_from_push(config, sqlite_store, clock, payload, "delivery-1")
    assert again.id == dep.id and len(list_deployments(sqlite_store)) == 1

    outcome = make_runner(config, sqlite_store, clock).submit(deploy_run("development", "tick-1"))

    run = outcome.run
    assert run.status == RunStatus.succeeded, run.reason
    (action,) = run.actions
    assert action.status == ActionStatus.applied and action.verified is True
    assert action.risk == "low"
    done = get_deployment(sqlite_store, dep.id)
    assert done.state == S.succeeded
    assert states(sqlite_store, dep.id) == ["requested", "approved", "deploying", "verifying", "succeeded"]
    actors = [t.actor for t in done.history]
    assert actors[0] == "github:Codertocat" and actors[1] == "automation:deployment"
    assert actors[2:] == [f"run:{run.id}"] * 3
    times = [t.at for t in done.history]
    assert times == sorted(times) and times[0] == THURSDAY_10 and times[-1] == clock.now()
    assert service.get("/health") == (200, f"ok {sha}\n")
    assert "login page" in service.get("/")[1]
    assert done.verification["health"]["success_ratio"] == 1.0
    assert sqlite_store.get_lock("deploy:development") is None


def test_failed_verification_rolls_back_to_the_last_known_good_revision(sqlite_store, clock, repo, service):
    good = repo.commit("main", title="v1")
    bad = repo.commit("feature/broken", title="v2 broken", healthy=False)
    config = dev_config(repo, service)
    runner = make_runner(config, sqlite_store, clock)
    first = request_deployment(
        sqlite_store,
        clock,
        RandomIds(1),
        environment="development",
        ref="refs/heads/main",
        revision=good,
        repository="o/r",
        requested_by="user:alice",
        source_event=None,
    )
    assert runner.submit(deploy_run("development", "tick-1")).run.status == RunStatus.succeeded
    clock.advance(minutes=5)
    second = request_deployment(
        sqlite_store,
        clock,
        RandomIds(2),
        environment="development",
        ref="refs/heads/feature/broken",
        revision=bad,
        repository="o/r",
        requested_by="user:alice",
        source_event=None,
    )

    run = runner.submit(deploy_run("development", "tick-2")).run

    assert run.status == RunStatus.rolled_back
    assert "verification" in (run.reason or "")
    failed = get_deployment(sqlite_store, second.id)
    assert failed.state == S.rolled_back
    assert states(sqlite_store, second.id)[-3:] == ["verifying", "failed", "rolled_back"]
    reasons = [t.reason or "" for t in failed.history]
    assert any("probes succeeded" in r for r in reasons)
    assert f"rolled back to {good[:12]}" in reasons[-1]
    assert failed.last_known_good["deployment_id"] == first.id
    # The service really serves the good revision again.
    assert service.get("/health") == (200, f"ok {good}\n")
    assert service.deploys() == [good, bad, good]
    # Counted against the deployer's own breaker and the automation's.
    assert find_breaker(sqlite_store, "dependency:deployer:development").failures == 1
    assert find_breaker(sqlite_store, automation_breaker_name("deployment", "development")).failures == 1
    assert sqlite_store.get_lock("deploy:development") is None


def test_a_first_deployment_that_fails_has_nothing_to_roll_back_to(sqlite_store, clock, repo, service):
    bad = repo.commit("main", title="broken from the start", healthy=False)
    config = dev_config(repo, service)
    dep = request_deployment(
        sqlite_store,
        clock,
        RandomIds(1),
        environment="development",
        ref="refs/heads/feature/x",
        revision=bad,
        repository="o/r",
        requested_by="user:alice",
        source_event=None,
    )
    run = make_runner(config, sqlite_store, clock).submit(deploy_run("development", "tick-1")).run
    assert run.status == RunStatus.failed
    assert "no last known good revision" in run.error.message
    stored = get_deployment(sqlite_store, dep.id)
    assert stored.state == S.failed
    assert "no last known good" in stored.verification["rollback_error"]
    assert sqlite_store.get_lock("deploy:development") is None


def test_deploy_command_failure_is_recorded_and_rolled_back(sqlite_store, clock, repo, service):
    good = repo.commit("main", title="v1")
    config = dev_config(repo, service)
    runner = make_runner(config, sqlite_store, clock)
    request_deployment(
        sqlite_store,
        clock,
        RandomIds(1),
        environment="development",
        ref="refs/heads/main",
        revision=good,
        repository="o/r",
        requested_by="user:alice",
        source_event=None,
    )
    assert runner.submit(deploy_run("development", "tick-1")).run.status == RunStatus.succeeded
    clock.advance(minutes=1)
    missing = "0" * 40  # a commit the repository does not have: the deploy script exits 4
    dep = request_deployment(
        sqlite_store,
        clock,
        RandomIds(2),
        environment="development",
        ref="refs/heads/main",
        revision=missing,
        repository="o/r",
        requested_by="user:alice",
        source_event=None,
    )
    run = runner.submit(deploy_run("development", "tick-2")).run
    assert run.status == RunStatus.rolled_back
    stored = get_deployment(sqlite_store, dep.id)
    assert stored.state == S.rolled_back
    failure = next(t for t in stored.history if t.to_state == S.failed)
    assert "exit code 4" in failure.reason and "has no app/index.html" in failure.reason
    assert service.get("/health") == (200, f"ok {good}\n")


def test_production_needs_another_person_and_waits_for_its_window(sqlite_store, repo, service):
    # Thursday 16:30 UTC: just after the Mon-Thu 09:00-16:00 window closed.
    clock = FakeClock(dt.datetime(2026, 1, 8, 16, 30, tzinfo=UTC))
    sha = repo.commit("main", title="release 1")
    config = make_config(
        {
            "production": {
                "requires_approval": True,
                "windows": [{"days": ["mon", "tue", "wed", "thu"], "start": "09:00", "end": "16:00"}],
                "deployer": command_deployer(repo, service),
                "verification": VERIFICATION,
            }
        },
        identities={"github:alice": "alice@corp.example", "user:alice": "alice@corp.example"},
    )
    settings = deployment_settings(config)
    runner = make_runner(config, sqlite_store, clock)
    dep = request_from_push(config, sqlite_store, clock, push_payload("main", sha, pusher="alice"), "d-1")
    assert dep.environment == "production"

    run = runner.submit(deploy_run("production", "t-1")).run
    assert run.status == RunStatus.succeeded and run.actions == []
    assert get_deployment(sqlite_store, dep.id).state == S.awaiting_approval
    assert any("awaits approval" in f.summary for f in run.findings)

    with pytest.raises(ApprovalRefused, match="someone else"):
        approve(sqlite_store, clock, settings, dep.id, "github:alice", config=config)
    with pytest.raises(ApprovalRefused, match="linked to github:alice"):
        approve(sqlite_store, clock, settings, dep.id, "user:Alice", config=config)  # mapped
    assert get_deployment(sqlite_store, dep.id).state == S.awaiting_approval

    clock.advance(minutes=5)
    approved = approve(sqlite_store, clock, settings, dep.id, "user:bob", "looks good", config=config)
    assert approved.state == S.approved and approved.approved_by == "user:bob"
    assert approved.history[-1].actor == "user:bob"

    clock.advance(minutes=10)
    run = runner.submit(deploy_run("production", "t-2")).run
    assert run.actions == []
    waiting = get_deployment(sqlite_store, dep.id)
    assert waiting.state == S.waiting_for_window
    assert "outside deployment window" in waiting.history[-1].reason
    assert run.summary["window"]["next_open"] == "2026-01-12T09:00:00.000000Z"

    for when, trigger in ((dt.datetime(2026, 1, 9, 10, 0), "t-3"), (dt.datetime(2026, 1, 12, 8, 59), "t-4")):
        clock.set(when.replace(tzinfo=UTC))  # Friday 10:00, then Monday 08:59: still closed
        assert runner.submit(deploy_run("production", trigger)).run.actions == []
    assert service.deploys() == []

    clock.set(dt.datetime(2026, 1, 12, 9, 0, tzinfo=UTC))  # Monday 09:00: the window opens
    run = runner.submit(deploy_run("production", "t-5")).run
    assert run.status == RunStatus.succeeded, run.reason
    (action,) = run.actions
    assert action.status == ActionStatus.applied
    assert "approved by user:bob" in action.description and action.params["environment_risk"] == "high"
    assert action.risk == "high" and action.approved_by == "user:bob"
    assert get_deployment(sqlite_store, dep.id).state == S.succeeded
    assert service.deploys() == [sha]


def test_newer_push_supersedes_an_older_unapproved_deployment(sqlite_store, clock, repo, service):
    first = repo.commit("main", title="r1")
    config = make_config(
        {"production": {"requires_approval": True, "deployer": command_deployer(repo, service)}}
    )
    d1 = request_from_push(config, sqlite_store, clock, push_payload("main", first, "alice"), "d-1")
    clock.advance(minutes=1)
    second = repo.commit("main", title="r2")
    d2 = request_from_push(
        config, sqlite_store, clock, push_payload("main", second, "alice", before=first), "d-2"
    )
    old = get_deployment(sqlite_store, d1.id)
    assert old.state == S.superseded and old.superseded_by == d2.id
    run = make_runner(config, sqlite_store, clock).submit(deploy_run("production", "t-1")).run
    assert run.actions == []
    assert get_deployment(sqlite_store, d2.id).state == S.awaiting_approval


def test_an_approved_deployment_stays_and_goes_out_before_a_newer_push(sqlite_store, clock, repo, service):
    first = repo.commit("main", title="r1")
    config = make_config(
        {
            "production": {
                "requires_approval": True,
                "deployer": command_deployer(repo, service),
                "verification": VERIFICATION,
            }
        }
    )
    settings = deployment_settings(config)
    d1 = request_from_push(config, sqlite_store, clock, push_payload("main", first, "alice"), "d-1")
    approve(sqlite_store, clock, settings, d1.id, "user:bob", config=config)
    clock.advance(minutes=1)
    second = repo.commit("main", title="r2")
    d2 = request_from_push(
        config, sqlite_store, clock, push_payload("main", second, "alice", before=first), "d-2"
    )
    assert get_deployment(sqlite_store, d1.id).state == S.approved  # a person's approval stands
    record = sqlite_store.get_event(record_id("webhooks", "d-2"))
    assert f"waits for approved {d1.id}" in record.reason

    runner = make_runner(config, sqlite_store, clock)
    run = runner.submit(deploy_run("production", "t-1")).run
    assert run.status == RunStatus.succeeded, run.reason
    assert [a.params["deployment_id"] for a in run.actions] == [d1.id]
    assert service.deploys() == [first]
    assert get_deployment(sqlite_store, d2.id).state == S.awaiting_approval  # its own approval

    approve(sqlite_store, clock, settings, d2.id, "user:bob", config=config)
    run = runner.submit(deploy_run("production", "t-2")).run
    assert run.status == RunStatus.succeeded, run.reason
    assert service.deploys() == [first, second]
    assert get_deployment(sqlite_store, d1.id).state == S.succeeded


def test_a_newer_approved_deployment_replaces_an_older_approved_one(sqlite_store, clock, repo, service):
    first = repo.commit("main", title="r1")
    config = make_config(
        {"production": {"requires_approval": True, "deployer": command_deployer(repo, service)}}
    )
    settings = deployment_settings(config)
    d1 = request_from_push(config, sqlite_store, clock, push_payload("main", first, "alice"), "d-1")
    approve(sqlite_store, clock, settings, d1.id, "user:bob", config=config)
    second = repo.commit("main", title="r2")
    d2 = request_from_push(
        config, sqlite_store, clock, push_payload("main", second, "alice", before=first), "d-2"
    )
    approve(sqlite_store, clock, settings, d2.id, "user:carol", config=config)
    run = make_runner(config, sqlite_store, clock).submit(deploy_run("production", "t-1", level=0)).run
    old = get_deployment(sqlite_store, d1.id)
    assert old.state == S.superseded and old.superseded_by == d2.id
    assert "approved newer request" in old.history[-1].reason
    assert any(f.id == f"deployment.superseded.{d1.id}" for f in run.findings)
    assert run.summary["candidate"] == d2.id


def test_freeze_blocks_until_it_ends(sqlite_store, repo, service):
    clock = FakeClock(dt.datetime(2026, 1, 6, 10, 0, tzinfo=UTC))  # Tuesday, inside the window
    sha = repo.commit("main", title="r1")
    config = make_config(
        {
            "staging": {
                "windows": [{"days": ["mon", "tue", "wed", "thu"], "start": "09:00", "end": "16:00"}],
                "freezes": [
                    {
                        "start": "2026-01-05T00:00:00Z",
                        "end": "2026-01-07T12:00:00Z",
                        "reason": "quarter close",
                    }
                ],
                "deployer": command_deployer(repo, service),
                "verification": VERIFICATION,
            }
        }
    )
    runner = make_runner(config, sqlite_store, clock)
    dep = request_deployment(
        sqlite_store,
        clock,
        RandomIds(1),
        environment="staging",
        ref="refs/heads/develop",
        revision=sha,
        repository="o/r",
        requested_by="github:alice",
        source_event=None,
    )
    run = runner.submit(deploy_run("staging", "t-1")).run
    assert run.actions == []
    assert "quarter close" in get_deployment(sqlite_store, dep.id).history[-1].reason
    assert run.summary["window"]["next_open"] == "2026-01-07T12:00:00.000000Z"
    clock.set(dt.datetime(2026, 1, 7, 12, 0, tzinfo=UTC))
    run = runner.submit(deploy_run("staging", "t-2")).run
    assert run.status == RunStatus.succeeded and run.actions[0].risk == "medium"
    assert get_deployment(sqlite_store, dep.id).state == S.succeeded


def test_automation_level_gates_staging_deployments(sqlite_store, clock, repo, service):
    sha = repo.commit("main", title="r1")
    config = make_config({"staging": {"deployer": command_deployer(repo, service)}})
    dep = request_deployment(
        sqlite_store,
        clock,
        RandomIds(1),
        environment="staging",
        ref="refs/heads/develop",
        revision=sha,
        repository="o/r",
        requested_by="github:alice",
        source_event=None,
    )
    request = deploy_run("staging", "t-1")
    request.automation_level = 1
    run = make_runner(config, sqlite_store, clock).submit(request).run
    assert run.actions[0].status == ActionStatus.skipped
    assert "needs automation level 2" in run.actions[0].reason
    assert get_deployment(sqlite_store, dep.id).state == S.approved
    assert service.deploys() == []


def test_one_deployment_per_environment_at_a_time(sqlite_store, clock, repo, service):
    sha = repo.commit("main", title="r1")
    config = dev_config(repo, service)
    runner = make_runner(config, sqlite_store, clock)
    assert sqlite_store.acquire_lock(
        "deploy:development", "run:someone-else", now=clock.now(), ttl_seconds=600
    )
    dep = request_deployment(
        sqlite_store,
        clock,
        RandomIds(1),
        environment="development",
        ref="refs/heads/feature/a",
        revision=sha,
        repository="o/r",
        requested_by="github:alice",
        source_event=None,
    )
    run = runner.submit(deploy_run("development", "t-1")).run
    assert run.actions == []
    assert any("being deployed by run:someone-else" in f.summary for f in run.findings)
    assert service.deploys() == []
    clock.advance(seconds=601)  # the other holder's lease expired (it died)
    run = runner.submit(deploy_run("development", "t-2")).run
    assert run.status == RunStatus.succeeded
    assert get_deployment(sqlite_store, dep.id).state == S.succeeded


def test_branch_name_with_shell_metacharacters_is_data_not_code(sqlite_store, clock, repo, service, tmp_path):
    branch = "feature/$(touch${IFS}pwned);rm${IFS}-rf${IFS}x"
    for where in (service.root, repo.path, tmp_path):
        (where / "x").mkdir(exist_ok=True)
    repo.commit("main", title="v1")
    sha = repo.commit(branch, title="hostile branch")
    assert repo.git("rev-parse", "--abbrev-ref", "HEAD") == branch  # git accepts it: it is real input
    extra = {
        "build": [
            [
                sys.executable,
                "-c",
                "import sys; open('argv.json','w').write(repr(sys.argv[1:]))",
                "{branch}",
                "{ref}",
            ]
        ],
    }
    config = make_config(
        {"development": {"deployer": command_deployer(repo, service, **extra), "verification": VERIFICATION}}
    )
    dep = request_from_push(config, sqlite_store, clock, push_payload(branch, sha), "d-meta")
    assert dep.environment == "development"

    run = make_runner(config, sqlite_store, clock).submit(deploy_run("development", "t-1")).run

    assert run.status == RunStatus.succeeded, run.reason
    ref = f"refs/heads/{branch}"
    assert (service.www / "ref.txt").read_text() == ref
    assert (service.www / "env-ref.txt").read_text() == ref
    assert (service.root / "argv.json").read_text() == repr([branch, ref])
    assert not list(tmp_path.rglob("pwned")) and not Path("pwned").exists()
    assert all((where / "x").is_dir() for where in (service.root, repo.path, tmp_path))


def test_refs_git_would_refuse_are_refused_before_any_command(sqlite_store, clock):
    config = make_config({})
    hostile = "refs/heads/feature/$(touch pwned);rm -rf x"
    assert environment_for_ref(config, hostile) is None
    with pytest.raises(InputError, match="not a valid git ref"):
        request_deployment(
            sqlite_store,
            clock,
            RandomIds(1),
            environment="development",
            ref=hostile,
            revision="a" * 40,
            repository="o/r",
            requested_by="github:x",
            source_event="d-1",
        )
    with pytest.raises(InputError, match="not a revision"):
        request_deployment(
            sqlite_store,
            clock,
            RandomIds(1),
            environment="development",
            ref="refs/heads/main",
            revision="--upload-pack=touch",
            repository="o/r",
            requested_by="github:x",
            source_event="d-2",
        )
    assert list_deployments(sqlite_store) == []


def test_tags_and_deletions_never_deploy(sqlite_store, clock):
    config = make_config({})
    tag_deletion = json.loads((WEBHOOKS / "push-payload.json").read_text())
    assert tag_deletion["deleted"] is True
    assert request_from_push(config, sqlite_store, clock, tag_deletion, "d-1") is None
    assert environment_for_ref(config, "refs/tags/v1.2.0") is None
    assert environment_for_ref(config, "refs/pull/7/head") is None
    branch_deletion = push_payload("feature/old", "0" * 40)
    branch_deletion["deleted"] = True
    assert request_from_push(config, sqlite_store, clock, branch_deletion, "d-2") is None
    assert list_deployments(sqlite_store) == []


def test_branch_mapping_is_configurable(sqlite_store):
    default = make_config({})
    assert environment_for_ref(default, "refs/heads/main") == "production"
    assert environment_for_ref(default, "refs/heads/develop") == "staging"
    assert environment_for_ref(default, "refs/heads/feature/x") == "development"
    from orchestra.config import parse_config

    custom = parse_config(
        json.dumps(
            {
                "environments": {"development": {}, "staging": {}, "production": {}},
                "automations": {
                    "deployment": {
                        "settings": {
                            "branches": {"trunk": "production", "release/*": "staging"},
                            "other_branches": None,
                        }
                    }
                },
            }
        )
    )
    assert environment_for_ref(custom, "refs/heads/trunk") == "production"
    assert environment_for_ref(custom, "refs/heads/release/2.1") == "staging"
    assert environment_for_ref(custom, "refs/heads/main") is None


def test_required_suite_failure_blocks_the_deployment(sqlite_store, clock, repo, service, tmp_path):
    junit_writer = tmp_path / "suite.py"
    junit_writer.write_text(
        "import pathlib\n"
        "ok = pathlib.Path('app/health.txt').read_text().strip() == 'ok'\n"
        'case = \'<testcase classname="app" name="test_health" time="0.01"/>\' if ok else (\n'
        '    \'<testcase classname="app" name="test_health" time="0.01">\'\n'
        "    '<failure message=\"health is broken\">assert False</failure></testcase>')\n"
        "pathlib.Path('junit.xml').write_text('<testsuite name=\"unit\" tests=\"1\">' + case + '</testsuite>')\n"
        "raise SystemExit(0 if ok else 1)\n"
    )
    config = make_config(
        {
            "staging": {
                "deployer": command_deployer(repo, service),
                "required_suites": ["unit"],
                "verification": VERIFICATION,
            }
        },
        testing={"suites": {"unit": {"command": [sys.executable, str(junit_writer)], "junit": "junit.xml"}}},
    )
    runner = make_runner(config, sqlite_store, clock)
    repo.commit("main", title="v1")
    bad = repo.commit("develop", title="broken", healthy=False)
    dep = request_deployment(
        sqlite_store,
        clock,
        RandomIds(1),
        environment="staging",
        ref="refs/heads/develop",
        revision=bad,
        repository="o/r",
        requested_by="github:alice",
        source_event=None,
    )
    # No result yet: it waits.
    run = runner.submit(deploy_run("staging", "t-0")).run
    assert run.actions == [] and any("waits for required suite" in f.summary for f in run.findings)
    tests = runner.submit(
        RunRequest(
            origin=Origin.local,
            task="testing",
            params={"suite": "unit", "repo": str(repo.path)},
            trigger_id="test-1",
        )
    ).run
    assert tests.summary["suites_run"][0]["status"] == "failed"
    assert tests.summary["suites_run"][0]["revision"] == bad
    run = runner.submit(deploy_run("staging", "t-1")).run
    assert run.actions == []
    blocked = [f for f in run.findings if f.id.startswith("deployment.tests-failed")]
    assert blocked and blocked[0].severity == "high" and "unit (failed" in blocked[0].summary
    assert get_deployment(sqlite_store, dep.id).state == S.approved

    clock.advance(minutes=5)
    good = repo.commit("develop", title="fixed")
    fixed = request_deployment(
        sqlite_store,
        clock,
        RandomIds(2),
        environment="staging",
        ref="refs/heads/develop",
        revision=good,
        repository="o/r",
        requested_by="github:alice",
        source_event=None,
    )
    runner.submit(
        RunRequest(
            origin=Origin.local,
            task="testing",
            params={"suite": "unit", "repo": str(repo.path)},
            trigger_id="test-2",
        )
    )
    run = runner.submit(deploy_run("staging", "t-2")).run
    assert run.status == RunStatus.succeeded, run.reason
    assert get_deployment(sqlite_store, fixed.id).state == S.succeeded
    assert get_deployment(sqlite_store, dep.id).state == S.superseded


def test_error_rate_rule_fails_verification_and_rolls_back(sqlite_store, clock, repo, service, tmp_path):
    good = repo.commit("main", title="v1")
    second = repo.commit("main", title="v2")
    rates = tmp_path / "error_rate.csv"
    rates.write_text("timestamp,value\n2026-01-08T09:50:00Z,0.2\n2026-01-08T09:55:00Z,0.3\n")
    verification = {
        **VERIFICATION,
        "error_rate": {"above": 1.0, "minutes": 10, "source": "file", "path": str(rates)},
    }
    config = make_config(
        {"development": {"deployer": command_deployer(repo, service), "verification": verification}}
    )
    runner = make_runner(config, sqlite_store, clock)
    request_deployment(
        sqlite_store,
        clock,
        RandomIds(1),
        environment="development",
        ref="refs/heads/main",
        revision=good,
        repository="o/r",
        requested_by="user:a",
        source_event=None,
    )
    run = runner.submit(deploy_run("development", "t-1")).run
    assert run.status == RunStatus.succeeded, (run.reason, run.error)
    assert run.actions[0].result["verification"]["error_rate"]["ok"] is True
    rates.write_text("timestamp,value\n2026-01-08T10:00:00Z,4.0\n2026-01-08T10:05:00Z,6.5\n")
    clock.advance(minutes=10)
    dep = request_deployment(
        sqlite_store,
        clock,
        RandomIds(2),
        environment="development",
        ref="refs/heads/main",
        revision=second,
        repository="o/r",
        requested_by="user:a",
        source_event=None,
    )
    run = runner.submit(deploy_run("development", "t-2")).run
    assert run.status == RunStatus.rolled_back
    stored = get_deployment(sqlite_store, dep.id)
    assert stored.state == S.rolled_back
    assert "error rate 5.25% above 1%" in stored.verification["error_rate"]["reason"]
    assert service.get("/health") == (200, f"ok {good}\n")


def test_settings_that_name_unknown_environments_are_refused(sqlite_store, clock):
    from orchestra.config import parse_config
    from orchestra.errors import ConfigError

    def config_with(settings: dict[str, Any]) -> Config:
        doc = {
            "environments": {"development": {}, "staging": {}, "production": {}},
            "automations": {"deployment": {"settings": settings}},
        }
        return parse_config(json.dumps(doc))

    typo = config_with({"environments": {"prodution": {"requires_approval": True}}})
    with pytest.raises(ConfigError) as caught:
        deployment_settings(typo)
    assert "environments.prodution: unknown environment" in caught.value.problems[0]
    with pytest.raises(ConfigError, match="branches.main: unknown environment 'prod'"):
        deployment_settings(config_with({"branches": {"main": "prod"}}))
    # Listing one environment keeps the others' defaults: production still needs approval.
    only_staging = deployment_settings(
        config_with({"environments": {"staging": {"required_suites": ["unit"]}}})
    )
    assert only_staging.policy("production").requires_approval
    assert only_staging.policy("production").windows[0].days == ["mon", "tue", "wed", "thu"]
    assert only_staging.policy("staging").required_suites == ["unit"]
