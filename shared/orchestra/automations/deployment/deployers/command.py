"""Command deployer: runs configured argument lists for build, deploy and rollback.

Values reach the commands in two ways only: environment variables (``ORCHESTRA_REVISION``,
``ORCHESTRA_ENVIRONMENT``, ``ORCHESTRA_REF``, ``ORCHESTRA_BRANCH``, ``ORCHESTRA_DEPLOYMENT_ID``,
``ORCHESTRA_REPOSITORY``, ``ORCHESTRA_PREVIOUS_REVISION``, ``ORCHESTRA_FAILED_REVISION``) and
placeholders that are whole arguments (``{revision}``…). Nothing goes through a shell: a branch
named ``feature/$(rm${IFS}-rf${IFS}x)`` stays a string.
"""

from __future__ import annotations

import os
from typing import Any

from ....toolkit.process import CommandResult, run_command
from ..settings import PLACEHOLDERS, CommandDeployerConfig
from .base import Deployer, DeployerError, DeployRequest, DeployResult, RollbackRequest


def substitute(argv: list[str], values: dict[str, str]) -> list[str]:
    out = []
    for arg in argv:
        if len(arg) > 2 and arg[0] == "{" and arg[-1] == "}" and arg[1:-1] in PLACEHOLDERS:
            out.append(values.get(arg[1:-1], ""))
        else:
            out.append(arg)
    return out


def _branch(ref: str | None) -> str:
    return ref[len("refs/heads/") :] if ref and ref.startswith("refs/heads/") else ""


class CommandDeployer(Deployer):
    kind = "command"

    def __init__(self, config: CommandDeployerConfig) -> None:
        self.config = config

    def describe(self) -> str:
        first = self.config.deploy[0]
        return f"command deployer ({' '.join(first)[:80]})"

    def url(self) -> str | None:
        return self.config.url

    def _env(self, values: dict[str, str]) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.config.env)
        for name in PLACEHOLDERS:
            env[f"ORCHESTRA_{name.upper()}"] = values.get(name, "")
        return env

    def _run(self, stage: str, commands: list[list[str]], values: dict[str, str]) -> list[dict[str, Any]]:
        env = self._env(values)
        log: list[dict[str, Any]] = []
        for i, template in enumerate(commands):
            argv = substitute(template, values)
            try:
                result: CommandResult = run_command(
                    argv, timeout_seconds=self.config.timeout_seconds, cwd=self.config.cwd, env=env
                )
            except (FileNotFoundError, PermissionError, NotADirectoryError) as exc:
                raise DeployerError(
                    f"{stage} command {i} ({template[0]!r}) cannot start: {exc.strerror or exc} "
                    f"(cwd {self.config.cwd or os.getcwd()})"
                ) from None
            log.append(result.as_dict())
            if not result.ok:
                tail = (result.stderr_tail or result.stdout_tail).strip()[-800:]
                raise DeployerError(
                    f"{stage} command {i} ({' '.join(template)[:120]}) failed: {result.describe()}"
                    + (f"; output: {tail}" if tail else "")
                )
        return log

    def deploy(self, request: DeployRequest) -> DeployResult:
        previous = (request.previous or {}).get("revision") or ""
        values = {
            "revision": request.revision,
            "environment": request.environment,
            "ref": request.ref or "",
            "branch": _branch(request.ref),
            "deployment_id": request.deployment_id,
            "repository": request.repository,
            "previous_revision": previous,
            "failed_revision": "",
            "url": self.config.url or "",
        }
        log = self._run("build", self.config.build, values)
        log += self._run("deploy", self.config.deploy, values)
        return DeployResult(
            revision=request.revision, url=self.config.url, details={"commands": _compact(log)}
        )

    def rollback(self, request: RollbackRequest) -> DeployResult:
        target = request.target.get("revision")
        if not target:
            raise DeployerError("rollback target has no revision")
        values = {
            "revision": target,
            "environment": request.environment,
            "ref": request.target.get("ref") or "",
            "branch": _branch(request.target.get("ref")),
            "deployment_id": request.deployment_id,
            "repository": request.repository,
            "previous_revision": target,
            "failed_revision": request.failed_revision,
            "url": self.config.url or "",
        }
        # Without rollback commands, going back means deploying the good revision again.
        commands = self.config.rollback or self.config.deploy
        log = self._run("rollback", commands, values)
        return DeployResult(revision=target, url=self.config.url, details={"commands": _compact(log)})


def _compact(log: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Keep stored deployment records small: short output tails."""
    out = []
    for entry in log:
        item = dict(entry)
        item["stdout_tail"] = str(item.get("stdout_tail", ""))[-500:]
        item["stderr_tail"] = str(item.get("stderr_tail", ""))[-500:]
        out.append(item)
    return out
