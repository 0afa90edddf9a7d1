"""The deployer port: put a revision in place, report where it answers, and go back."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ....errors import OrchestraError, TransientError


class DeployerError(OrchestraError):
    """The deployer refused or failed in a way retrying will not fix (bad image, exit code 1)."""


class DeployerUnavailable(TransientError):
    """The deployment target failed in a way that may pass on retry (5xx, timeout, 429)."""


class DeployRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    deployment_id: str
    environment: str
    revision: str
    ref: str | None = None
    repository: str = ""
    previous: dict[str, Any] | None = Field(None, description="last known good, if any")


class RollbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    deployment_id: str
    environment: str
    failed_revision: str
    target: dict[str, Any] = Field(description="the last known good: revision (+ deployer details)")
    ref: str | None = None
    repository: str = ""


class DeployResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    revision: str = Field(description="the source revision now serving")
    url: str | None = Field(None, description="where the deployed service answers")
    details: dict[str, Any] = Field(
        default_factory=dict, description="deployer-specific: revision name, logs"
    )

    def known_good(self) -> dict[str, Any]:
        """What a later rollback needs to come back here."""
        return {"revision": self.revision, "url": self.url, **self.details}


class Deployer(ABC):
    kind: str

    @abstractmethod
    def describe(self) -> str: ...

    @abstractmethod
    def deploy(self, request: DeployRequest) -> DeployResult: ...

    @abstractmethod
    def rollback(self, request: RollbackRequest) -> DeployResult: ...

    def current(self) -> dict[str, Any] | None:
        """What is serving now, as a last-known-good record (None when the deployer cannot tell)."""
        return None

    def url(self) -> str | None:
        return None
