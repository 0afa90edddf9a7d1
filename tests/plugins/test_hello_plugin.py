"""The example operator plugin (examples/orchestra-hello), installed as an operator would install it
and driven through every trigger with no change to the core: the command line, a scheduled
Pub/Sub message to the scheduled function, and the continuous controller's schedule."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from orchestra.models import RunStatus, TriggerKind
from orchestra.store.sqlite import SqliteStateStore

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "orchestra-hello"


def _pip_install(target: Path) -> None:
    """``pip install --no-deps --target`` with the build backend the development requirements
    install (setuptools, wheel): no package index needed."""
    argv = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation"]
    done = subprocess.run(
        [*argv, "--no-index", "--target", str(target), str(EXAMPLE)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert done.returncode == 0, "pip install of the example plugin failed:\n" + done.stderr[-2000:]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("hello-site")
    _pip_install(target)
    assert (target / "orchestra_hello" / "plugin.py").is_file()
    return target


@pytest.fixture
def world(tmp_path: Path, site: Path) -> dict[str, Any]:
    greetings = tmp_path / "greetings"
    config = tmp_path / "config.yaml"
    config.write_text(
        "default_environment: development\n"
        "environments:\n"
        "  development: {automation_level: 1}\n"
        "automations:\n"
        "  hello:\n"
        f"    settings: {{directory: {json.dumps(str(greetings))}, greeting: Hi}}\n"
    )
    db = tmp_path / "state.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORCHESTRA_", "CONFIG_PATH"))}
    env.update(
        PYTHONPATH=os.pathsep.join([str(site), str(REPO)]),
        CONFIG_PATH=str(config),
        ORCHESTRA_STORE=f"sqlite:///{db}",
    )
    return {"env": env, "config": config, "db": db, "file": greetings / "greeting.txt"}


def orchestra(world: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestra.cli.main", *args],
        env=world["env"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )


@pytest.fixture
def store(world: dict[str, Any]) -> Iterator[SqliteStateStore]:
    opened = SqliteStateStore(world["db"])
    try:
        yield opened
    finally:
        opened.close()


def test_the_installed_plugin_is_discovered_and_brings_its_command(world: dict[str, Any]) -> None:
    listed = orchestra(world, "--help")
    assert listed.returncode == 0, listed.stderr
    assert "hello" in listed.stdout.split("Commands:", 1)[1]
    greeted = orchestra(world, "hello", "--name", "Ada", "--greeting", "Hey")
    assert (greeted.returncode, greeted.stdout) == (0, "Hey, Ada!\n")
    validated = orchestra(world, "config", "validate")
    assert validated.returncode == 0, validated.stdout + validated.stderr
    helped = orchestra(world, "run", "hello", "--help")
    assert helped.returncode == 0, helped.stderr
    assert "whom to greet" in helped.stdout
    assert "[default: world]" in helped.stdout


def test_plugin_settings_are_checked_by_its_model(world: dict[str, Any]) -> None:
    world["config"].write_text(
        world["config"].read_text().replace("greeting: Hi}", "greeting: Hi, colour: blue}")
    )
    result = orchestra(world, "config", "validate")
    assert result.returncode == 2
    assert "automations.hello.settings.colour: unknown key (typo?)" in result.stdout + result.stderr


def test_cli_run_applies_and_records(world: dict[str, Any], store: SqliteStateStore) -> None:
    result = orchestra(world, "run", "hello", "--mode", "apply", "--param", "name=Ada", "--format", "json")
    assert result.returncode == 0, result.stdout + result.stderr
    run = json.loads(result.stdout)
    assert run["status"] == "succeeded"
    assert world["file"].read_text() == "Hi, Ada!\n"
    [action] = run["actions"]
    assert action["status"] == "applied" and action["verified"] is True
    assert action["rollback"] == {"path": str(world["file"]), "previous": None}
    again = orchestra(world, "run", "hello", "--mode", "apply", "--param", "name=Ada", "--format", "json")
    assert json.loads(again.stdout)["actions"] == []  # already greets: nothing to change
    bad = orchestra(world, "run", "hello", "--param", "name=../../etc")
    assert bad.returncode == 2
    assert "name" in bad.stdout + bad.stderr


SCHEDULED_CLIENT = """
import json, sys
import functions_framework
body = json.loads(sys.argv[2])
client = functions_framework.create_app(target="scheduled_task", source=sys.argv[1]).test_client()
headers = {
    "ce-id": body["message"]["messageId"],
    "ce-source": "//pubsub.googleapis.com/projects/orchestra-test/topics/orchestra-scheduled",
    "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
    "ce-specversion": "1.0",
    "ce-time": "2026-01-05T12:00:00.000Z",
    "Content-Type": "application/json",
}
response = client.post("/", data=json.dumps(body), headers=headers)
print(response.status_code)
"""


def test_scheduled_message_runs_the_plugin(world: dict[str, Any], store: SqliteStateStore) -> None:
    import base64

    data = {"task": "hello", "mode": "apply", "params": {"name": "Grace", "punctuation": "."}}
    body = {
        "message": {
            "messageId": "hello-msg-1",
            "publishTime": "2026-01-05T12:00:00.000Z",
            "attributes": {},
            "data": base64.b64encode(json.dumps(data).encode()).decode(),
        },
        "subscription": "projects/orchestra-test/subscriptions/orchestra-scheduled",
    }
    source = str(REPO / "functions" / "scheduled" / "main.py")
    done = subprocess.run(
        [sys.executable, "-c", SCHEDULED_CLIENT, source, json.dumps(body)],
        env=world["env"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] in ("200", "204"), done.stdout + done.stderr
    assert world["file"].read_text() == "Hi, Grace.\n"
    [run] = store.list_runs(task="hello")
    assert run.trigger_kind == TriggerKind.scheduled and run.status == RunStatus.succeeded


def test_controller_runs_the_default_schedule(world: dict[str, Any], store: SqliteStateStore) -> None:
    world["file"].parent.mkdir(parents=True)
    world["file"].write_text("old greeting\n")
    result = orchestra(world, "controller", "--mode", "once", "--run-mode", "apply", "--format", "json")
    assert result.returncode == 0, result.stdout + result.stderr
    [slot] = json.loads(result.stdout)
    # The configuration names no schedule: the plugin's default one (09:00 UTC daily) applies,
    # in the plugin's default environment.
    assert slot["trigger_id"].startswith("schedule:hello:development:")
    assert slot["trigger_id"].endswith("T09:00:00Z")
    assert slot["run"]["status"] == "succeeded"
    assert world["file"].read_text() == "Hi, world!\n"
    [action] = slot["run"]["actions"]
    assert action["rollback"]["previous"] == "old greeting\n"


def test_rollback_restores_the_previous_greeting(world: dict[str, Any], site: Path) -> None:
    sys.path.insert(0, str(site))
    try:
        from orchestra_hello.plugin import HelloAutomation, HelloParams, HelloSettings
    finally:
        sys.path.remove(str(site))
    from types import SimpleNamespace

    plugin = HelloAutomation()
    target = world["file"]
    ctx: Any = SimpleNamespace(
        settings=HelloSettings(directory=str(target.parent)), params=HelloParams(name="Lin")
    )
    for before in (None, "kept\n"):
        if before is None:
            target.unlink(missing_ok=True)
        else:
            target.write_text(before)
        [action] = plugin.analyze(ctx).actions
        action.rollback = plugin.prepare(ctx, action)
        plugin.apply(ctx, action)
        assert target.read_text() == "Hello, Lin!\n"
        assert plugin.verify(ctx, action).ok
        plugin.rollback(ctx, action)
        plugin.rollback(ctx, action)  # safe to call twice
        assert (target.read_text() if target.exists() else None) == before
