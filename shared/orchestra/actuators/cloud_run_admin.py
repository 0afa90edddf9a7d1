"""Cloud Run Admin API actuator (``google.cloud.run_v2.ServicesClient``).

``get_service`` reads the service; ``update_service`` sends it back with the revision template
changed (long-running operation, waited on with ``.result()``). The fetched ``etag`` travels with
the update, so a concurrent change makes the update fail instead of being overwritten. The
template's revision name is cleared so Cloud Run names the new revision itself.

Rollback data is the previous raw values of the template fields we change; rollback puts them
back on the then-current service.

The client is the process-wide one (``cloud_run_client``) unless one is injected.
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import InputError, OrchestraError, TransientError, is_transient
from .base import (
    DEFAULT_CONCURRENCY,
    DEFAULT_MAX_INSTANCES,
    Actuator,
    ConflictError,
    ServiceConfig,
    check_changes,
    format_cpu,
    format_memory,
    parse_cpu,
    parse_memory,
)
from .cloud_run_client import services_client
from .rules import ServiceFacts

_NAME = re.compile(r"^projects/[^/]+/locations/[a-z0-9-]+/services/[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?$")


class ActuatorError(OrchestraError):
    """The Admin API refused the request (permission, invalid argument, not found)."""


class ActuatorUnavailable(TransientError):
    """The Admin API failed in a way that may succeed on retry."""


def _classify(exc: BaseException, what: str) -> OrchestraError:
    message = f"{what}: {type(exc).__name__}: {exc}"
    return ActuatorUnavailable(message) if is_transient(exc) else ActuatorError(message)


def _container(service: Any) -> Any:
    containers = list(service.template.containers)
    if not containers:
        raise ActuatorError(f"{service.name}: the revision template has no containers")
    with_ports = [c for c in containers if len(c.ports)]
    return with_ports[0] if with_ports else containers[0]


def config_from_service(service: Any) -> ServiceConfig:
    container = _container(service)
    limits = dict(container.resources.limits)
    where = f"{service.name} (template.containers[].resources.limits)"
    return ServiceConfig(
        cpu=parse_cpu(limits.get("cpu", "1"), where),
        memory_mib=parse_memory(limits.get("memory", "512Mi"), where),
        concurrency=service.template.max_instance_request_concurrency or DEFAULT_CONCURRENCY,
        min_instances=service.template.scaling.min_instance_count,
        max_instances=service.template.scaling.max_instance_count or DEFAULT_MAX_INSTANCES,
        startup_cpu_boost=bool(container.resources.startup_cpu_boost),
        cpu_idle=cpu_idle(container),
    )


def facts_from_service(service: Any) -> ServiceFacts:
    """Execution environment, Direct VPC egress and the service-level scaling bounds."""
    from google.cloud import run_v2

    env = service.template.execution_environment
    environment = {
        run_v2.ExecutionEnvironment.EXECUTION_ENVIRONMENT_GEN1: "gen1",
        run_v2.ExecutionEnvironment.EXECUTION_ENVIRONMENT_GEN2: "gen2",
    }.get(env)
    scaling = service.scaling
    return ServiceFacts(
        execution_environment=environment,
        direct_vpc=bool(len(service.template.vpc_access.network_interfaces)),
        service_min_instances=int(scaling.min_instance_count) or None,
        service_max_instances=int(scaling.max_instance_count) or None,
    )


def cpu_idle(container: Any) -> bool:
    """Request-based billing: ``resources.cpu_idle``. A container without ``resources`` runs with
    the default (request-based); once ``resources`` is set, the API states the field explicitly."""
    if "resources" not in container:
        return True
    return bool(container.resources.cpu_idle)


def raw_fields(service: Any) -> dict[str, Any]:
    """The template fields we may change, exactly as stored (unset stays unset)."""
    container = _container(service)
    limits = dict(container.resources.limits)
    return {
        "cpu": limits.get("cpu"),
        "memory": limits.get("memory"),
        "max_instance_request_concurrency": int(service.template.max_instance_request_concurrency),
        "min_instance_count": int(service.template.scaling.min_instance_count),
        "max_instance_count": int(service.template.scaling.max_instance_count),
        "startup_cpu_boost": bool(container.resources.startup_cpu_boost),
        "cpu_idle": cpu_idle(container),
    }


def _set_raw(service: Any, raw: dict[str, Any]) -> None:
    container = _container(service)
    # Setting any resource field sends ``resources``, and then an unset cpu_idle means
    # instance-based billing: keep the mode the service had unless the change names it.
    if raw.keys() & {"cpu", "memory", "startup_cpu_boost", "cpu_idle"}:
        container.resources.cpu_idle = bool(raw.get("cpu_idle", cpu_idle(container)))
    for key, field in (("cpu", "cpu"), ("memory", "memory")):
        if key not in raw:
            continue
        if raw[key] is None:
            container.resources.limits.pop(field, None)
        else:
            container.resources.limits[field] = raw[key]
    if "max_instance_request_concurrency" in raw:
        service.template.max_instance_request_concurrency = raw["max_instance_request_concurrency"]
    if "min_instance_count" in raw:
        service.template.scaling.min_instance_count = raw["min_instance_count"]
    if "max_instance_count" in raw:
        service.template.scaling.max_instance_count = raw["max_instance_count"]
    if "startup_cpu_boost" in raw:
        container.resources.startup_cpu_boost = raw["startup_cpu_boost"]


def raw_from_changes(changes: dict[str, Any]) -> dict[str, Any]:
    raw: dict[str, Any] = {}
    if "cpu" in changes:
        raw["cpu"] = format_cpu(changes["cpu"])
    if "memory_mib" in changes:
        raw["memory"] = format_memory(int(changes["memory_mib"]))
    if "concurrency" in changes:
        raw["max_instance_request_concurrency"] = int(changes["concurrency"])
    if "min_instances" in changes:
        raw["min_instance_count"] = int(changes["min_instances"])
    if "max_instances" in changes:
        raw["max_instance_count"] = int(changes["max_instances"])
    if "startup_cpu_boost" in changes:
        raw["startup_cpu_boost"] = bool(changes["startup_cpu_boost"])
    if "cpu_idle" in changes:
        raw["cpu_idle"] = bool(changes["cpu_idle"])
    return raw


class CloudRunAdminActuator(Actuator):
    def __init__(self, name: str, *, client: Any = None, operation_timeout: float = 600.0) -> None:
        if not _NAME.match(name):
            raise InputError(
                f"invalid Cloud Run service name {name!r}; expected projects/PROJECT/locations/REGION/services/SERVICE",
                where="cloud_run",
            )
        self.name = name
        self._client = client
        self.operation_timeout = operation_timeout

    @property
    def client(self) -> Any:
        """The injected client, else the process-wide one (built on first use)."""
        return self._client if self._client is not None else services_client()

    def service_name(self) -> str:
        return self.name.rsplit("/", 1)[-1]

    def target(self) -> dict[str, Any]:
        return {"type": "cloud-run-admin", "name": self.name}

    def describe(self) -> str:
        return f"Cloud Run Admin API {self.name}"

    def _get(self) -> Any:
        try:
            return self.client.get_service(name=self.name)
        except Exception as exc:
            raise _classify(exc, f"Cloud Run get_service {self.name}") from exc

    def _update(self, service: Any) -> Any:
        from google.cloud import run_v2

        service.template.revision = ""
        try:
            operation = self.client.update_service(request=run_v2.UpdateServiceRequest(service=service))
            return operation.result(timeout=self.operation_timeout)
        except Exception as exc:
            raise _classify(exc, f"Cloud Run update_service {self.name}") from exc

    def read(self) -> ServiceConfig:
        return config_from_service(self._get())

    def read_facts(self) -> ServiceFacts:
        return facts_from_service(self._get())

    def snapshot(self) -> dict[str, Any]:
        service = self._get()
        return {
            "type": "cloud-run-admin",
            "name": self.name,
            "previous": raw_fields(service),
            "etag": service.etag,
            "generation": int(service.generation),
            "revision": service.latest_ready_revision,
        }

    def apply(self, changes: dict[str, Any]) -> ServiceConfig:
        service = self._get()
        check_changes(
            config_from_service(service), changes, self.name, facts_from_service(service), self.limits
        )
        _set_raw(service, raw_from_changes(changes))
        return config_from_service(self._update(service))

    def restore(self, snapshot: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
        service = self._get()
        current = raw_fields(service)
        ours = raw_from_changes(changes)
        previous = {k: v for k, v in snapshot["previous"].items() if k in ours}
        if all(current[k] == v for k, v in previous.items()):
            return {"restored": False, "reason": "service already has the previous values"}
        changed_by_others = {k: current[k] for k, v in ours.items() if current[k] not in (v, previous.get(k))}
        if changed_by_others:
            raise ConflictError(
                f"{self.name}: {sorted(changed_by_others)} changed since apply ({changed_by_others}); "
                f"not overwriting. Previous values: {previous}"
            )
        _set_raw(service, previous)
        updated = self._update(service)
        return {
            "restored": True,
            "name": self.name,
            "values": previous,
            "generation": int(updated.generation),
        }
