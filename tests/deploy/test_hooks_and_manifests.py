"""pre-commit configuration and the GKE manifest for continuous mode."""

from __future__ import annotations

from typing import Any

import yaml

from .conftest import ROOT


def test_precommit_runs_the_workspace_check() -> None:
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    hooks = {hook["id"]: (repo, hook) for repo in config["repos"] for hook in repo["hooks"]}
    repo, hook = hooks["workspace-optimization"]
    assert repo["repo"] == "local"
    assert hook["entry"] == "orchestra workspace check --analyze-only"
    assert hook["language"] == "system"
    assert hook["pass_filenames"] is False and hook["always_run"] is True
    assert hook["stages"] == ["pre-commit"]
    _, post = hooks["workspace-post-merge"]
    assert post["entry"].startswith("orchestra workspace optimize") and post["stages"] == ["post-merge"]
    assert set(config["default_install_hook_types"]) == {"pre-commit", "post-merge"}
    for repo_, hook_ in hooks.values():
        assert repo_["repo"] == "local" and hook_["language"] == "system", hook_["id"]


def test_precommit_entries_are_real_commands() -> None:
    """The workspace hooks call CLI commands that exist with those options."""
    from click.testing import CliRunner
    from orchestra.cli.main import cli

    runner = CliRunner()
    check = runner.invoke(cli, ["workspace", "check", "--help"])
    assert check.exit_code == 0 and "--analyze-only" in check.output
    optimize = runner.invoke(cli, ["workspace", "optimize", "--help"])
    assert optimize.exit_code == 0 and "--trigger" in optimize.output


def _documents() -> dict[str, dict[str, Any]]:
    docs = list(yaml.safe_load_all((ROOT / "deploy" / "gke" / "deployment.yaml").read_text()))
    return {doc["kind"]: doc for doc in docs if doc}


def test_gke_deployment_runs_continuous_mode() -> None:
    docs = _documents()
    deployment = docs["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    argv = container["command"] + container["args"]
    assert argv == [
        "orchestra",
        "controller",
        "--mode",
        "continuous",
        "--environment",
        "production",
        "--config",
        "/etc/automation/config.yaml",
    ]
    probe = container["livenessProbe"]["httpGet"]
    assert probe == {"path": "/healthz", "port": 8080}
    assert container["resources"] == {
        "requests": {"cpu": "1", "memory": "1Gi"},
        "limits": {"cpu": "2", "memory": "2Gi"},
    }
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == "/etc/automation"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert volume["secret"]["secretName"] == "automation-config"
    assert pod["serviceAccountName"] == "automation-service-account"
    assert docs["ServiceAccount"]["metadata"]["name"] == "automation-service-account"
    assert container["env"][0] == {"name": "ORCHESTRA_STORE", "value": "firestore://PROJECT_ID/orchestra"}


def test_gke_cli_flags_exist() -> None:
    """The manifest's arguments are accepted by `orchestra controller`."""
    from click.testing import CliRunner
    from orchestra.cli.main import cli

    result = CliRunner().invoke(cli, ["controller", "--help"])
    assert result.exit_code == 0, result.output
    for flag in ("--mode", "--environment", "--config", "--port"):
        assert flag in result.output
    assert "continuous" in result.output
