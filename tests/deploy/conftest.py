"""Fixtures for the deployment checks: parsed Terraform, tool locations, an evaluator for the
provider-free configuration module.

Tools are found, never skipped for: a missing tool fails its test with how to get it.
- terraform: on PATH (1.11 on every machine of the project; CI installs it).
- checkov: ``.venv-tools/bin/checkov`` (its own virtualenv: its pins conflict with ours), else PATH.
- actionlint: ``.venv/bin/actionlint`` (requirements-dev), else PATH.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hcl2
import pytest
from hcl2 import SerializationOptions

ROOT = Path(__file__).resolve().parents[2]
TERRAFORM_DIR = ROOT / "terraform"
CONFIG_MODULE = TERRAFORM_DIR / "modules" / "orchestra-config"
DEFAULT_CONFIG = ROOT / "shared" / "orchestra" / "defaults" / "config.yaml"

_HCL_OPTIONS = SerializationOptions(with_comments=False, explicit_blocks=False, strip_string_quotes=True)


def find_tool(name: str, *candidates: Path, hint: str) -> str:
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    pytest.fail(f"{name} not found ({', '.join(map(str, candidates)) or 'PATH'}): {hint}", pytrace=False)


def terraform_env(tmp: Path) -> dict[str, str]:
    """Terraform without a user CLI configuration, plugin cache or network-looking behaviour."""
    cli_config = tmp / "terraformrc"
    cli_config.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}
    env.update({"TF_CLI_CONFIG_FILE": str(cli_config), "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1"})
    return env


@dataclass
class Terraform:
    """Every .tf file of terraform/ (root and modules), parsed with python-hcl2."""

    files: dict[Path, dict[str, Any]]

    def blocks(self, kind: str, *, root_only: bool = True) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for path, doc in self.files.items():
            if root_only and path.parent != TERRAFORM_DIR:
                continue
            out.extend(doc.get(kind, []))
        return out

    def resources(self, rtype: str) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for block in self.blocks("resource"):
            for kind, named in block.items():
                if kind == rtype:
                    for name, body in named.items():
                        assert name not in found, f"{rtype}.{name} declared twice"
                        found[name] = body
        return found

    def all_resources(self) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for block in self.blocks("resource"):
            for kind, named in block.items():
                for name, body in named.items():
                    found[f"{kind}.{name}"] = body
        return found

    def locals(self) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for block in self.blocks("locals"):
            for key, value in block.items():
                assert key not in merged, f"local.{key} defined twice"
                merged[key] = value
        return merged

    def variables(self) -> dict[str, dict[str, Any]]:
        merged: dict[str, dict[str, Any]] = {}
        for block in self.blocks("variable"):
            merged.update(block)
        return merged

    def outputs(self) -> dict[str, dict[str, Any]]:
        merged: dict[str, dict[str, Any]] = {}
        for block in self.blocks("output"):
            merged.update(block)
        return merged

    def modules(self) -> dict[str, dict[str, Any]]:
        merged: dict[str, dict[str, Any]] = {}
        for block in self.blocks("module"):
            merged.update(block)
        return merged

    def data(self) -> dict[str, dict[str, Any]]:
        merged: dict[str, dict[str, Any]] = {}
        for block in self.blocks("data"):
            for kind, named in block.items():
                for name, body in named.items():
                    merged[f"{kind}.{name}"] = body
        return merged


@pytest.fixture(scope="session")
def tf() -> Terraform:
    files: dict[Path, dict[str, Any]] = {}
    for path in sorted(TERRAFORM_DIR.rglob("*.tf")):
        if ".terraform" in path.parts:
            continue
        with path.open() as handle:
            files[path] = hcl2.load(handle, serialization_options=_HCL_OPTIONS)
    assert files, f"no .tf files under {TERRAFORM_DIR}"
    return Terraform(files)


@pytest.fixture(scope="session")
def terraform_bin() -> str:
    return find_tool("terraform", hint="install Terraform 1.11 (CI: hashicorp/setup-terraform)")


@dataclass
class ConfigModuleRun:
    returncode: int
    outputs: dict[str, Any]
    stderr: str


@pytest.fixture(scope="session")
def evaluate_config_module(
    terraform_bin: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., ConfigModuleRun]]:
    """Evaluate terraform/modules/orchestra-config for a configuration file, as Terraform itself
    does for the real deployment (the module has no provider, so init and apply work offline)."""
    work = tmp_path_factory.mktemp("tf-config-module")
    env = terraform_env(work)
    source = os.path.relpath(CONFIG_MODULE, work)
    (work / "main.tf").write_text(
        f"""
variable "config_file" {{ type = string }}
variable "environment" {{ type = string }}
variable "http_tasks" {{
  type    = set(string)
  default = ["performance"]
}}
variable "monitored_services" {{
  type    = list(string)
  default = []
}}
module "config" {{
  source             = "{source}"
  config_file        = var.config_file
  environment        = var.environment
  http_tasks         = var.http_tasks
  monitored_services = var.monitored_services
}}
output "schedule_jobs" {{ value = module.config.schedule_jobs }}
output "alert_rules" {{ value = module.config.alert_rules }}
output "max_delivery_attempts" {{ value = module.config.max_delivery_attempts }}
output "retention_days" {{ value = module.config.retention_days }}
output "cloud_build_suites" {{ value = module.config.cloud_build_suites }}
"""
    )
    init = subprocess.run(
        [terraform_bin, "init", "-backend=false", "-input=false", "-no-color"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert init.returncode == 0, init.stdout + init.stderr
    counter = iter(range(1_000_000))

    def run(
        config_file: Path,
        environment: str,
        http_tasks: list[str] | None = None,
        monitored_services: list[str] | None = None,
    ) -> ConfigModuleRun:
        state = work / f"run-{next(counter)}.tfstate"
        args = [
            terraform_bin,
            "apply",
            "-auto-approve",
            "-input=false",
            "-no-color",
            f"-state={state}",
            f"-var=config_file={config_file}",
            f"-var=environment={environment}",
        ]
        if http_tasks is not None:
            args.append(f"-var=http_tasks={json.dumps(http_tasks)}")
        if monitored_services is not None:
            args.append(f"-var=monitored_services={json.dumps(monitored_services)}")
        applied = subprocess.run(args, cwd=work, env=env, capture_output=True, text=True, timeout=120)
        if applied.returncode != 0:
            return ConfigModuleRun(applied.returncode, {}, applied.stdout + applied.stderr)
        shown = subprocess.run(
            [terraform_bin, "output", "-json", f"-state={state}"],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert shown.returncode == 0, shown.stderr
        outputs = {name: item["value"] for name, item in json.loads(shown.stdout).items()}
        return ConfigModuleRun(0, outputs, applied.stderr)

    yield run
