"""Settings and parameter models (cheap to import: pydantic only)."""

from __future__ import annotations

from pydantic import Field, field_validator

from ...inputs import InputPath
from ...toolkit.cloudrun.models import ServiceParams, SourceSettings


class InfrastructureSettings(SourceSettings):
    settle_seconds: float = Field(
        60, ge=0, le=86400, description="wait after a change before reading it back (seconds, <= 1 day)"
    )
    lookback_days: float = Field(
        14, gt=0, le=90, description="request-count history read from Cloud Monitoring (days, <= 90)"
    )
    min_history_days: float = Field(
        3, gt=0, le=90, description="history needed before forecasting (GCP: 3 days; <= 90)"
    )
    percentile: float = Field(90, gt=0, le=100, description="demand percentile per hour of the week")
    instance_capacity_rps: float | None = Field(
        None,
        gt=0,
        le=1e6,
        description="requests per second one instance serves at target utilization (from a load test)",
    )
    floor_min_instances: int = Field(0, ge=0, le=100_000, description="min instances at quiet hours")
    quiet_fraction: float = Field(
        0.25,
        ge=0,
        lt=1,
        description="an hour is quiet when its demand is at most this fraction of the weekly peak",
    )
    warm_ahead_hours: int = Field(
        1, ge=0, le=24, description="raise min instances this many hours before a peak"
    )
    headroom_percent: float = Field(
        50, ge=0, le=1000, description="max instances = peak demand / capacity x (1 + headroom)"
    )
    max_instances_cap: int = Field(1000, ge=1, le=100_000)
    recent_minutes: float = Field(
        60, gt=0, le=10080, description="window that counts as current demand (<= 7 days)"
    )
    forecast_only: bool = Field(False, description="compute and report the schedule, change nothing")


class InfrastructureParams(ServiceParams):
    metrics: dict[str, InputPath] = Field(default_factory=dict, description="--metric request_count=PATH")
    forecast_only: bool | None = None
    instance_capacity_rps: float | None = Field(None, gt=0)

    @field_validator("metrics")
    @classmethod
    def _request_count_only(cls, value: dict[str, str]) -> dict[str, str]:
        extra = sorted(set(value) - {"request_count"})
        if extra:
            raise ValueError(f"infrastructure reads only request_count; got {', '.join(extra)}")
        return value
