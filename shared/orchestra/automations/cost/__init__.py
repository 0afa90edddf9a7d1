"""Cost optimization: billing anomalies, budgets and month-end forecasts, Cloud Run waste.

Input is the Cloud Billing export: the BigQuery standard usage cost table in the cloud
(``settings.bigquery.table``), or a CSV / JSON-lines file with the export's columns
(``--billing PATH``). With neither, the bundled sample export is analyzed (and the summary says so).

Actions: lowering idle minimum instances, rightsizing over-provisioned services and switching a
service to its cheaper billing mode (request-based or instance-based, from its utilization) are
proposed as actions only for services with a target: ``settings.services[].manifest`` (the service YAML,
deployed with ``gcloud run services replace``) or ``resource_name`` (Cloud Run Admin API). Apply
goes through ``orchestra.actuators``; verify re-reads the service; rollback restores the snapshot
taken by prepare. Without a target the recommendation is a finding only.

This module stays cheap to import: numpy and the Google clients load inside ``analyze``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ...automation import Analysis, Automation, RunContext, Verification
from ...inputs import InputPath
from ...models import Action

if TYPE_CHECKING:
    from ...console.views import RunView
    from ...models import Run


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


# Upper bounds for amounts (export currency) and counts: far above any real bill, finite, and small
# enough that sums and forecasts over them stay exact.
MAX_AMOUNT = 1e12
MAX_INSTANCES = 10_000


class BigQuerySettings(Section):
    table: str = Field(description="PROJECT.DATASET.gcp_billing_export_v1_ACCOUNT (standard export)")
    job_project: str | None = Field(None, description="project that runs (and pays for) the query")
    location: str | None = Field(None, description="dataset location, e.g. US or EU")
    partition_slack_days: int = Field(
        3, ge=0, le=31, description="late-arriving rows: partitions scanned early"
    )
    maximum_bytes_billed: int | None = Field(
        50 * 1024**3, ge=1, le=2**53, description="the query fails instead of billing more than this (bytes)"
    )


class SeverityAmounts(Section):
    medium: float = Field(
        100, ge=0, le=MAX_AMOUNT, description="delta (currency units) from which an anomaly is medium"
    )
    high: float = Field(500, ge=0, le=MAX_AMOUNT)
    critical: float = Field(2500, ge=0, le=MAX_AMOUNT)


class AnomalySettings(Section):
    window_days: int = Field(28, ge=14, le=364, description="trailing baseline window (multiple of 7)")
    weekday_aware: bool = Field(True, description="compare a day with the same weekday of past weeks")
    relative_margin: float = Field(
        0.3, ge=0, le=100, description="flag only above expected x (1 + margin), margin 0..100"
    )
    absolute_margin: float = Field(
        25.0, ge=0, le=MAX_AMOUNT, description="... and above expected + this amount"
    )
    noise_sigmas: float = Field(
        3.0, ge=0, le=100, description="... and above this many robust noise scales (0..100)"
    )
    detect_days: int | None = Field(
        7, ge=1, le=366, description="report anomalies of the last N days (1..366, null: all)"
    )
    severity: SeverityAmounts = SeverityAmounts()
    top_skus: int = Field(3, ge=1, le=20)
    max_findings: int = Field(50, ge=1, le=10_000)

    @model_validator(mode="after")
    def _weeks(self) -> AnomalySettings:
        if self.window_days % 7:
            raise ValueError("window_days must be a multiple of 7 (whole weeks keep weekdays balanced)")
        return self


class Budget(Section):
    name: str
    amount: float = Field(gt=0, le=MAX_AMOUNT, description="monthly budget in the export's currency")
    projects: list[str] | None = Field(None, description="project ids covered (null: all)")
    services: list[str] | None = Field(None, description="service descriptions covered (null: all)")
    alert_threshold: float = Field(
        1.0, gt=0, le=100, description="alert when forecast > amount x this (0..100)"
    )


class CloudRunPrices(Section):
    """Per-second list prices (USD, Tier 1 regions). Check current pricing and override.

    Source: the Cloud Run pricing page (https://cloud.google.com/run/pricing), services, Tier 1,
    without the free tier: request-based billing $0.000024 per vCPU-second and $0.0000025 per
    GiB-second while requests are handled, $0.0000025 per vCPU- and GiB-second for idle minimum
    instances, $0.40 per million requests; instance-based billing $0.000018 per vCPU-second and
    $0.000002 per GiB-second for the whole instance lifetime, no request fee.
    """

    vcpu_second: float = Field(0.000024, ge=0, le=1, description="request-based billing, active")
    gib_second: float = Field(0.0000025, ge=0, le=1)
    idle_vcpu_second: float = Field(0.0000025, ge=0, le=1, description="request-based, idle min instances")
    idle_gib_second: float = Field(0.0000025, ge=0, le=1)
    instance_vcpu_second: float = Field(0.000018, ge=0, le=1, description="instance-based billing")
    instance_gib_second: float = Field(0.000002, ge=0, le=1)
    per_million_requests: float = Field(
        0.40, ge=0, le=MAX_AMOUNT, description="request-based billing's request fee (per million requests)"
    )


class RunService(Section):
    name: str
    project: str | None = None
    region: str | None = None
    min_instances: int = Field(0, ge=0, le=MAX_INSTANCES)
    vcpu: float = Field(1.0, gt=0, le=8, description="vCPU per instance (Cloud Run: at most 8)")
    memory_gib: float = Field(0.5, gt=0, le=32, description="memory per instance (Cloud Run: at most 32 GiB)")
    billing: Literal["request", "instance"] = "request"
    average_instances: float | None = Field(
        None, ge=0, le=MAX_INSTANCES, description="billed instances on average"
    )
    prices: CloudRunPrices | None = Field(None, description="overrides cloud_run_prices")
    manifest: str | None = Field(
        None, description="service YAML that apply edits (gcloud run services replace)"
    )
    resource_name: str | None = Field(
        None, description="projects/P/locations/R/services/S: apply through the Cloud Run Admin API"
    )

    @model_validator(mode="after")
    def _one_target(self) -> RunService:
        if self.manifest and self.resource_name:
            raise ValueError("set manifest or resource_name, not both")
        return self

    def target(self) -> dict[str, str] | None:
        """The actuator target (orchestra.actuators) that applies changes to this service."""
        if self.manifest:
            return {"type": "cloud-run-yaml", "path": self.manifest}
        if self.resource_name:
            return {"type": "cloud-run-admin", "name": self.resource_name}
        return None


class WasteSettings(Section):
    idle_requests_per_day: float = Field(10, ge=0, le=1e9, description="near-zero traffic at or below this")
    min_traffic_days: float = Field(
        1, gt=0, le=366, description="traffic history needed to call a service idle (days)"
    )
    cpu_percentile: float = Field(90, gt=0, le=100)
    headroom: float = Field(0.15, ge=0, le=10, description="safety margin over the percentile (0..10)")
    cpu_target_utilization: float = Field(0.6, gt=0, le=1, description="Cloud Run autoscaling CPU target")
    min_samples: int = Field(
        288, ge=1, le=10**7, description="utilization samples needed to rightsize (a day at 5 min)"
    )
    min_monthly_savings: float = Field(5, ge=0, le=MAX_AMOUNT)


class BillingModeSettings(Section):
    """Request-based vs instance-based billing per service, from its utilization."""

    enabled: bool = Field(True, description="compare the two billing modes of services with usage metrics")
    margin: float = Field(
        0.1,
        ge=0,
        le=1,
        description="switch only when the other mode costs less than the current one by more than "
        "this share of the current cost (0..1)",
    )
    min_monthly_savings: float = Field(
        5, ge=0, le=MAX_AMOUNT, description="... and saves at least this much per month"
    )
    min_hours: float = Field(
        24, gt=0, le=24 * 366, description="usage history needed to judge a service (hours)"
    )


class Settings(Section):
    bigquery: BigQuerySettings | None = None
    history_days: int = Field(
        70, ge=15, le=3650, description="days read from BigQuery (window + detection + month; <= 10 years)"
    )
    max_bad_row_share: float = Field(0.01, ge=0, le=1, description="more malformed rows fail the run")
    anomalies: AnomalySettings = AnomalySettings()
    budgets: list[Budget] = Field(default_factory=list)
    cloud_run_prices: CloudRunPrices = CloudRunPrices()
    services: list[RunService] = Field(default_factory=list)
    waste: WasteSettings = WasteSettings()
    billing_mode: BillingModeSettings = BillingModeSettings()


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")

    billing: InputPath | None = Field(
        None, description="billing export file (CSV or JSON lines, .gz allowed)"
    )
    by_sku: bool = Field(False, description="series per project x service x SKU")
    metrics: dict[str, InputPath] = Field(
        default_factory=dict,
        description="request_count / cpu / memory (waste) and instance_count / active_instances / "
        "billable_instance_time (billing mode) CSVs; 'NAME' for --service, 'SERVICE.NAME' for any",
    )
    service: str | None = Field(None, description="limit waste analysis to this Cloud Run service")


class CostAutomation(Automation):
    name: ClassVar[str] = "cost"
    description: ClassVar[str] = (
        "Billing anomalies, budget forecasts, Cloud Run waste and billing mode, ranked by savings"
    )
    Settings: ClassVar[type[BaseModel]] = Settings
    Params: ClassVar[type[BaseModel]] = Params
    # Analysis reads the billing export (a file, DuckDB in memory, or a BigQuery query: a billed
    # read that a duplicate delivery may make again, nothing changed), usage CSVs and the targets'
    # configuration; every change is an action.
    read_only_analysis: ClassVar[bool] = True

    def __init__(self, *, bigquery_client: Any = None, run_client: Any = None) -> None:
        self.bigquery_client = bigquery_client
        self.run_client = run_client

    def analyze(self, ctx: RunContext[Settings, Params]) -> Analysis:
        from .engine import analyze

        return analyze(ctx, bigquery_client=self.bigquery_client, run_client=self.run_client)

    def prepare(self, ctx: RunContext, action: Action) -> dict[str, Any]:
        from .engine import prepare

        return prepare(ctx, action, run_client=self.run_client)

    def apply(self, ctx: RunContext, action: Action) -> dict[str, Any]:
        from .engine import apply

        return apply(ctx, action, run_client=self.run_client)

    def verify(self, ctx: RunContext, action: Action) -> Verification:
        from .engine import verify

        return verify(ctx, action, run_client=self.run_client)

    def rollback(self, ctx: RunContext, action: Action) -> None:
        from .engine import rollback

        rollback(action, run_client=self.run_client)

    def render(self, run: Any, console: Any) -> None:
        from .render import render

        render(run, console)

    def run_view(self, run: Run) -> RunView | None:
        """Daily cost per series with its anomalies marked, and each budget's month-end forecast."""
        from .view import run_view

        return run_view(run)
