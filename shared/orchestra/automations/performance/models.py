"""Settings and parameter models (cheap to import: pydantic only)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, field_validator

from ...actuators.base import ServiceConfig, problems
from ...metrics.names import FILE_METRICS
from ...toolkit.cloudrun.models import ServiceParams, SourceSettings

FOCUSES = ("cpu", "memory", "latency", "errors")


class PerformanceSettings(SourceSettings):
    lookback_hours: float = Field(
        192,
        gt=0,
        le=2160,
        description="Cloud Monitoring history to read (8 days: enough for rightsizing; <= 90 days)",
    )
    verify_tolerance_percent: float = Field(
        5, ge=0, le=1000, description="a targeted metric counts as worse when it rises more than this"
    )
    baseline_minutes: float = Field(
        60, gt=0, le=10080, description="window before the change compared in verification (<= 7 days)"
    )
    cpu_target_percent: float = Field(
        60, gt=0, lt=100, description="CPU utilization to size for (Cloud Run's autoscaling target)"
    )
    memory_target_percent: float = Field(60, gt=0, lt=100, description="memory utilization to size for")
    rightsizing_days: float = Field(
        8, gt=0, le=90, description="history a downsizing needs (GCE and VPA use 8 days; <= 90)"
    )
    rightsizing_percentile: float = Field(
        90, gt=0, le=100, description="usage percentile sized for (VPA: P90)"
    )
    rightsizing_margin_percent: float = Field(
        15, ge=0, le=1000, description="safety margin on that usage (VPA: 15 %)"
    )
    max_instances_cap: int = Field(
        1000, ge=1, le=100_000, description="never propose more max instances than this"
    )
    single_threaded: bool = Field(
        False,
        description="the service handles requests on one thread (e.g. Node.js, a single Python worker): "
        "CPU hot spots are fixed with lower concurrency, not more vCPU",
    )
    assumed_service: ServiceConfig = Field(
        default_factory=ServiceConfig,
        description="the service configuration assumed when none can be read (Cloud Run defaults)",
    )

    @field_validator("assumed_service")
    @classmethod
    def _valid_service(cls, value: ServiceConfig) -> ServiceConfig:
        found = problems(value)  # Cloud Run's rules; an infinite or NaN cpu is not one of the steps
        if value.max_instances > 100_000:
            found.append(f"max instances {value.max_instances} above 100000")
        if found:
            raise ValueError("; ".join(found))
        return value


class PerformanceParams(ServiceParams):
    focus: str | None = Field(None, description="alert-focused run: cpu, memory, latency or errors")
    single_threaded: bool | None = None

    @field_validator("metrics")
    @classmethod
    def _metric_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if name not in FILE_METRICS:
                raise ValueError(f"unknown metric {name!r}; accepted: {', '.join(FILE_METRICS)}")
        return value

    @field_validator("focus")
    @classmethod
    def _focus(cls, value: str | None) -> str | None:
        if value is not None and value not in FOCUSES:
            raise ValueError(f"unknown focus {value!r}; accepted: {', '.join(FOCUSES)}")
        return value


def dump(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json")
