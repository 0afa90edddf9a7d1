"""Every schedule derived from the default configuration can succeed where it runs.

For the cloud, the jobs are what Terraform's configuration module derives (evaluated by Terraform
itself); each is run once, in analyze mode, the way a function runs it: a remote scheduled
trigger, in a working directory that is not a repository (a function has no working copy). For
continuous mode, the schedules are the library's (``configured_schedules``, target ``local``) and
run from this working copy. Every run must succeed: a schedule that cannot fails this test.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from orchestra.app import load_config
from orchestra.clock import FakeClock
from orchestra.config import Config
from orchestra.inputs import Origin
from orchestra.models import Mode, Run, RunStatus, TriggerKind
from orchestra.registry import registry
from orchestra.runner import Runner, RunRequest
from orchestra.scheduling import configured_schedules, schedule_trigger_id
from orchestra.store.sqlite import SqliteStateStore

from .conftest import DEFAULT_CONFIG, ROOT

NOW = dt.datetime(2026, 1, 4, 3, 0, tzinfo=dt.UTC)  # a Sunday, 03:00 UTC: the workspace slot
ENVIRONMENTS = ["development", "staging", "production"]
NO_SOURCE_NOTE = (
    "workspace: no schedule in the cloud: set automations.workspace.settings.source (a repository "
    "to clone); weekly maintenance runs in GitHub Actions (.github/workflows/workspace.yml)"
)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStateStore]:
    opened = SqliteStateStore(str(tmp_path / "state.db"))
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def not_a_repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A function's working directory: its source, no git repository anywhere above it."""
    where = tmp_path / "function"
    where.mkdir()
    monkeypatch.chdir(where)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    assert subprocess.run(["git", "rev-parse", "--git-dir"], cwd=where, capture_output=True).returncode != 0
    return where


def run_once(
    config: Config, store: SqliteStateStore, task: str, environment: str, origin: Origin, **extra: Any
) -> Run:
    runner = Runner(
        config,
        store,
        clock=FakeClock(NOW),
        owner="schedules-test",
        registry=registry,
        heartbeat_in_background=False,
    )
    request = RunRequest(
        task=task,
        environment=environment,
        mode=Mode.analyze,
        trigger_kind=TriggerKind.scheduled,
        trigger_id=schedule_trigger_id(task, environment, NOW),
        requested_by="cloud-scheduler" if origin == Origin.remote else "controller",
        origin=origin,
        **extra,
    )
    return runner.submit(request).run


def assert_succeeded(run: Run, where: str) -> None:
    assert run.status == RunStatus.succeeded, (
        f"{where}: {run.task}@{run.environment} {run.status}: {run.error}"
    )


def cloud_jobs(
    evaluate_config_module: Callable[..., Any], config_file: Path, environment: str
) -> dict[str, Any]:
    result = evaluate_config_module(config_file, environment)
    assert result.returncode == 0, result.stderr
    return result.outputs["schedule_jobs"]


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_every_cloud_job_of_the_default_configuration_succeeds(
    evaluate_config_module, environment: str, store: SqliteStateStore, not_a_repository: Path
) -> None:
    config = load_config(DEFAULT_CONFIG, registry=registry)
    jobs = cloud_jobs(evaluate_config_module, DEFAULT_CONFIG, environment)
    # The library derives the same jobs and says why the workspace has none.
    derived = configured_schedules(config, environment, registry=registry, target="cloud")
    assert {f"{s.task}-{s.environment}" for s in derived.schedules} == set(jobs)
    assert derived.notes == [NO_SOURCE_NOTE]
    assert "workspace" not in {job["task"] for job in jobs.values()}
    assert {job["task"] for job in jobs.values()} == {
        name for name, auto in config.automations.items() if auto.enabled and name != "workspace"
    }
    for key, job in sorted(jobs.items()):
        run = run_once(config, store, job["task"], job["environment"], Origin.remote)
        assert_succeeded(run, f"cloud job {key}")


@pytest.mark.parametrize("environment", ["development", "production"])
def test_every_continuous_schedule_of_the_default_configuration_succeeds(
    environment: str, store: SqliteStateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)  # the working copy `make dev` and the controller run in
    config = load_config(DEFAULT_CONFIG, registry=registry)
    found = configured_schedules(config, environment, registry=registry, target="local")
    assert found.notes == [] and found.unavailable == []
    assert {s.task for s in found.schedules} == {n for n, a in config.automations.items() if a.enabled}
    for schedule in found.schedules:
        run = run_once(config, store, schedule.task, schedule.environment, Origin.local)
        assert_succeeded(run, f"continuous schedule {schedule.task}@{schedule.environment}")
        if schedule.task == "workspace":
            assert run.summary["repo"] == str(ROOT)


def test_outside_a_repository_continuous_mode_derives_no_workspace_schedule(not_a_repository: Path) -> None:
    config = load_config(DEFAULT_CONFIG, registry=registry)
    found = configured_schedules(config, "development", registry=registry, target="local")
    assert "workspace" not in {s.task for s in found.schedules}
    assert found.notes == [
        "workspace: no schedule in continuous mode here: the working directory is not in a git "
        "repository; set automations.workspace.settings.source (a repository to clone); weekly "
        "maintenance runs in GitHub Actions (.github/workflows/workspace.yml)"
    ]


def test_a_schedule_that_cannot_succeed_fails_this_check(
    store: SqliteStateStore, not_a_repository: Path
) -> None:
    """What the checks above would meet if a workspace job were derived for the cloud without a
    source: the scheduled run fails (so they cannot pass by accident)."""
    config = load_config(DEFAULT_CONFIG, registry=registry)
    run = run_once(config, store, "workspace", "development", Origin.remote)
    assert run.status == RunStatus.failed
    assert run.error is not None and "not a git repository" in run.error.message
    with pytest.raises(AssertionError, match="workspace@development"):
        assert_succeeded(run, "cloud job workspace-development")


def make_bare_repository(where: Path) -> Path:
    work = where / "work"
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t"}
    env["GIT_COMMITTER_EMAIL"] = "t@example.com"
    subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True)
    (work / "README.md").write_text("hello\n")
    subprocess.run(["git", "-C", str(work), "add", "."], check=True)
    subprocess.run(
        ["git", "-C", str(work), "commit", "-q", "-m", "first"], check=True, env={**_path_env(), **env}
    )
    bare = where / "repo.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True)
    subprocess.run(["git", "-C", str(bare), "config", "uploadpack.allowFilter", "true"], check=True)
    return bare


def _path_env() -> dict[str, str]:
    return {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/")}


def test_with_a_source_the_cloud_job_clones_it_and_succeeds(
    evaluate_config_module, tmp_path: Path, store: SqliteStateStore, not_a_repository: Path
) -> None:
    bare = make_bare_repository(tmp_path)
    text = DEFAULT_CONFIG.read_text().replace(
        "      size_limit_bytes: 1000000000",
        f"      source: {{url: 'file://{bare}', branch: main}}\n      size_limit_bytes: 1000000000",
        1,
    )
    config_file = tmp_path / "config.yaml"
    config_file.write_text(text)
    config = load_config(config_file, registry=registry)
    jobs = cloud_jobs(evaluate_config_module, config_file, "production")
    assert jobs["workspace-production"]["schedule"] == config.automations["workspace"].schedule
    assert configured_schedules(config, "production", registry=registry, target="cloud").notes == []
    for key, job in sorted(jobs.items()):
        run = run_once(config, store, job["task"], job["environment"], Origin.remote)
        assert_succeeded(run, f"cloud job {key}")
        if job["task"] == "workspace":
            assert run.summary["source"]["url"] == f"file://{bare}"
            assert run.summary["source"]["commit"]
            assert run.summary["partial"] is True
            assert run.actions == []
