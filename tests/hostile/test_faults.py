"""Faults seen from the `orchestra` command, each in a process of its own: a corrupt repository is
a finding (and never trips a breaker), a run skipped by an open breaker exits 3, a state file that
is not an Orchestra store is refused, and text from inputs is printed literally."""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from orchestra.breaker import BreakerState, CircuitBreaker, automation_breaker_name, find_breaker
from orchestra.clock import SystemClock
from orchestra.config import load_config
from orchestra.models import Action, Finding, Mode, Risk, Run, RunError, RunStatus, Severity, TriggerKind
from orchestra.store import open_store
from orchestra.toolkit.cli import EXIT_FAILED, EXIT_OK, EXIT_SKIPPED, EXIT_USAGE, run_exit_code

REPO_ROOT = Path(__file__).resolve().parents[2]
HOSTILE = ":x: [bold red]boom[/] [link=file:///etc/passwd]x[/link]"
# The same as a path inside a repository (no empty path component): directories and a file.
HOSTILE_PATH = ":x: [bold red]boom[/] [link=file:/etc/passwd]x[/link]"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A process environment: our own store and git configuration, the test automations."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "gitconfig").write_text("[init]\n\tdefaultBranch = main\n[gc]\n\tautoDetach = false\n")
    base = {
        k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "ORCHESTRA_")) and k != "CONFIG_PATH"
    }
    return {
        **base,
        "HOME": str(home),
        "GIT_CONFIG_GLOBAL": str(home / "gitconfig"),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "Test Author",
        "GIT_AUTHOR_EMAIL": "author@example.invalid",
        "GIT_COMMITTER_NAME": "Test Committer",
        "GIT_COMMITTER_EMAIL": "committer@example.invalid",
        "ORCHESTRA_STORE": f"sqlite:///{tmp_path / 'state' / 'state.db'}",
        "ORCHESTRA_EXTRA_AUTOMATIONS": "tests.runner.cli_plugin",
        "PYTHONPATH": os.pathsep.join((str(REPO_ROOT / "shared"), str(REPO_ROOT))),
        "COLUMNS": "200",
    }


def orchestra(env: dict[str, str], *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestra.cli.main", *args],
        cwd=cwd or REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def git(repo: Path, env: dict[str, str], *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def make_repo(path: Path, env: dict[str, str], files: dict[str, bytes] | None = None) -> Path:
    path.mkdir(parents=True)
    git(path, env, "init", "-q")
    for name, data in (files or {"README.md": b"hello\n", "src/app.py": b"print(1)\n"}).items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_bytes(data)
    git(path, env, "add", "-A")
    git(path, env, "commit", "-q", "-m", "initial")
    return path


@pytest.fixture
def store_of(env: dict[str, str]) -> Iterator[Any]:
    opened = []

    def get() -> Any:
        store = open_store(env["ORCHESTRA_STORE"])
        opened.append(store)
        return store

    yield get
    for store in opened:
        store.close()


# ---------------------------------------------------------------- a corrupt repository


def test_corrupt_repository_is_a_finding_and_never_opens_the_breaker(env, tmp_path, store_of):
    repo = make_repo(tmp_path / "corrupt", env)
    oid = git(repo, env, "rev-parse", "HEAD:src/app.py").strip()
    loose = repo / ".git" / "objects" / oid[:2] / oid[2:]
    loose.chmod(0o644)
    with open(loose, "r+b") as handle:
        handle.seek(2)
        handle.write(b"\x00" * 8)
    threshold = load_config(None).runner.breaker.failure_threshold
    for attempt in range(threshold + 1):
        done = orchestra(env, "run", "workspace", "--repo", str(repo), "--format", "json")
        assert done.returncode == EXIT_OK, (attempt, done.stdout, done.stderr)
        run = json.loads(done.stdout)
        assert run["status"] == "succeeded" and run["error"] is None
        [finding] = [f for f in run["findings"] if f["id"] == "workspace.repository-corrupt"]
        assert finding["summary"].startswith("repository corrupt: ") and oid in finding["summary"]
        assert finding["severity"] in ("high", "critical")
        assert "Traceback" not in done.stderr
    record = find_breaker(store_of(), automation_breaker_name("workspace", "development"))
    assert record is None or (record.state == BreakerState.closed and record.failures == 0)
    healthy = make_repo(tmp_path / "healthy", env)
    done = orchestra(env, "run", "workspace", "--repo", str(healthy), "--format", "json")
    assert done.returncode == EXIT_OK, done.stderr
    assert json.loads(done.stdout)["status"] == "succeeded"


# ---------------------------------------------------------------- skipped by an open breaker


def _open_breaker(store: Any, task: str) -> None:
    config = load_config(None).runner.breaker
    breaker = CircuitBreaker(store, automation_breaker_name(task, "development"), config, SystemClock())
    for _ in range(config.failure_threshold):
        breaker.record_failure("RuntimeError: dependency down")
    assert breaker.read().state == BreakerState.open


def test_a_run_skipped_by_an_open_breaker_exits_three(env, store_of):
    _open_breaker(store_of(), "noop")
    done = orchestra(env, "run", "noop", "--format", "json")
    assert done.returncode == EXIT_SKIPPED, (done.stdout, done.stderr)
    run = json.loads(done.stdout)
    assert run["status"] == "skipped" and run["reason"].startswith("circuit automation:noop:development open")
    text = orchestra(env, "run", "noop")
    assert text.returncode == EXIT_SKIPPED and "skipped" in text.stdout


def test_run_all_exits_three_when_a_run_was_skipped_and_none_failed(env, tmp_path, store_of):
    repo = make_repo(tmp_path / "repo", env)  # `run all` analyses the current directory
    _open_breaker(store_of(), "noop")
    done = orchestra(env, "run", "all", "--format", "json", cwd=repo)
    runs = {r["task"]: r for r in json.loads(done.stdout)}
    assert runs["noop"]["status"] == "skipped"
    assert all(r["status"] == "succeeded" for task, r in runs.items() if task != "noop"), runs
    assert done.returncode == EXIT_SKIPPED, done.stderr


def _run(status: RunStatus, *, reason: str | None = None, bad_input: bool = False) -> Run:
    now = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)
    return Run(
        id=f"noop-{random.Random(str((status, reason, bad_input))).getrandbits(64):x}",
        task="noop",
        trigger_kind=TriggerKind.manual,
        trigger_id="t",
        environment="development",
        mode=Mode.analyze,
        automation_level=1,
        status=status,
        reason=reason,
        error=RunError(type="InputError", message="bad", bad_input=True) if bad_input else None,
        created_at=now,
        updated_at=now,
    )


def test_exit_code_precedence_bad_input_then_failure_then_skipped():
    skipped = _run(RunStatus.skipped, reason="circuit automation:noop:development open since …")
    expired = _run(RunStatus.skipped, reason="approval expired at 2026-01-05T00:00:00Z")
    failed = _run(RunStatus.failed)
    bad = _run(RunStatus.failed, bad_input=True)
    ok = _run(RunStatus.succeeded)
    assert run_exit_code([ok, expired]) == EXIT_OK  # skipped for another reason did what it should
    assert run_exit_code([ok, skipped]) == EXIT_SKIPPED
    assert run_exit_code([skipped, _run(RunStatus.rolled_back)]) == EXIT_FAILED
    assert run_exit_code([skipped, failed]) == EXIT_FAILED
    assert run_exit_code([skipped, failed, bad]) == EXIT_USAGE


# ---------------------------------------------------------------- a state file that is not ours


def _one_line_error(done: subprocess.CompletedProcess[str], path: Path) -> str:
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ") and str(path) in lines[0]
    return lines[0]


@pytest.mark.parametrize("kind", ["empty", "other-sqlite", "text"])
def test_a_state_file_without_our_schema_is_refused_by_every_command(env, tmp_path, kind):
    path = tmp_path / "state.db"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "other-sqlite":
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE accounts (name TEXT, secret TEXT)")
        conn.execute("INSERT INTO accounts VALUES ('alice', 'hunter2')")
        conn.commit()
        conn.close()
    else:
        path.write_text("api_key = hunter2\n" * 100)
    before = path.read_bytes()
    env = {**env, "ORCHESTRA_STORE": f"sqlite:///{path}"}
    health = orchestra(env, "health")
    assert health.returncode == 2, (health.stdout, health.stderr)
    assert health.stdout.startswith("unhealthy") and str(path) in " ".join(health.stdout.split())
    for args in (["runs", "list"], ["run", "noop"], ["breakers"], ["runs", "recover"], ["dlq", "list"]):
        done = orchestra(env, *args)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        line = _one_line_error(done, path)
        assert "hunter2" not in line and "accounts" not in line
    assert path.read_bytes() == before, "a file that is not ours is left as it was"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("state.db")) == ["state.db"]


def test_a_state_file_that_does_not_exist_yet_is_created(env, tmp_path):
    path = tmp_path / "fresh" / "state.db"
    env = {**env, "ORCHESTRA_STORE": f"sqlite:///{path}"}
    done = orchestra(env, "run", "noop", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert path.is_file()
    listed = orchestra(env, "runs", "list", "--format", "json")
    assert [r["id"] for r in json.loads(listed.stdout)] == [json.loads(done.stdout)["id"]]


# ---------------------------------------------------------------- text printed literally


def test_text_from_inputs_is_printed_literally_by_run_and_runs_show(env, tmp_path):
    """A file name in the repository reaches findings and the report's tables as it is."""
    big = random.Random(3).randbytes(1_200_000)  # large enough to be a finding
    repo = make_repo(tmp_path / "repo", env, {"README.md": b"hi\n", f"{HOSTILE_PATH}.bin": big})
    done = orchestra(env, "run", "workspace", "--repo", str(repo))
    assert done.returncode == 0, done.stderr
    assert f"{HOSTILE_PATH}.bin is 1.2 MB and is in HEAD" in done.stdout, done.stdout  # the finding
    assert "❌" not in done.stdout and "\x1b]8;" not in done.stdout
    listed = json.loads(orchestra(env, "runs", "list", "--format", "json").stdout)
    shown = orchestra(env, "runs", "show", listed[0]["id"])
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.count(f"{HOSTILE_PATH}.bin") >= 2  # the finding and the largest blobs
    assert "❌" not in shown.stdout


def test_run_fields_are_printed_literally_by_runs_show(env, store_of):
    now = SystemClock().now()
    run = Run(
        id="noop-hostile",
        task="noop",
        trigger_kind=TriggerKind.manual,
        trigger_id="hostile",
        environment="development",
        mode=Mode.apply,
        automation_level=1,
        status=RunStatus.rolled_back,
        reason=f"reason {HOSTILE}",
        error=RunError(type="RuntimeError", message=f"error {HOSTILE}"),
        findings=[Finding(id="f", severity=Severity.high, summary=f"finding {HOSTILE}")],
        actions=[
            Action(
                id="a", description=f"action {HOSTILE}", risk=Risk.low, kind="set", reason=f"why {HOSTILE}"
            )
        ],
        created_at=now,
        updated_at=now,
    )
    assert store_of().create_run(run)
    done = orchestra(env, "runs", "show", "noop-hostile")
    assert done.returncode == 0, done.stderr
    for label in ("reason", "error", "finding", "action", "why"):
        assert f"{label} {HOSTILE}" in done.stdout, (label, done.stdout)
    assert "❌" not in done.stdout and "\x1b]8;" not in done.stdout  # no emoji, no hyperlink
