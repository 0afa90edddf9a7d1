"""Cloud Run deployer (Admin API v2, ``google.cloud.run_v2.ServicesClient``).

Deploy: read the service, point the serving container at ``{image_repository}:{revision}`` (the
image built for the commit), name the new revision deterministically and send all traffic to the
latest revision. The fetched ``etag`` travels with the update, so a concurrent change fails the
update instead of being overwritten.

Rollback: traffic 100 % to the last known good revision by name (no new revision is built; the
failed one stays for inspection).

The client is the process-wide one shared with the Cloud Run actuator (built, and the client
library imported, on first use); tests inject a client that returns real ``run_v2`` messages.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from ....actuators.cloud_run_client import services_client
from ....errors import OrchestraError, is_transient
from ..settings import CloudRunDeployerConfig
from .base import Deployer, DeployerError, DeployerUnavailable, DeployRequest, DeployResult, RollbackRequest

_LABEL_VALUE = re.compile(r"[^a-z0-9_-]")
OPERATION_TIMEOUT_SECONDS = 900.0


def _classify(exc: BaseException, what: str) -> OrchestraError:
    message = f"{what}: {type(exc).__name__}: {exc}"
    return DeployerUnavailable(message) if is_transient(exc) else DeployerError(message)


def revision_name(service: str, revision: str, deployment_id: str) -> str:
    """``<service>-<commit7>-<5 hex of the deployment>``: unique per deployment, readable, and a
    valid Cloud Run revision name (lowercase, digits, hyphens, at most 63 characters)."""
    commit = re.sub(r"[^a-z0-9]", "-", revision.lower())[:7].strip("-") or "rev"
    suffix = hashlib.sha256(deployment_id.encode()).hexdigest()[:5]
    name = f"{service}-{commit}-{suffix}"
    if len(name) > 63:
        name = f"{service[: 63 - len(suffix) - 1].rstrip('-')}-{suffix}"
    return name


class CloudRunDeployer(Deployer):
    kind = "cloud_run"

    def __init__(self, config: CloudRunDeployerConfig, *, client: Any = None) -> None:
        self.config = config
        self._client = client
        self.name = f"projects/{config.project}/locations/{config.region}/services/{config.service}"

    @property
    def client(self) -> Any:
        """The injected client, else the process-wide one (built on first use)."""
        return self._client if self._client is not None else services_client()

    def describe(self) -> str:
        return f"Cloud Run {self.name}"

    def url(self) -> str | None:
        return self.config.url

    def _get(self) -> Any:
        try:
            return self.client.get_service(name=self.name)
        except Exception as exc:
            raise _classify(exc, f"Cloud Run get_service {self.name}") from exc

    def _update(self, service: Any) -> Any:
        from google.cloud import run_v2

        try:
            operation = self.client.update_service(request=run_v2.UpdateServiceRequest(service=service))
            return operation.result(timeout=OPERATION_TIMEOUT_SECONDS)
        except Exception as exc:
            raise _classify(exc, f"Cloud Run update_service {self.name}") from exc

    def _container(self, service: Any) -> Any:
        containers = list(service.template.containers)
        if not containers:
            raise DeployerError(f"{self.name}: the revision template has no containers")
        if self.config.container:
            for container in containers:
                if container.name == self.config.container:
                    return container
            names = ", ".join(c.name or "(unnamed)" for c in containers)
            raise DeployerError(f"{self.name}: no container named {self.config.container!r}; found {names}")
        with_ports = [c for c in containers if len(c.ports)]
        return with_ports[0] if with_ports else containers[0]

    @staticmethod
    def serving_revision(service: Any) -> str | None:
        """The revision receiving all traffic, or None while traffic is split."""
        from google.cloud import run_v2

        for status in service.traffic_statuses:
            if status.percent == 100:
                if status.type_ == run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST:
                    return service.latest_ready_revision.rsplit("/", 1)[-1] or None
                return status.revision or None
        return None

    def current(self) -> dict[str, Any] | None:
        service = self._get()
        serving = self.serving_revision(service)
        if not serving:
            return None
        image = self._container(service).image
        tag = image.rsplit(":", 1)[-1] if ":" in image.rsplit("/", 1)[-1] else ""
        return {
            "revision": tag or serving,
            "revision_name": serving,
            "url": self.config.url or service.uri or None,
            "source": "serving at the time of the deployment (not deployed by orchestra)",
        }

    def deploy(self, request: DeployRequest) -> DeployResult:
        from google.cloud import run_v2

        service = self._get()
        container = self._container(service)
        image = f"{self.config.image_repository}:{request.revision}"
        name = revision_name(self.config.service, request.revision, request.deployment_id)
        container.image = image
        service.template.revision = name
        service.template.labels["orchestra-revision"] = _LABEL_VALUE.sub("-", request.revision.lower())[:63]
        service.template.labels["orchestra-deployment"] = _LABEL_VALUE.sub(
            "-", request.deployment_id.lower()
        )[:63]
        del service.traffic[:]
        service.traffic.append(
            run_v2.TrafficTarget(
                type_=run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST, percent=100
            )
        )
        updated = self._update(service)
        ready = updated.latest_ready_revision.rsplit("/", 1)[-1]
        if ready != name:
            condition = updated.terminal_condition
            raise DeployerError(
                f"{self.name}: revision {name} did not become ready (latest ready: {ready or 'none'}; "
                f"{condition.type_}: {condition.message or condition.state})"
            )
        return DeployResult(
            revision=request.revision,
            url=self.config.url or updated.uri or None,
            details={"revision_name": name, "image": image, "service": self.name},
        )

    def rollback(self, request: RollbackRequest) -> DeployResult:
        from google.cloud import run_v2

        target = request.target.get("revision_name")
        if not target:
            raise DeployerError(
                f"{self.name}: the last known good record has no Cloud Run revision name: {request.target}"
            )
        service = self._get()
        del service.traffic[:]
        service.traffic.append(
            run_v2.TrafficTarget(
                type_=run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION,
                revision=target,
                percent=100,
            )
        )
        updated = self._update(service)
        serving = self.serving_revision(updated)
        if serving != target:
            raise DeployerError(
                f"{self.name}: traffic was not moved to {target} (serving: {serving or 'split'})"
            )
        return DeployResult(
            revision=str(request.target.get("revision", target)),
            url=self.config.url or updated.uri or None,
            details={"revision_name": target, "service": self.name},
        )
