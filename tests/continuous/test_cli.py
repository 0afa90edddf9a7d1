"""`orchestra controller`: one pass (--mode once) and the continuous process under SIGTERM."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from orchestra.cli.main import cli
from orchestra.models import RunStatus
from orchestra.registry import Registry
from orchestra.store.sqlite import SqliteStateStore

from tests.continuous.automations import WORKDIR_ENV, calls, set_behaviour
from tests.continuous.conftest import CONTROLLER_CONFIG

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(CONTROLLER_CONFIG)
    return path


@pytest.fixture
def once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, config_file: Path, test_registry: Registry
) -> Callable[..., Result]:
    """``orchestra controller --mode once`` on the test configuration and a SQLite store."""
    monkeypatch.setattr("orchestra.cli.controller.default_registry", test_registry)
    store = f"sqlite:///{tmp_path / 'state.db'}"

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(
            cli, ["controller", "--mode", "once", "--config", str(config_file), "--store", store, *args]
        )

    return invoke


def test_once_runs_the_due_slots_and_is_idempotent(once: Callable[..., Result], workdir: Path) -> None:
    first = once("--format", "json", "--environment", "staging", "--run-mode", "analyze")
    assert first.exit_code == 0, first.output
    done = json.loads(first.stdout)
    assert sorted(d["trigger_id"].rsplit(":", 3)[0] for d in done) == [
        "schedule:cost:production",
        "schedule:cost:staging",
        "schedule:testing:staging",
    ]
    assert all(
        d["run"]["status"] == "succeeded" and d["run"]["mode"] == "analyze" and not d["duplicate"]
        for d in done
    )
    again = once("--format", "json", "--environment", "staging")
    assert again.exit_code == 0, again.output
    assert all(d["duplicate"] for d in json.loads(again.stdout))
    assert len([c for c in calls(workdir) if c.startswith("end")]) == 3


def test_once_exits_1_when_a_run_fails(once: Callable[..., Result], workdir: Path) -> None:
    set_behaviour(workdir, permanent_failure=True)
    result = once()
    assert result.exit_code == 1
    assert "failed" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--environment", "prod"], "unknown environment 'prod'"),
        (["--service", "api"], "add --watch-metrics"),
        (["--watch-metrics"], "cloud-monitoring"),
        (["--watch-metrics", "--metric", "cpu=a.csv", "--service", "a", "--service", "b"], "one service"),
        (["--watch-metrics", "--metric", "disk=a.csv"], "--metric 'disk=a.csv'"),
    ],
)
def test_usage_errors_exit_2(once: Callable[..., Result], args: list[str], message: str) -> None:
    result = once(*args)
    assert result.exit_code == 2, result.output
    assert message in result.output.replace("\n", " ")


class Controller:
    """`orchestra controller --mode continuous` in a subprocess, with its stderr collected."""

    def __init__(self, workdir: Path, config_file: Path, store: str, *extra: str) -> None:
        env = {**os.environ, WORKDIR_ENV: str(workdir), "ORCHESTRA_LOG_LEVEL": "INFO"}
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.continuous.controller_proc",
                "controller",
                "--mode",
                "continuous",
                "--config",
                str(config_file),
                "--store",
                store,
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--tick-seconds",
                "0.2",
                *extra,
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)
            self.lines.put(line)

    def wait_for(self, pattern: str, timeout: float = 30) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            match = re.search(pattern, line)
            if match:
                return match
        raise AssertionError(f"{pattern!r} not seen; output:\n{''.join(self.output)}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)


def wait_until(predicate, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


@pytest.mark.e2e
def test_sigterm_lets_the_run_in_hand_finish(tmp_path, config_file, workdir):
    set_behaviour(workdir, sleep=3)  # longer than the 2 s lease: only the heartbeat keeps it
    db = tmp_path / "state.db"
    controller = Controller(workdir, config_file, f"sqlite:///{db}", "--grace-seconds", "30")
    try:
        port = int(controller.wait_for(r"healthz on http://127\.0\.0\.1:(\d+)/healthz").group(1))
        wait_until(lambda: any(c.startswith("start schedule:testing:") for c in calls(workdir)))
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as response:
            report = json.loads(response.read())
        assert response.status == 200
        loop = next(c for c in report["checks"] if c["name"] == "controller_loop")
        assert loop["ok"] and "run in hand testing-" in loop["detail"]
        controller.proc.send_signal(signal.SIGTERM)
        assert controller.proc.wait(timeout=30) == 0, "".join(controller.output)
    finally:
        controller.stop()
    runs = SqliteStateStore(db).list_runs(task="testing", limit=None)
    assert len(runs) == 1
    assert runs[0].status == RunStatus.succeeded and runs[0].attempts == 1 and runs[0].lease is None
    assert [c for c in calls(workdir) if c.startswith("end")] == [f"end {runs[0].trigger_id}"]
    assert "SIGTERM: stopping after the run in hand" in "".join(controller.output)


@pytest.mark.e2e
def test_sigterm_releases_a_run_that_outlasts_the_grace_period(tmp_path, config_file, workdir):
    set_behaviour(workdir, sleep=60)
    db = tmp_path / "state.db"
    controller = Controller(workdir, config_file, f"sqlite:///{db}", "--grace-seconds", "0.5")
    try:
        controller.wait_for(r"healthz on")
        wait_until(lambda: any(c.startswith("start schedule:testing:") for c in calls(workdir)))
        started = time.monotonic()
        controller.proc.send_signal(signal.SIGTERM)
        assert controller.proc.wait(timeout=30) == 0, "".join(controller.output)
        assert time.monotonic() - started < 15
    finally:
        controller.stop()
    (run,) = SqliteStateStore(db).list_runs(task="testing", limit=None)
    assert run.status == RunStatus.queued and run.lease is None and "released by" in (run.reason or "")
    assert not any(c.startswith("end") for c in calls(workdir))


def test_once_analyzes_unless_told_to_apply(once: Callable[..., Result], workdir: Path) -> None:
    default = once("--format", "json", "--environment", "staging")
    assert default.exit_code == 0, default.output
    assert {d["run"]["mode"] for d in json.loads(default.stdout)} == {"analyze"}


def test_once_applies_when_asked(once: Callable[..., Result], workdir: Path) -> None:
    applied = once("--format", "json", "--environment", "staging", "--run-mode", "apply")
    assert applied.exit_code == 0, applied.output
    assert {d["run"]["mode"] for d in json.loads(applied.stdout)} == {"apply"}


def test_the_continuous_controller_applies_by_default_as_the_deployed_schedules_do() -> None:
    from orchestra.cli.controller import default_run_mode
    from orchestra.models import Mode

    assert default_run_mode("continuous") is Mode.apply
    assert default_run_mode("once") is Mode.analyze
