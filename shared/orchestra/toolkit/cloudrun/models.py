"""Settings and parameter models of automations acting on one Cloud Run service (pydantic only)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, model_validator

from ...actuators.rules import CloudRunLimits
from ...inputs import InputPath, OutputPath, policy_of


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
    cloud_run_limits: CloudRunLimits = Field(
        default_factory=CloudRunLimits,
        description="the project's Cloud Run quotas every change is checked against: Direct VPC egress "
        "max instances, the region's vCPU and memory quota",
    )


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
