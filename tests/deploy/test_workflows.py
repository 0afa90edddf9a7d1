"""GitHub Actions workflows: actionlint, and what each workflow must do."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import ROOT, find_tool

WORKFLOWS = ROOT / ".github" / "workflows"
ENV_FROM_BRANCH = "${{ github.ref == 'refs/heads/main' && 'production' || 'development' }}"


def load(name: str) -> dict[Any, Any]:
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the `on:` key as True.
    if True in data:
        data["on"] = data.pop(True)
    return data


def steps(workflow: dict[Any, Any], job: str) -> list[dict[str, Any]]:
    return workflow["jobs"][job]["steps"]


def uses(step_list: list[dict[str, Any]], action: str) -> dict[str, Any]:
    for step in step_list:
        if str(step.get("uses", "")).split("@")[0] == action:
            return step
    raise AssertionError(f"no step uses {action}")


def runs(step_list: list[dict[str, Any]]) -> str:
    return "\n".join(str(s.get("run", "")) for s in step_list)


def test_actionlint(tmp_path: Path) -> None:
    actionlint = find_tool(
        "actionlint",
        ROOT / ".venv" / "bin" / "actionlint",
        hint="it is pinned in requirements-dev.txt (make venv)",
    )
    files = sorted(str(p) for p in WORKFLOWS.glob("*.y*ml"))
    assert len(files) >= 3
    result = subprocess.run(
        [actionlint, "-no-color", *files], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_actions_are_pinned_to_a_major_version() -> None:
    for path in WORKFLOWS.glob("*.y*ml"):
        for ref in re.findall(r"uses:\s*([^\s#]+)", path.read_text()):
            assert re.fullmatch(r"[\w.-]+/[\w./-]+@(v\d+(\.\d+){0,2}|[0-9a-f]{40})", ref), (
                f"{path.name}: {ref}"
            )


def test_ci_lints_and_tests_with_the_emulators() -> None:
    ci = load("ci.yml")
    assert "pull_request" in ci["on"] and "push" in ci["on"]
    job = next(iter(ci["jobs"]))
    step_list = steps(ci, job)
    assert str(uses(step_list, "actions/setup-python")["with"]["python-version"]) == "3.11"
    components = uses(step_list, "google-github-actions/setup-gcloud")["with"]["install_components"]
    assert {"beta", "pubsub-emulator", "cloud-firestore-emulator"} <= {
        c.strip() for c in components.split(",")
    }
    assert str(uses(step_list, "actions/setup-java")["with"]["java-version"]) == "17"
    uses(step_list, "hashicorp/setup-terraform")
    commands = runs(step_list)
    assert "make lint" in commands and "make test" in commands
    assert commands.index("make lint") < commands.index("make test")
    assert ci["permissions"] == {"contents": "read"}


def test_daily_performance_workflow_is_the_source_documents() -> None:
    perf = load("performance.yml")
    assert perf["on"]["schedule"] == [{"cron": "0 2 * * *"}]
    assert "workflow_dispatch" in perf["on"]
    assert perf["permissions"]["id-token"] == "write"
    job = perf["jobs"]["run-performance-analysis"]
    assert job["env"]["TARGET_ENVIRONMENT"] == ENV_FROM_BRANCH
    auth = uses(job["steps"], "google-github-actions/auth")["with"]
    assert auth["workload_identity_provider"] == "${{ secrets.WIF_PROVIDER }}"
    assert auth["service_account"] == "${{ secrets.SERVICE_ACCOUNT }}"
    command = " ".join(runs(job["steps"]).replace("\\\n", " ").split())
    assert (
        'orchestra run performance --environment "$TARGET_ENVIRONMENT" --automation-level 2 --mode apply'
        in command
    )


def test_deploy_plans_on_pull_requests_and_applies_on_main() -> None:
    deploy = load("deploy.yml")
    assert "pull_request" in deploy["on"] and deploy["on"]["push"]["branches"] == ["main"]
    plan, apply = deploy["jobs"]["plan"], deploy["jobs"]["apply"]
    assert plan["if"] == "github.event_name == 'pull_request'"
    assert "refs/heads/main" in apply["if"] and "pull_request" in apply["if"]
    plan_cmds, apply_cmds = runs(plan["steps"]), runs(apply["steps"])
    assert "terraform -chdir=terraform plan" in plan_cmds and "apply" not in plan_cmds.replace("tfplan", "")
    assert "terraform -chdir=terraform apply" in apply_cmds and "tfplan" in apply_cmds
    for cmds in (plan_cmds, apply_cmds):
        assert "scripts/package_functions.py" in cmds  # the archives Terraform uploads
        assert "-backend-config" in cmds
    assert deploy["concurrency"]["cancel-in-progress"] is False
    for job in (plan, apply):
        uses(job["steps"], "google-github-actions/auth")


@pytest.mark.parametrize("name", ["ci.yml", "performance.yml", "deploy.yml"])
def test_no_untrusted_input_in_scripts(name: str) -> None:
    """Event data goes through env, never straight into a shell script."""
    for job in load(name)["jobs"].values():
        for step in job["steps"]:
            script = str(step.get("run", ""))
            assert not re.search(r"\$\{\{\s*github\.(event|head_ref)", script), f"{name}: {script}"
