"""The `orchestra` command line: exit codes, bad configuration, bad input, run records."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from orchestra.cli.main import _lease_wait_message, cli
from orchestra.models import Lease, Mode, Run, RunStatus, TriggerKind
from orchestra.registry import registry
from orchestra.store import open_store

from tests.runner.automations import Noop, Tuner


@pytest.fixture(autouse=True)
def test_automations() -> Iterator[None]:
    registry.register(Noop)
    registry.register(Tuner)
    yield
    registry.unregister("noop")
    registry.unregister("tuner")


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.delenv("CONFIG_PATH", raising=False)
    store = f"sqlite:///{tmp_path}/nested/dir/state.db"
    monkeypatch.setenv("ORCHESTRA_STORE", store)
    return {"store": store}


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return str(path)


GOOD = """
environments:
  development: {automation_level: 1}
"""


def test_default_config_is_valid(env):
    code, out = invoke("config", "validate")
    assert code == 0, out
    assert "configuration OK" in out


def test_config_show_prints_effective_defaults(env, tmp_path):
    result = CliRunner().invoke(
        cli, ["config", "show", "--config", write(tmp_path, GOOD), "--format", "json"]
    )
    assert result.exit_code == 0
    shown = json.loads(result.stdout)  # where the store came from is a note on stderr
    assert shown["runner"]["retry"]["attempts"] == 3
    assert shown["environments"]["development"]["automation_level"] == 1


def test_invalid_yaml_names_the_line(env, tmp_path):
    code, out = invoke("config", "validate", "--config", write(tmp_path, "environments:\n  dev: [1, 2\n"))
    assert code == 2
    assert "line 3" in out or "line 2" in out


def test_every_problem_is_listed_with_its_path(env, tmp_path):
    bad = """
environments:
  development: {automation_level: "high", levle: 2}
automations:
  perfomance: {schedule: "0 2 * * *"}
  workspace: {schedule: "every sunday"}
runner:
  retry: {attempts: 7}
"""
    code, out = invoke("config", "validate", "--config", write(tmp_path, bad))
    assert code == 2
    assert "environments.development.automation_level:" in out
    assert "environments.development.levle: unknown key (typo?)" in out
    assert (
        "automations.perfomance: unknown automation 'perfomance'; accepted: ai-services, cost, deployment"
        in out
    )
    assert "not a valid cron expression" in out
    assert "runner.retry.attempts:" in out


def test_unknown_top_level_key_is_an_error(env, tmp_path):
    code, out = invoke("config", "validate", "--config", write(tmp_path, GOOD + "thresholdz: {}\n"))
    assert code == 2 and "thresholdz: unknown key" in out


def test_missing_config_file(env, tmp_path):
    code, out = invoke("config", "validate", "--config", str(tmp_path / "nope.yaml"))
    assert code == 2 and "not found" in out


def test_bad_config_is_rejected_before_anything_runs(env, tmp_path):
    code, _ = invoke("run", "noop", "--config", write(tmp_path, "environments: 3\n"))
    assert code == 2
    assert not (tmp_path / "nested").exists()


def test_run_creates_missing_store_directory_and_records_run(env, tmp_path):
    code, out = invoke("run", "noop", "--format", "json")
    assert code == 0, out
    run = json.loads(out)
    assert run["status"] == "succeeded" and run["trigger_kind"] == "manual"
    assert {
        "id",
        "task",
        "trigger_id",
        "environment",
        "mode",
        "automation_level",
        "attempts",
        "findings",
        "actions",
    } <= set(run)
    assert (tmp_path / "nested" / "dir" / "state.db").exists()
    code, out = invoke("runs", "show", run["id"], "--format", "json")
    assert code == 0 and json.loads(out)["id"] == run["id"]
    code, out = invoke("runs", "list", "--task", "noop", "--format", "json")
    assert [r["id"] for r in json.loads(out)] == [run["id"]]


def test_trigger_id_makes_cli_retries_safe(env, tmp_path):
    counter = tmp_path / "calls.log"
    for _ in range(3):
        code, _ = invoke("run", "noop", "--trigger-id", "nightly-2026-11-28", "--param", f"counter={counter}")
        assert code == 0
    assert counter.read_text().count("analyze") == 1


def test_run_all_runs_every_registered_automation(env, monkeypatch):
    from orchestra.registry import Registry

    only_noop = Registry({})
    only_noop.register(Noop)
    monkeypatch.setattr("orchestra.cli.main.registry", only_noop)
    code, out = invoke("run", "all", "--environment", "development", "--mode", "analyze")
    assert code == 0, out
    assert "noop — succeeded" in out
    assert "Not yet available" not in out


def test_unknown_task_and_bad_params_are_usage_errors(env):
    code, out = invoke("run", "nosuch")
    assert code == 2 and "unknown automation 'nosuch'" in out
    code, out = invoke("run", "noop", "--param", "colour=blue")
    assert code == 2 and "params.colour" in out
    code, out = invoke("run", "noop", "--environment", "moon")
    assert code == 2 and "unknown environment 'moon'" in out
    code, out = invoke("run", "noop", "--metric", "cpu")
    assert code == 2 and "NAME=PATH" in out


def test_failed_run_exits_one(env):
    code, out = invoke("run", "noop", "--param", "permanent_failure=true")
    assert code == 1
    assert "failed" in out


def test_unreadable_store_is_a_clear_usage_error(env, tmp_path, monkeypatch):
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database" * 200)
    monkeypatch.setenv("ORCHESTRA_STORE", f"sqlite:///{garbage}")
    code, out = invoke("run", "noop")
    assert code == 2 and "garbage.db" in out
    monkeypatch.setenv("ORCHESTRA_STORE", "postgres://nope")
    code, out = invoke("runs", "list")
    assert code == 2 and "accepted: sqlite:///" in out


def test_approve_through_cli_refuses_requester(env, tmp_path):
    target, counter = tmp_path / "svc.json", tmp_path / "calls.log"
    code, out = invoke(
        "run",
        "tuner",
        "--environment",
        "production",
        "--mode",
        "apply",
        "--automation-level",
        "3",
        "--param",
        f"target={target}",
        "--param",
        f"counter={counter}",
        "--param",
        "risks=[high]",
        "--as",
        "alice",
        "--format",
        "json",
    )
    run = json.loads(out)
    assert run["status"] == "awaiting_approval"
    code, out = invoke("approve", run["id"], "--as", "alice")
    assert code == 2 and "approval must come from another identity" in out
    code, out = invoke("approve", run["id"], "--as", "bob", "--format", "json")
    assert code == 0 and json.loads(out)["status"] == "succeeded"


def test_health_and_breakers_commands(env):
    # A new store with the default configuration: nothing open, running, overdue or waiting.
    code, out = invoke("health", "--format", "json")
    report = json.loads(out)
    assert code == 0 and report["status"] == "healthy", out
    assert {c["name"]: c["ok"] for c in report["checks"]} == {
        "store": True,
        "breakers": True,
        "leases": True,
        "schedules": True,
        "approvals": True,
    }
    code, out = invoke("breakers")
    assert code == 0 and "all closed" in out
    code, out = invoke("breakers", "reset", "automation:x:y")
    assert code == 2 and "no breaker named" in out


def test_purge_removes_only_expired_runs(env, tmp_path):
    import datetime as dt

    from orchestra.store import open_store

    code, out = invoke("run", "noop", "--format", "json")
    kept = json.loads(out)["id"]
    store = open_store(env["store"])
    old = store.get_run(kept).model_copy(update={"id": "old-run"})
    old.expires_at = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    store.create_run(old)
    code, out = invoke("runs", "purge")
    assert code == 0 and "removed 1" in out
    assert store.get_run("old-run") is None and store.get_run(kept) is not None


def test_bad_input_found_while_running_exits_two(env, tmp_path):
    code, out = invoke("run", "noop", "--param", "bad_input=true")
    assert code == 2, out
    assert "metrics.csv: line 3: not a number" in out


def test_operator_plugins_are_loaded_from_the_environment(env, monkeypatch):
    registry.unregister("noop")
    monkeypatch.setenv("ORCHESTRA_EXTRA_AUTOMATIONS", "tests.cli.plugin_module")
    code, out = invoke("run", "noop", "--format", "json")
    assert code == 0, out
    monkeypatch.setenv("ORCHESTRA_EXTRA_AUTOMATIONS", "no_such_module_here")
    code, out = invoke("runs", "list")
    assert code == 2 and "no_such_module_here: cannot import" in out


def test_bad_input_found_while_running_exits_two_from_every_command_that_runs(env, tmp_path):
    not_a_repo = tmp_path / "plain-dir"
    not_a_repo.mkdir()
    code, out = invoke("workspace", "optimize", "--repo", str(not_a_repo))
    assert code == 2, out
    assert "not a git repository" in out


def test_the_cli_module_leaves_the_machinery_to_the_commands_that_use_it():
    # Every invocation, the pre-commit hook and --help included, imports orchestra.cli.main.
    heavy = (
        "orchestra.runner",
        "orchestra.breaker",
        "orchestra.health",
        "orchestra.continuous",
        "orchestra.scheduling",
        "orchestra.events.dead_letters",
        "orchestra.automations.deployment.requests",
    )
    probe = f"import sys, orchestra.cli.main; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_param_scalars_stay_text_and_lists_are_yaml():
    from orchestra.cli.main import _params_from_flags

    params = _params_from_flags(None, (), None, None, None, ("revision=0123456", "risks=[low, high]", "n=3"))
    assert params == {"revision": "0123456", "risks": ["low", "high"], "n": "3"}


def test_config_show_shows_the_store_in_effect_and_where_it_came_from(env, tmp_path, monkeypatch):
    config = write(tmp_path, "store: sqlite:///from-config.db\n" + GOOD)
    # ORCHESTRA_STORE (set by the env fixture) overrides the file.
    result = CliRunner().invoke(cli, ["config", "show", "--config", config, "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["store"] == env["store"]
    assert "from ORCHESTRA_STORE (the configuration says sqlite:///from-config.db)" in result.stderr
    # --store overrides both; the text output stays YAML, the origin a comment.
    code, out = invoke("config", "show", "--config", config, "--store", "sqlite:///flag.db")
    assert code == 0, out
    assert out.splitlines()[0] == "# store: from --store (the configuration says sqlite:///from-config.db)"
    assert "\nstore: sqlite:///flag.db\n" in out
    # Without either, the file's store, and the note says so.
    monkeypatch.delenv("ORCHESTRA_STORE")
    code, out = invoke("config", "show", "--config", config)
    assert code == 0, out
    assert "\nstore: sqlite:///from-config.db\n" in out
    assert "ORCHESTRA_STORE is not set" in out.splitlines()[0]


def _hold_run(store_url: str, run_id: str, owner: str, expires_at: dt.datetime) -> None:
    """Make the recorded run look like one whose owner is (or was) still running it."""
    store = open_store(store_url)
    try:
        run = store.get_run(run_id)
        assert run is not None
        run.status = RunStatus.running
        run.finished_at = None
        run.lease = Lease(owner=owner, expires_at=expires_at, heartbeat_at=expires_at)
        assert store.save_run(run)
    finally:
        store.close()


def test_resubmitting_a_trigger_whose_run_is_held_by_a_lease_says_so_and_exits_3(env, tmp_path):
    counter = tmp_path / "calls.log"
    args = ["run", "noop", "--trigger-id", "held-1", "--param", f"counter={counter}"]
    code, out = invoke(*args, "--format", "json")
    assert code == 0, out
    run_id = json.loads(out)["id"]
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    _hold_run(env["store"], run_id, "host:gone-42", expires)

    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 3, result.output
    message = " ".join(result.stderr.split())
    assert f"{run_id}: trigger held-1 was not run again" in message
    assert f"lease of host:gone-42, waiting for the lease to expire at {expires.isoformat()}" in message
    assert "`orchestra runs recover`" in message and "later delivery" in message
    assert "trigger already handled" not in result.stdout
    assert counter.read_text().count("analyze") == 1  # not run a second time
    # The JSON output is the run, and the exit code says the same.
    result = CliRunner().invoke(cli, [*args, "--format", "json"])
    assert result.exit_code == 3
    assert json.loads(result.stdout)["status"] == "running"


def test_a_finished_duplicate_still_exits_0(env):
    code, _ = invoke("run", "noop", "--trigger-id", "done-1")
    assert code == 0
    code, out = invoke("run", "noop", "--trigger-id", "done-1")
    assert code == 0, out
    assert "trigger already handled" in out


def test_lease_wait_message_for_an_expired_lease_names_the_takeover():
    now = dt.datetime(2026, 1, 5, 12, 0, tzinfo=dt.UTC)
    run = Run(
        id="noop-abc",
        task="noop",
        trigger_kind=TriggerKind.manual,
        trigger_id="t-1",
        environment="development",
        mode=Mode.analyze,
        automation_level=1,
        status=RunStatus.running,
        created_at=now,
        updated_at=now,
        lease=Lease(owner="host:x", expires_at=now - dt.timedelta(minutes=1), heartbeat_at=now),
    )
    message = _lease_wait_message(run, now)
    assert "which expired at 2026-01-05T11:59:00+00:00" in message
    assert "`orchestra runs recover` or a later delivery of this trigger takes the run over" in message
    assert "waiting" not in _lease_wait_message(run.model_copy(update={"lease": None}), now)
