"""Deployment test harness: real git repositories, a real HTTP service deployed by the command
deployer, a runner with a private registry and an injected clock."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from orchestra.automations.deployment.plugin import DeploymentAutomation
from orchestra.automations.testing.plugin import TestingAutomation
from orchestra.clock import FakeClock, RandomIds
from orchestra.config import Config, parse_config
from orchestra.processes import free_port
from orchestra.registry import Registry
from orchestra.runner import Runner
from orchestra.store.base import StateStore

HERE = Path(__file__).resolve().parent
DEPLOY_SCRIPT = HERE / "service" / "deploy.py"
FIXTURES = HERE.parent / "fixtures"
WEBHOOKS = FIXTURES / "github-webhooks"

# Thursday 2026-01-08 10:00 UTC: inside the Mon-Thu 09:00-16:00 production window.
THURSDAY_10 = dt.datetime(2026, 1, 8, 10, 0, tzinfo=dt.UTC)

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Dev",
    "GIT_AUTHOR_EMAIL": "dev@example.com",
    "GIT_COMMITTER_NAME": "Dev",
    "GIT_COMMITTER_EMAIL": "dev@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
    "HOME": "/nonexistent",
}


class Repo:
    """A real git repository; the app's content at a commit decides whether it is healthy."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.git("init", "-q", "-b", "main")

    def git(self, *args: str) -> str:
        env = {**os.environ, **GIT_ENV}
        out = subprocess.run(
            ["git", "-C", str(self.path), *args], capture_output=True, text=True, env=env, check=True
        )
        return out.stdout.strip()

    def commit(self, branch: str, *, title: str, healthy: bool = True, base: str = "main") -> str:
        """Commit on ``branch`` (created from ``base`` when new; the first commit is on main)."""
        if self._has_head():
            known = self.git("branch", "--list", "--format=%(refname:short)").splitlines()
            if branch in known:
                self.git("checkout", "-q", branch)
            else:
                self.git("checkout", "-q", "-b", branch, base)
        app = self.path / "app"
        app.mkdir(exist_ok=True)
        (app / "index.html").write_text(f"<h1>{title}</h1>\n")
        (app / "health.txt").write_text("ok\n" if healthy else "broken\n")
        self.git("add", "-A")
        self.git("commit", "-q", "-m", title)
        return self.git("rev-parse", "HEAD")

    def _has_head(self) -> bool:
        try:
            self.git("rev-parse", "--verify", "-q", "HEAD")
        except subprocess.CalledProcessError:
            return False
        return True


@dataclass
class Service:
    port: int
    root: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def www(self) -> Path:
        return self.root / "www"

    @property
    def pidfile(self) -> Path:
        return self.root / "server.pid"

    def deploys(self) -> list[str]:
        log = self.root / "deploys.log"
        return log.read_text().split() if log.exists() else []

    def get(self, path: str) -> tuple[int, str]:
        import urllib.error
        import urllib.request

        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(self.url + path.lstrip("/"), timeout=5) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, ""


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    path = tmp_path / "repo"
    path.mkdir()
    return Repo(path)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    root = tmp_path / "service"
    root.mkdir()
    svc = Service(port=free_port(), root=root)
    try:
        yield svc
    finally:
        if svc.pidfile.exists():
            try:
                os.killpg(int(svc.pidfile.read_text()), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass


def command_deployer(repo: Repo, service: Service, **extra: Any) -> dict[str, Any]:
    return {
        "type": "command",
        "deploy": [[sys.executable, str(DEPLOY_SCRIPT), "{revision}", "{ref}"]],
        "cwd": str(service.root),
        "env": {
            "DEPLOY_REPO": str(repo.path),
            "DEPLOY_WWW": str(service.www),
            "DEPLOY_PORT": str(service.port),
            "DEPLOY_PIDFILE": str(service.pidfile),
        },
        "timeout_seconds": 60,
        "url": service.url,
        **extra,
    }


VERIFICATION = {
    "path": "/health",
    "probes": 3,
    "interval_seconds": 0.5,
    "timeout_seconds": 5,
    "expect_body": "ok {revision}",
    "min_success_ratio": 1.0,
    "max_latency_ms": 5000,
}


def make_config(environments: dict[str, Any], *, testing: dict[str, Any] | None = None, **top: Any) -> Config:
    """A configuration with these deployment policies; ``top`` adds top-level sections
    (``identities``, ``groups``) and ``approvers`` goes into ``environments`` as
    ``{"production": [...]}``."""
    approvers = top.pop("approvers", {})
    doc = {
        "default_environment": "development",
        "environments": {
            "development": {"automation_level": 1},
            "staging": {"automation_level": 2},
            "production": {"automation_level": 1, "protected": True, "approval_required_risk": "high"},
        },
        "automations": {
            "deployment": {"settings": {"environments": environments}},
            **({"testing": {"settings": testing}} if testing is not None else {}),
        },
        "runner": {
            "breaker": {"failure_threshold": 3, "window_seconds": 3600, "open_seconds": 600},
            "lease": {"seconds": 120, "heartbeat_seconds": 30},
        },
        **top,
    }
    for env, listed in approvers.items():
        doc["environments"][env]["approvers"] = listed
    return parse_config(json.dumps(doc), "deployment-test-config")


def registry() -> Registry:
    reg = Registry({})
    reg.register(DeploymentAutomation)
    reg.register(TestingAutomation)
    return reg


def make_runner(config: Config, store: StateStore, clock: FakeClock, owner: str = "worker-1") -> Runner:
    return Runner(
        config,
        store,
        clock=clock,
        ids=RandomIds(7),
        owner=owner,
        registry=registry(),
        heartbeat_in_background=False,
    )


def push_payload(
    branch: str,
    after: str,
    pusher: str = "Codertocat",
    *,
    email: str | None = None,
    sender: str | None = None,
    before: str | None = None,
    timestamp: str | None = None,
) -> dict[str, Any]:
    """The real push sample with its ref, head, previous head and people changed: the pusher's
    e-mail defaults to their GitHub noreply address and the sender to the pusher."""
    payload = json.loads((WEBHOOKS / "push-with-new-branch.payload.json").read_text())
    payload["ref"] = f"refs/heads/{branch}"
    payload["after"] = after
    payload["head_commit"]["id"] = after
    payload["pusher"]["name"] = pusher
    payload["pusher"]["email"] = email or f"{pusher.lower()}@users.noreply.github.com"
    payload["sender"]["login"] = sender or pusher
    if before is not None:
        payload["before"] = before
        payload["created"] = False
    if timestamp is not None:
        payload["head_commit"]["timestamp"] = timestamp
    return payload


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(THURSDAY_10)


@pytest.fixture
def ids() -> RandomIds:
    return RandomIds(3)
