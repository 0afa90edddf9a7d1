"""Deployers: the port (base) and its adapters (command, Cloud Run), built from settings."""

from __future__ import annotations

from typing import Any

from ..settings import CloudRunDeployerConfig, CommandDeployerConfig
from .base import Deployer, DeployerError, DeployerUnavailable, DeployRequest, DeployResult, RollbackRequest

__all__ = [
    "DeployRequest",
    "DeployResult",
    "Deployer",
    "DeployerError",
    "DeployerUnavailable",
    "RollbackRequest",
    "build_deployer",
]


def build_deployer(
    config: CommandDeployerConfig | CloudRunDeployerConfig, *, run_client: Any = None
) -> Deployer:
    if isinstance(config, CommandDeployerConfig):
        from .command import CommandDeployer

        return CommandDeployer(config)
    from .cloud_run import CloudRunDeployer

    return CloudRunDeployer(config, client=run_client)
