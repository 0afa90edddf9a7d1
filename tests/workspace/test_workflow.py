"""The weekly workspace workflow (.github/workflows/workspace.yml): what it declares, and its
shell steps run for real on a full clone of a repository, as the runner would run them."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import yaml

from .helpers import commit, init

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "workspace.yml"


def load() -> dict[Any, Any]:
    data = yaml.safe_load(WORKFLOW.read_text())
    if True in data:  # YAML 1.1 reads `on:` as True
        data["on"] = data.pop(True)
    return data


def steps() -> list[dict[str, Any]]:
    return load()["jobs"]["analyze"]["steps"]


def step_using(action: str) -> dict[str, Any]:
    for step in steps():
        if str(step.get("uses", "")).split("@")[0] == action:
            return step
    raise AssertionError(f"no step uses {action}")


def test_weekly_and_on_demand_with_read_only_permissions() -> None:
    workflow = load()
    assert workflow["on"]["schedule"] == [{"cron": "0 3 * * 0"}]
    assert "workflow_dispatch" in workflow["on"]
    assert workflow["permissions"] == {"contents": "read"}
    assert step_using("actions/checkout")["with"]["fetch-depth"] == 0
    assert str(step_using("actions/setup-python")["with"]["python-version"]) == "3.11"
    artifact = step_using("actions/upload-artifact")
    assert artifact["if"] == "always()" and artifact["with"]["path"].endswith("workspace.json")
    scripts = "\n".join(str(s.get("run", "")) for s in steps())
    assert "pip install -r requirements.txt" in scripts and "--no-deps -e ." in scripts
    assert "orchestra run workspace --repo . --mode analyze" in " ".join(scripts.split())
    assert '>> "$GITHUB_STEP_SUMMARY"' in scripts


def test_the_steps_analyze_a_clone_and_write_the_summary_and_the_json(tmp_path: Path) -> None:
    origin = init(tmp_path / "origin")
    commit(origin, "first", {"README.md": "hello\n", "data/big.bin": b"\0" * 1_200_000})
    checkout = tmp_path / "checkout"
    subprocess.run(["git", "clone", "-q", str(origin), str(checkout)], check=True)
    temp = tmp_path / "runner-temp"
    temp.mkdir()
    summary = tmp_path / "summary.md"
    env = {
        **os.environ,
        "PATH": f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "RUNNER_TEMP": str(temp),
        "GITHUB_STEP_SUMMARY": str(summary),
        "ORCHESTRA_STORE": f"sqlite:///{tmp_path / 'state.db'}",
        "COLUMNS": "160",
    }
    env.pop("CONFIG_PATH", None)
    for name in ("Analyze the workspace", "Findings to the job summary"):
        (step,) = [s for s in steps() if s.get("name") == name]
        done = subprocess.run(
            ["bash", "-e", "-o", "pipefail", "-c", step["run"]],
            cwd=checkout,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, f"{name}: {done.stdout}{done.stderr}"
    result = yaml.safe_load((temp / "workspace.json").read_text())
    assert result["task"] == "workspace" and result["status"] == "succeeded" and result["mode"] == "analyze"
    assert any(f["id"] == "workspace.lfs-candidate" or "big.bin" in f["summary"] for f in result["findings"])
    text = summary.read_text()
    assert text.startswith("## Workspace analysis") and "workspace — succeeded" in text
    assert "data/big.bin" in text
