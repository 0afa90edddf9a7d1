"""Testing-automation harness: a real git project with suites, a runner with a private registry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from orchestra.automations.testing.plugin import TestingAutomation
from orchestra.clock import FakeClock, RandomIds
from orchestra.config import Config, parse_config
from orchestra.registry import Registry
from orchestra.runner import Runner
from orchestra.store.base import StateStore

PY = sys.executable

# A suite script that writes JUnit XML: test_stable always passes; test_flaky fails on every
# other run (a counter file outside the repository keeps the state between runs); test_slow
# reports the duration given in SLOW_SECONDS.
FLIPPING_SUITE = """
import os, pathlib
counter = pathlib.Path(os.environ["COUNTER"])
n = int(counter.read_text()) if counter.exists() else 0
counter.write_text(str(n + 1))
flaky = '<testcase classname="shop.cart" name="test_flaky" time="0.02"/>' if n % 2 == 0 else (
    '<testcase classname="shop.cart" name="test_flaky" time="0.02">'
    '<failure message="timeout talking to payments">ReadTimeout</failure></testcase>')
slow = os.environ.get("SLOW_SECONDS", "1.5")
xml = ('<testsuites><testsuite name="unit">'
       '<testcase classname="shop.cart" name="test_stable" time="0.01"/>' + flaky +
       f'<testcase classname="shop.cart" name="test_slow" time="{slow}"/>'
       '</testsuite></testsuites>')
pathlib.Path("reports").mkdir(exist_ok=True)
pathlib.Path("reports/junit.xml").write_text(xml)
raise SystemExit(0 if n % 2 == 0 else 1)
"""

PYTEST_PROJECT = {
    "tests/test_cart.py": (
        "def test_total():\n    assert sum([2, 3]) == 5\n\n"
        "def test_discount():\n    assert round(100 * 0.9) == 90\n"
    ),
}

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Dev",
    "GIT_AUTHOR_EMAIL": "dev@example.com",
    "GIT_COMMITTER_NAME": "Dev",
    "GIT_COMMITTER_EMAIL": "dev@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
    "HOME": "/nonexistent",
}


def git(path: Path, *args: str) -> str:
    out = subprocess.run(
        ["git", "-C", str(path), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **GIT_ENV},
        check=True,
    )
    return out.stdout.strip()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    (root / "flipping_suite.py").write_text(FLIPPING_SUITE)
    for rel, text in PYTEST_PROJECT.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    (root / ".gitignore").write_text("reports/\n")
    git(root, "init", "-q", "-b", "develop")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")
    return root


def suite_config(suites: dict[str, Any], **settings: Any) -> Config:
    doc = {
        "environments": {"development": {}},
        "automations": {"testing": {"settings": {"suites": suites, **settings}}},
    }
    return parse_config(json.dumps(doc), "testing-test-config")


def make_runner(config: Config, store: StateStore, clock: FakeClock) -> Runner:
    registry = Registry({})
    registry.register(TestingAutomation)
    return Runner(
        config,
        store,
        clock=clock,
        ids=RandomIds(5),
        owner="tester",
        registry=registry,
        heartbeat_in_background=False,
    )


def flipping_suite(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    return {
        "command": [PY, "flipping_suite.py"],
        "junit": "reports/junit.xml",
        "timeout_seconds": 60,
        "environment": {"COUNTER": str(tmp_path / "counter.txt")},
        **extra,
    }


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
