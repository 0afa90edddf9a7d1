"""Settings and parameter models (cheap to import: pydantic only)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from ...actuators.base import ServiceConfig, problems
from ...inputs import InputPath, OutputPath, policy_of
from ...metrics.names import FILE_METRICS

FOCUSES = ("cpu", "memory", "latency", "errors")


class SourceSettings(BaseModel):
    """Where metrics come from when no files are given, and which services to act on."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    source: Literal["sample", "cloud-monitoring"] = Field(
        "sample",
        description="with no --metric files: 'sample' analyses the bundled sample service; "
        "'cloud-monitoring' queries Cloud Monitoring for `services` in `project`/`region`",
    )
    project: str | None = Field(None, description="Google Cloud project id (cloud-monitoring)")
    region: str | None = Field(None, description="Cloud Run region, e.g. europe-west1 (cloud-monitoring)")
    services: list[str] = Field(default_factory=list, description="Cloud Run services to analyse")
    alignment_seconds: int = Field(
        60, ge=60, le=86400, description="Cloud Monitoring alignment period (seconds, 60..86400)"
    )
    actuator: Literal["none", "cloud-run-admin"] = Field(
        "cloud-run-admin",
        description="how actions reach services found through Cloud Monitoring (the Admin API on "
        "projects/P/locations/R/services/S); --param service_yaml / cloud_run override it",
    )
    settle_seconds: float = Field(
        600, ge=0, le=86400, description="wait after a change before verifying it (seconds, <= 1 day)"
    )
    operation_timeout_seconds: float = Field(
        600, gt=0, le=3600, description="Admin API update wait (seconds, <= 1 h)"
    )


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


class ServiceParams(BaseModel):
    """Trigger parameters of the automations that act on one Cloud Run service's settings."""

    model_config = ConfigDict(extra="forbid")

    metrics: dict[str, InputPath] = Field(default_factory=dict, description="--metric NAME=PATH")
    service: str | None = Field(None, max_length=200)
    # Read and rewritten by apply: an output, so only local triggers may name it.
    service_yaml: OutputPath | None = Field(None, description="Cloud Run service YAML to act on")
    cloud_run: str | None = Field(None, description="projects/P/locations/R/services/S to act on")

    @model_validator(mode="after")
    def _files_readable(self, info: ValidationInfo) -> ServiceParams:
        if not self.metrics:
            return self
        # A missing, unreadable or headerless file is the caller's input error: refused before a
        # run is recorded (check_series_file raises InputError, which pydantic lets through).
        # The samples themselves are read once, by the run.
        from ...metrics.files import check_series_file

        max_bytes = policy_of(info).max_bytes
        for name, path in self.metrics.items():
            check_series_file(path, name, max_bytes=max_bytes)
        return self


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
