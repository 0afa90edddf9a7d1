"""The console under test: real `orchestra console` processes over a seeded SQLite store, and a
headless Chromium driven by Selenium.

Fixtures:
- ``seeded``: a configuration file and a store holding runs waiting for approval (requested by
  user:alice, with hostile text in branch names, commit messages and trigger ids), an open
  breaker, a replayable dead letter and enough runs to fill several pages.
- ``start_console(identity)``: starts `orchestra console --port 0 --as IDENTITY` on that store;
  readiness is the login URL line it prints (read with a deadline, never a sleep). Stopped (its
  process group) at teardown.
- ``browser``: headless Chromium with a fresh profile; screenshots go to the test's tmp dir.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import selectors
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from orchestra.app import build_app, load_config
from orchestra.breaker import CircuitBreaker
from orchestra.models import DeadLetter, EventRecord, Mode, Run, RunStatus, TriggerKind
from orchestra.registry import Registry
from orchestra.runner import RunRequest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from .plugin import TASK, ConsoleDemo

ROOT = Path(__file__).resolve().parents[2]
# Debian's packages by default; ORCHESTRA_CHROMIUM / ORCHESTRA_CHROMEDRIVER name another install.
CHROMIUM = os.environ.get("ORCHESTRA_CHROMIUM") or "/usr/bin/chromium"
CHROMEDRIVER = os.environ.get("ORCHESTRA_CHROMEDRIVER") or "/usr/bin/chromedriver"
HOSTILE_BRANCH = "<script>alert(1)</script>"
HOSTILE_MESSAGE = '"><img src=x onerror=alert(2)>'
HOSTILE_TRIGGER = "<b onmouseover=alert(3)>t</b>"
START_DEADLINE_S = 60.0
EXTRA_RUNS = 60

CONFIG = """
default_environment: development
environments:
  development: {automation_level: 1}
  production: {automation_level: 3, protected: true}
runner:
  breaker: {failure_threshold: 2, window_seconds: 3600, open_seconds: 600, probe_lease_seconds: 30}
automations: {}
"""


@dataclass
class Seeded:
    config: Path
    store_url: str
    approve_run: str
    reject_run: str
    breaker: str
    letter: str
    env: dict[str, str] = field(default_factory=dict)


def _registry() -> Registry:
    registry = Registry()
    registry.register(ConsoleDemo)
    return registry


@pytest.fixture
def seeded(tmp_path: Path) -> Iterator[Seeded]:
    config_path = tmp_path / "config.yaml"
    config_path.write_text(CONFIG)
    store_url = f"sqlite:///{tmp_path / 'state.db'}"
    registry = _registry()
    app = build_app(
        config=load_config(config_path, registry=registry, extras=False),
        store_url=store_url,
        registry=registry,
    )
    try:
        runs: list[Run] = []
        for key, branch in (("approve", HOSTILE_BRANCH), ("reject", "feature/old")):
            outcome = app.runner.submit(
                RunRequest(
                    task=TASK,
                    environment="production",
                    mode=Mode.apply,
                    automation_level=3,
                    params={"branch": branch, "message": HOSTILE_MESSAGE},
                    trigger_kind=TriggerKind.webhook,
                    trigger_id=f"{key}:{HOSTILE_TRIGGER}",
                    requested_by="user:alice",
                    source_event=f"delivery-{key}",
                )
            )
            assert outcome.run.status == RunStatus.awaiting_approval, outcome.run.reason
            runs.append(outcome.run)
        app.store.record_event(
            EventRecord(
                id="webhooks:delivery-approve",
                source="webhooks",
                event_id="delivery-approve",
                kind="push",
                status="accepted",
                reason=f"push to {HOSTILE_BRANCH}",
                run_ids=[runs[0].id],
                received_at=runs[0].created_at,
            )
        )
        base = runs[0].created_at - dt.timedelta(days=1)
        for index in range(EXTRA_RUNS):
            created = base - dt.timedelta(minutes=index)
            app.store.create_run(
                runs[1].model_copy(
                    update={
                        "id": f"{TASK}-old-{index:03d}",
                        "trigger_id": f"old-{index}",
                        "environment": "development",
                        "status": RunStatus.succeeded,
                        "created_at": created,
                        "updated_at": created,
                        "decision": None,
                        "source_event": None,
                    }
                )
            )
        breaker_name = f"automation:{TASK}:production"
        breaker = CircuitBreaker(app.store, breaker_name, app.config.runner.breaker, app.clock)
        breaker.record_failure("boom <i>one</i>")
        breaker.record_failure("boom <i>two</i>")
        now = app.clock.now()
        app.store.add_dead_letter(
            DeadLetter(
                id="dl-1",
                message_id="dl-1",
                origin="projects/p/subscriptions/scheduled",
                delivery_attempt=5,
                data=json.dumps({"task": TASK, "environment": "development", "params": {"branch": "dl <x>"}}),
                attributes={"CloudPubSubDeadLetterSourceDeliveryCount": "5"},
                received_at=now,
            )
        )
    finally:
        app.close()
    env = dict(os.environ)
    env["ORCHESTRA_EXTRA_AUTOMATIONS"] = "tests.console.plugin"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.pop("ORCHESTRA_STORE", None)
    yield Seeded(
        config=config_path,
        store_url=store_url,
        approve_run=runs[0].id,
        reject_run=runs[1].id,
        breaker=breaker_name,
        letter="dl-1",
        env=env,
    )


@dataclass
class Console:
    login_url: str
    base: str
    process: subprocess.Popen[str]


def _read_login_url(process: subprocess.Popen[str], deadline_s: float) -> str:
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    end = time.monotonic() + deadline_s
    seen: list[str] = []
    try:
        while (left := end - time.monotonic()) > 0:
            if not selector.select(timeout=left):
                break
            line = process.stdout.readline()
            if not line:
                break
            seen.append(line)
            if line.startswith("console: http"):
                return line.split(" ", 1)[1].strip()
    finally:
        selector.close()
    stderr = process.stderr.read() if process.poll() is not None and process.stderr else ""
    raise AssertionError(f"orchestra console printed no login URL: {''.join(seen)}{stderr}")


@pytest.fixture
def start_console(seeded: Seeded) -> Iterator[Callable[[str], Console]]:
    started: list[subprocess.Popen[str]] = []

    def start(identity: str) -> Console:
        process = subprocess.Popen(
            [
                str(ROOT / ".venv" / "bin" / "orchestra"),
                "console",
                "--port",
                "0",
                "--as",
                identity,
                "--config",
                str(seeded.config),
                "--store",
                seeded.store_url,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=seeded.env,
            cwd=ROOT,
            start_new_session=True,
        )
        started.append(process)
        url = _read_login_url(process, START_DEADLINE_S)
        return Console(login_url=url, base=url.split("/login", 1)[0], process=process)

    yield start
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    for path in (CHROMIUM, CHROMEDRIVER):
        assert Path(path).is_file(), f"{path} is missing: apt-get install -y chromium chromium-driver"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,900",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=CHROMEDRIVER, log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
