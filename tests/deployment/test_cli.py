"""`orchestra deployments …` through the real CLI (click), against a SQLite store file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from orchestra.cli.main import cli

CONFIG = """
environments:
  development: {}
  staging: {}
  production: {protected: true, approval_required_risk: high}
automations:
  deployment:
    settings:
      environments:
        production: {requires_approval: true}
"""


@pytest.fixture
def orchestra(tmp_path: Path):
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG)
    store = f"sqlite:///{tmp_path / 'state.db'}"
    runner = CliRunner()

    def invoke(*args: str) -> tuple[int, str, str]:
        result = runner.invoke(
            cli, ["deployments", *args, "--config", str(config), "--store", store], catch_exceptions=False
        )
        return result.exit_code, result.stdout, result.stderr

    return invoke


def test_request_list_show_approve_with_json(orchestra):
    code, out, _ = orchestra(
        "request",
        "--environment",
        "production",
        "--revision",
        "a1b2c3d4e5f6",
        "--ref",
        "refs/heads/main",
        "--as",
        "user:alice",
        "--format",
        "json",
    )
    assert code == 0
    dep = json.loads(out)
    assert dep["state"] == "requested" and dep["environment"] == "production"

    code, out, _ = orchestra("list", "--format", "json")
    (listed,) = json.loads(out)
    assert {"id", "environment", "ref", "revision", "state", "history"} <= listed.keys()
    assert listed["history"][0]["actor"] == "user:alice" and listed["history"][0]["at"].endswith("Z")

    code, _, err = orchestra("approve", dep["id"], "--as", "user:alice")
    assert code == 2 and "approval must come from another identity" in err

    code, out, _ = orchestra("approve", dep["id"], "--as", "user:bob", "--comment", "ok", "--format", "json")
    assert code == 0
    approved = json.loads(out)
    assert approved["state"] == "approved"
    assert [h["to_state"] for h in approved["history"]] == ["requested", "awaiting_approval", "approved"]
    assert approved["history"][-1]["actor"] == "user:bob"

    code, out, _ = orchestra("show", dep["id"])
    assert code == 0 and "approved by user:bob: ok" in out and dep["id"] in out

    code, out, _ = orchestra("list", "--state", "approved", "--environment", "production", "--format", "json")
    assert [d["id"] for d in json.loads(out)] == [dep["id"]]


def test_reject_and_cancel(orchestra):
    _, out, _ = orchestra(
        "request", "--environment", "staging", "--revision", "abc1234", "--as", "user:a", "--format", "json"
    )
    first = json.loads(out)["id"]
    code, out, _ = orchestra(
        "reject", first, "--as", "user:b", "--reason", "wrong commit", "--format", "json"
    )
    assert code == 0 and json.loads(out)["state"] == "rejected"
    code, _, err = orchestra("cancel", first, "--as", "user:b")
    assert code == 2 and "only pending deployments" in err

    _, out, _ = orchestra(
        "request", "--environment", "staging", "--revision", "def5678", "--as", "user:a", "--format", "json"
    )
    second = json.loads(out)["id"]
    code, out, _ = orchestra("cancel", second, "--as", "user:a", "--format", "json")
    assert code == 0 and json.loads(out)["history"][-1]["reason"] == "cancelled by user:a"
    code, out, _ = orchestra("list", "--pending", "--format", "json")
    assert json.loads(out) == []


def test_input_errors_exit_2(orchestra):
    code, _, err = orchestra("request", "--environment", "moon", "--revision", "abc")
    assert code == 2 and "unknown 'moon'" in err
    code, _, err = orchestra("request", "--environment", "staging", "--revision", "-x")
    assert code == 2 and "not a revision" in err
    code, _, err = orchestra(
        "request", "--environment", "staging", "--revision", "abc", "--ref", "refs/heads/a b"
    )
    assert code == 2 and "not a valid git ref" in err
    code, _, err = orchestra("show", "dep-nope")
    assert code == 2 and "no deployment 'dep-nope'" in err
