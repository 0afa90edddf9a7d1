"""Which services a run looks at, where their metrics come from and what can act on them.

Shared by the automations that act on one Cloud Run service's settings.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...actuators.base import Actuator, ServiceConfig, actuator_from_target
from ...actuators.rules import ServiceFacts
from ...errors import InputError
from ...inputs import DEFAULT_MAX_BYTES
from ...metrics.base import MetricSeries, MetricsSource
from ..dependencies import guarded
from .models import ServiceParams, SourceSettings

if TYPE_CHECKING:
    from ...automation import RunContext


@dataclass
class ServiceInput:
    service: str
    source: MetricsSource
    actuator: Actuator | None
    # Read-only view of the current configuration when nothing may act (the bundled sample).
    config_reader: Actuator | None
    start: dt.datetime | None
    end: dt.datetime | None
    sample_capacity_rps: float | None = None

    def fetch(self, ctx: RunContext, metrics: Sequence[str]) -> dict[str, MetricSeries]:
        """This run's window of the given metrics."""
        return guarded(
            ctx,
            self.source.kind,
            lambda: self.source.fetch(self.service, metrics, start=self.start, end=self.end),
        )

    def current_config(self, ctx: RunContext, assumed: ServiceConfig) -> tuple[ServiceConfig, str]:
        """The service's configuration now, and where it was read from."""
        actuator = self.actuator
        if actuator is not None:
            config = guarded(ctx, actuator.target().get("type"), actuator.read)
            return config, f"read from {actuator.describe()}"
        if self.config_reader is not None:
            return self.config_reader.read(), "read from the bundled sample's service.yaml (never changed)"
        return assumed, "assumed (settings.assumed_service: no service YAML or Admin API target)"

    def current_facts(self, ctx: RunContext) -> ServiceFacts:
        """What Cloud Run's rules need to know of the service besides its settings."""
        actuator = self.actuator
        if actuator is not None:
            return guarded(ctx, actuator.target().get("type"), actuator.read_facts)
        if self.config_reader is not None:
            return self.config_reader.read_facts()
        return ServiceFacts()


def explicit_actuator(
    service_yaml: str | None, cloud_run: str | None, *, run_client: Any = None, timeout: float = 600.0
) -> Actuator | None:
    if service_yaml and cloud_run:
        raise InputError("give either service_yaml or cloud_run, not both", where="--param")
    if service_yaml:
        return actuator_from_target({"type": "cloud-run-yaml", "path": service_yaml})
    if cloud_run:
        from ...actuators.cloud_run_admin import CloudRunAdminActuator

        return CloudRunAdminActuator(cloud_run, client=run_client, operation_timeout=timeout)
    return None


def resolve(
    *,
    settings: SourceSettings,
    params: ServiceParams,
    now: dt.datetime,
    lookback_hours: float,
    monitoring_client: Any = None,
    run_client: Any = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> list[ServiceInput]:
    metrics, service = params.metrics, params.service
    actuator = explicit_actuator(
        params.service_yaml,
        params.cloud_run,
        run_client=run_client,
        timeout=settings.operation_timeout_seconds,
    )
    if metrics:
        from ...metrics.files import FileMetricsSource

        name = service
        if name is None and actuator is not None:
            name = actuator.service_name()
        return [
            ServiceInput(
                name or "service", FileMetricsSource(metrics, max_bytes=max_bytes), actuator, None, None, None
            )
        ]
    if settings.source == "sample":
        from ...metrics.sample import load_sample

        sample = load_sample()
        reader = actuator_from_target({"type": "cloud-run-yaml", "path": str(sample.service_yaml)})
        return [
            ServiceInput(
                service or sample.service,
                sample.source,
                actuator,
                reader,
                None,
                None,
                sample_capacity_rps=sample.instance_capacity_rps,
            )
        ]
    # Cloud Monitoring
    if not settings.project:
        raise InputError(
            "source is cloud-monitoring but no project is configured",
            where="automations.<name>.settings.project",
        )
    services = [service] if service else list(settings.services)
    if not services:
        raise InputError(
            "source is cloud-monitoring but no service is given: set settings.services or pass --service",
            where="automations.<name>.settings.services",
        )
    if actuator is not None and len(services) > 1:
        raise InputError("service_yaml / cloud_run name one service: pass --service too", where="--param")
    from ...metrics.cloud_monitoring import CloudMonitoringSource

    source = CloudMonitoringSource(
        settings.project,
        region=settings.region,
        alignment_seconds=settings.alignment_seconds,
        client=monitoring_client,
    )
    start = now - dt.timedelta(hours=lookback_hours)
    out = []
    for name in services:
        act = actuator
        if act is None and settings.actuator == "cloud-run-admin":
            if not settings.region:
                raise InputError(
                    "the Admin API actuator needs settings.region (or set settings.actuator: none)",
                    where="automations.<name>.settings.region",
                )
            from ...actuators.cloud_run_admin import CloudRunAdminActuator

            act = CloudRunAdminActuator(
                f"projects/{settings.project}/locations/{settings.region}/services/{name}",
                client=run_client,
                operation_timeout=settings.operation_timeout_seconds,
            )
        out.append(ServiceInput(name, source, act, None, start, now))
    return out
