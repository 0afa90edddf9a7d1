"""A Cloud Run service's settings and readiness, read through its actuator.

A change is verified when the service reports the changed settings and, where the target can tell,
is ready: through the Admin API the service's terminal condition succeeded, it is not
reconciling, it has observed its latest generation and serves its latest created revision. A
service YAML file cannot tell (the change is live once someone runs ``gcloud run services
replace``): readiness is then unknown, never assumed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...actuators.base import Actuator, ServiceConfig
from ...automation import Verification
from ...errors import is_transient


@dataclass(frozen=True)
class ServiceStatus:
    config: ServiceConfig
    ready: bool | None  # None: the target cannot tell
    evidence: dict[str, Any] = field(default_factory=dict)


def read_status(actuator: Actuator) -> ServiceStatus:
    """The service's settings and readiness, from one read of the target."""
    from ...actuators.cloud_run_admin import CloudRunAdminActuator

    if isinstance(actuator, CloudRunAdminActuator):
        return _admin_status(actuator)
    return ServiceStatus(
        actuator.read(),
        None,
        {"readiness": f"not observable in {actuator.describe()}: it is live once deployed"},
    )


def _admin_status(actuator: Any) -> ServiceStatus:
    from google.cloud import run_v2

    from ...actuators.cloud_run_admin import ActuatorError, ActuatorUnavailable, config_from_service

    try:
        service = actuator.client.get_service(name=actuator.name)
    except Exception as exc:
        message = f"Cloud Run get_service {actuator.name}: {type(exc).__name__}: {exc}"
        raise (ActuatorUnavailable(message) if is_transient(exc) else ActuatorError(message)) from exc
    succeeded = service.terminal_condition.state == run_v2.Condition.State.CONDITION_SUCCEEDED
    current = int(service.observed_generation) == int(service.generation)
    serving = service.latest_ready_revision == service.latest_created_revision
    ready = succeeded and current and serving and not service.reconciling
    evidence = {
        "generation": int(service.generation),
        "observed_generation": int(service.observed_generation),
        "reconciling": bool(service.reconciling),
        "terminal_condition": service.terminal_condition.state.name,
        "latest_ready_revision": service.latest_ready_revision,
        "latest_created_revision": service.latest_created_revision,
    }
    return ServiceStatus(config_from_service(service), ready, evidence)


def verify_changes(status: ServiceStatus, changes: dict[str, Any]) -> Verification:
    """The service reports every changed value and is not known to be unready."""
    state = status.config.model_dump()
    drift = {k: state[k] for k, v in changes.items() if state[k] != v}
    evidence: dict[str, Any] = {
        "config": state,
        "expected": changes,
        "ready": status.ready,
        **status.evidence,
    }
    if drift:
        return Verification(ok=False, evidence={**evidence, "drift": drift})
    if status.ready is False:
        return Verification(
            ok=False, evidence={**evidence, "note": "the service reports the change but is not ready"}
        )
    return Verification(ok=True, evidence=evidence)
