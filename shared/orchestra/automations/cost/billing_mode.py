"""Cloud Run billing mode: request-based or instance-based, whichever is cheaper for the load.

Sources (checked when this was written; the prices are settings, ``cloud_run_prices``):

- Billing settings (https://cloud.google.com/run/docs/configuring/billing-settings): request-based
  billing allocates and bills CPU only while an instance handles requests (plus its start and
  shutdown); instance-based billing allocates and bills CPU for the instance's whole lifetime.
  The mode is the ``run.googleapis.com/cpu-throttling`` template annotation (``"true"``, the
  default, is request-based) in the service YAML, ``template.containers[].resources.cpu_idle``
  (``true`` is request-based) in the Admin API v2. Less than 1 vCPU needs request-based billing.
- Pricing (https://cloud.google.com/run/pricing), Tier 1: request-based $0.000024 per vCPU-second
  and $0.0000025 per GiB-second of active time, idle minimum instances at $0.0000025 per vCPU- and
  GiB-second, and $0.40 per million requests; instance-based $0.000018 per vCPU-second and
  $0.000002 per GiB-second of instance time, no request fee. The free tier is left out.
- Metrics (https://cloud.google.com/monitoring/api/metrics_gcp, ``run.googleapis.com``):
  ``container/billable_instance_time`` is the billed instance time, which under request-based
  billing is the time instances are busy (starting or handling a request, rounded up to 100 ms)
  and under instance-based billing the whole instance lifetime; ``container/instance_count`` counts
  instances (its ``state`` label splits active from idle).

The model, over the analyzed period of ``T`` seconds: ``I`` instance-seconds (instances alive),
``B`` busy instance-seconds (``B <= I``), ``R`` requests, ``m`` minimum instances, per instance
``c`` vCPU and ``g`` GiB::

    request-based  = B (c vcpu_second + g gib_second)
                   + min(I - B, m T) (c idle_vcpu_second + g idle_gib_second)   # idle minimum instances
                   + R / 1e6 x per_million_requests
    instance-based = I (c instance_vcpu_second + g instance_gib_second)

The instance time is assumed not to depend on the mode (the autoscaler keeps the same instances;
instance-based services still scale to zero when idle). The utilization ``B / I`` decides: busy
instances favour instance-based billing, sparse traffic request-based. The break-even
utilization is where the two estimates are equal for the observed ``I``, ``R`` and ``m``.

Inputs are metric files (``--metric SERVICE.NAME=CSV``, :data:`USAGE_METRICS`):

- ``instance_count``: instances alive per sample (active + idle);
- ``active_instances``: instances handling requests per sample (``instance_count`` with
  ``state="active"``);
- ``billable_instance_time``: billed instance-seconds per sample interval (a DELTA sum, like
  ``request_count`` is requests per interval);
- ``request_count``: requests per sample interval (the per-request fee).

Busy time is ``active_instances`` over time, or ``billable_instance_time`` while the service is
request-based; instance time is ``instance_count`` over time, or ``billable_instance_time`` while it
is instance-based. Without both the utilization is unknown and nothing is recommended.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ...metrics.base import iso
from ...models import Risk
from .waste import SECONDS_PER_MONTH

if TYPE_CHECKING:
    from orchestra.metrics.base import MetricSeries

    from . import BillingModeSettings, CloudRunPrices

Mode = Literal["request", "instance"]
USAGE_METRICS: tuple[str, ...] = ("instance_count", "active_instances", "billable_instance_time")
# Busy time above instance time by more than this share means the series disagree.
CONSISTENCY_SLACK = 0.1


def mode_of(cpu_idle: bool) -> Mode:
    return "request" if cpu_idle else "instance"


def cpu_idle_of(mode: Mode) -> bool:
    return mode == "request"


@dataclass(frozen=True)
class ServiceShape:
    """What the estimate needs of a service's configuration, and where it was read."""

    vcpu: float
    memory_gib: float
    mode: Mode
    min_instances: int
    origin: str
    # The configuration read from the service's target (None: taken from the settings). An action
    # stores it so that apply refuses a service changed since the estimate.
    config: dict[str, Any] | None = None


@dataclass
class Usage:
    """Instance time, busy time and requests over ``period_seconds``; None when not measured."""

    period_seconds: float
    instance_seconds: float | None
    busy_seconds: float | None
    requests: float | None
    sources: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _covered_seconds(series: MetricSeries) -> float:
    """The time a series of per-sample values covers: its span plus one sample interval."""
    return series.span_seconds + (series.median_interval_seconds() or 0.0)


def _gauge_seconds(series: MetricSeries) -> float:
    """Instance-seconds of a gauge of instances: its mean times the time it covers."""
    return float(series.values.mean()) * _covered_seconds(series)


def usage_from_series(series: dict[str, MetricSeries], mode: Mode) -> Usage:
    """The usage the metric series measure, for a service currently billed in ``mode``."""
    notes: list[str] = []
    sources: dict[str, str] = {}
    present = {k: v for k, v in series.items() if len(v)}
    if present:
        # Only the time every series covers: costs of different periods do not compare.
        lo = max(s.start_ms for s in present.values())
        hi = min(s.end_ms for s in present.values())
        if hi < lo:
            notes.append("the usage series do not overlap in time: " + ", ".join(sorted(present)))
            return Usage(0.0, None, None, None, sources, notes)
        clipped = {k: v.between(lo - 1, hi) for k, v in present.items()}
        if any(len(v) < len(present[k]) for k, v in clipped.items()):
            notes.append(f"usage compared over the time all series cover ({iso(lo)} to {iso(hi)})")
        present = clipped
    period = max((_covered_seconds(s) for s in present.values()), default=0.0)

    instance_seconds: float | None = None
    busy_seconds: float | None = None
    billable = present.get("billable_instance_time")
    if "instance_count" in present:
        instance_seconds = _gauge_seconds(present["instance_count"])
        sources["instance_time"] = f"instance_count ({present['instance_count'].origin})"
    elif billable is not None and mode == "instance":
        instance_seconds = float(billable.values.sum())
        sources["instance_time"] = f"billable_instance_time, instance-based ({billable.origin})"
    if "active_instances" in present:
        busy_seconds = _gauge_seconds(present["active_instances"])
        sources["busy_time"] = f"active_instances ({present['active_instances'].origin})"
    elif billable is not None and mode == "request":
        busy_seconds = float(billable.values.sum())
        sources["busy_time"] = f"billable_instance_time, request-based ({billable.origin})"

    requests: float | None = None
    if "request_count" in present:
        requests = float(present["request_count"].values.sum())
        sources["requests"] = f"request_count ({present['request_count'].origin})"

    if instance_seconds is not None and busy_seconds is not None and busy_seconds > instance_seconds:
        if busy_seconds > instance_seconds * (1 + CONSISTENCY_SLACK):
            notes.append(
                f"busy time {busy_seconds:,.0f} s exceeds instance time {instance_seconds:,.0f} s by more "
                f"than {CONSISTENCY_SLACK:.0%}: the series do not describe the same service or period"
            )
            busy_seconds = None
        else:  # rounding to 100 ms and start-up time: the instances were busy all the time
            busy_seconds = instance_seconds
    return Usage(period, instance_seconds, busy_seconds, requests, sources, notes)


@dataclass
class BillingModeEstimate:
    service: str
    current: Mode
    recommended: Mode | None  # None: keep the current mode (or not enough data)
    outcome: Literal["switch", "keep", "unknown"]
    reason: str
    shape: ServiceShape
    usage: Usage
    request_cost: float | None = None  # over the period
    instance_cost: float | None = None
    utilization: float | None = None
    break_even: float | None = None
    monthly_savings: float = 0.0
    rates: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def risk(self) -> Risk:
        # A different CPU allocation changes how background work and latency behave: not free.
        return Risk.medium

    def monthly(self, amount: float | None) -> float | None:
        if amount is None or self.usage.period_seconds <= 0:
            return None
        return amount * SECONDS_PER_MONTH / self.usage.period_seconds

    def summary(self) -> str:
        name, current = self.service, _label(self.current)
        if self.outcome == "unknown":
            return f"{name}: billing mode not assessed ({self.reason})"
        costs = (
            f"request-based {self.monthly(self.request_cost):,.2f}/month, instance-based "
            f"{self.monthly(self.instance_cost):,.2f}/month at {self.utilization:.0%} utilization"
        )
        if self.outcome == "switch" and self.recommended is not None:
            return (
                f"{name}: switch from {current} to {_label(self.recommended)} billing to save "
                f"{self.monthly_savings:,.2f}/month ({costs})"
            )
        return f"{name}: keep {current} billing ({self.reason}; {costs})"

    def as_dict(self) -> dict[str, Any]:
        def money(value: float | None) -> float | None:
            return None if value is None else round(value, 2)

        u = self.usage
        return {
            "kind": "billing-mode",
            "service": self.service,
            "outcome": self.outcome,
            "reason": self.reason,
            "current": self.current,
            "recommended": self.recommended,
            "monthly_savings": round(self.monthly_savings, 2),
            "estimates": {
                "period_hours": round(u.period_seconds / 3600, 2),
                "request_based": money(self.request_cost),
                "instance_based": money(self.instance_cost),
                "request_based_monthly": money(self.monthly(self.request_cost)),
                "instance_based_monthly": money(self.monthly(self.instance_cost)),
            },
            "utilization": None if self.utilization is None else round(self.utilization, 4),
            "break_even_utilization": None if self.break_even is None else round(self.break_even, 4),
            "usage": {
                "instance_seconds": None if u.instance_seconds is None else round(u.instance_seconds, 1),
                "busy_seconds": None if u.busy_seconds is None else round(u.busy_seconds, 1),
                "requests": None if u.requests is None else round(u.requests, 1),
                "sources": u.sources,
            },
            "service_config": {
                "vcpu": self.shape.vcpu,
                "memory_gib": self.shape.memory_gib,
                "min_instances": self.shape.min_instances,
                "origin": self.shape.origin,
            },
            "rates": self.rates,
            "notes": u.notes + self.notes,
        }


def _label(mode: Mode) -> str:
    return f"{mode}-based"


def request_based_cost(
    busy: float, instance: float, requests: float, period: float, min_instances: int, rates: dict[str, float]
) -> float:
    idle_billed = min(max(instance - busy, 0.0), min_instances * period)
    return busy * rates["request"] + idle_billed * rates["idle"] + requests / 1e6 * rates["per_million"]


def break_even_utilization(
    instance: float, requests: float, period: float, min_instances: int, rates: dict[str, float]
) -> float | None:
    """The utilization at which both modes cost the same; None when request-based billing is
    cheaper at any utilization (or there is no instance time). The request-based cost grows with
    the utilization (active time costs more than idle time), so bisection finds the crossing."""
    if instance <= 0:
        return None
    target = instance * rates["instance"]

    def excess(u: float) -> float:
        return request_based_cost(u * instance, instance, requests, period, min_instances, rates) - target

    if excess(0.0) >= 0:
        return 0.0
    if excess(1.0) <= 0:
        return None
    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if excess(mid) < 0 else (lo, mid)
    return (lo + hi) / 2


def estimate(
    service: str,
    shape: ServiceShape,
    usage: Usage,
    prices: CloudRunPrices,
    settings: BillingModeSettings,
) -> BillingModeEstimate:
    """Both modes' cost over the period and the decision."""
    c, g = shape.vcpu, shape.memory_gib
    rates = {
        "request": c * prices.vcpu_second + g * prices.gib_second,
        "idle": c * prices.idle_vcpu_second + g * prices.idle_gib_second,
        "instance": c * prices.instance_vcpu_second + g * prices.instance_gib_second,
        "per_million": prices.per_million_requests,
    }
    out = BillingModeEstimate(
        service=service,
        current=shape.mode,
        recommended=None,
        outcome="unknown",
        reason="",
        shape=shape,
        usage=usage,
        rates={k: float(f"{v:.6g}") for k, v in rates.items()},
    )
    missing = [
        what
        for what, value in (("instance time", usage.instance_seconds), ("busy time", usage.busy_seconds))
        if value is None
    ]
    if missing:
        why = f" ({'; '.join(usage.notes)})" if usage.notes else ""
        out.reason = f"utilization unknown: no {' and no '.join(missing)}{why}; " + _needed(shape.mode)
        return out
    if usage.period_seconds < settings.min_hours * 3600:
        out.reason = (
            f"{usage.period_seconds / 3600:.1f} h of usage, fewer than the {settings.min_hours:g} h "
            "needed (billing_mode.min_hours)"
        )
        return out
    instance = float(usage.instance_seconds or 0.0)
    busy = float(usage.busy_seconds or 0.0)
    if instance <= 0:
        out.reason = "no instance ran during the period: neither mode bills anything"
        return out
    requests = usage.requests
    if requests is None:
        requests = 0.0
        out.notes.append(
            "no request_count: the request-based estimate leaves out the per-request fee "
            f"({prices.per_million_requests:g} per million requests)"
        )
    period = usage.period_seconds
    out.utilization = busy / instance
    out.request_cost = request_based_cost(busy, instance, requests, period, shape.min_instances, rates)
    out.instance_cost = instance * rates["instance"]
    out.break_even = break_even_utilization(instance, requests, period, shape.min_instances, rates)

    current_cost = out.request_cost if shape.mode == "request" else out.instance_cost
    other: Mode = "instance" if shape.mode == "request" else "request"
    other_cost = out.instance_cost if other == "instance" else out.request_cost
    saving = current_cost - other_cost
    out.monthly_savings = max(0.0, out.monthly(saving) or 0.0)
    out.outcome = "keep"
    if saving <= 0:
        out.reason = f"{_label(shape.mode)} billing is already the cheaper mode"
        out.monthly_savings = 0.0
        return out
    share = saving / current_cost if current_cost > 0 else math.inf
    if share <= settings.margin:
        out.reason = (
            f"{_label(other)} billing would save {share:.1%}, within the {settings.margin:.0%} margin "
            "(billing_mode.margin)"
        )
        return out
    if out.monthly_savings < settings.min_monthly_savings:
        out.reason = (
            f"{_label(other)} billing would save {out.monthly_savings:,.2f}/month, under "
            f"billing_mode.min_monthly_savings ({settings.min_monthly_savings:g})"
        )
        return out
    if other == "instance" and shape.vcpu < 1:
        out.reason = f"instance-based billing needs at least 1 vCPU (the service has {shape.vcpu:g})"
        return out
    out.outcome, out.recommended = "switch", other
    out.reason = f"{_label(other)} billing costs {share:.0%} less at this utilization"
    if other == "instance" and shape.min_instances == 0:
        out.notes.append(
            "instance-based billing with min instances 0 still scales to zero: instances are billed "
            "from start to shutdown, and cold starts stay as they are"
        )
    return out


def _needed(mode: Mode) -> str:
    if mode == "request":
        return (
            "give instance_count and billable_instance_time (or active_instances) for the service "
            "(--metric SERVICE.instance_count=CSV ...)"
        )
    return (
        "give active_instances (container/instance_count with state=active) and instance_count or "
        "billable_instance_time for the service (--metric SERVICE.active_instances=CSV ...)"
    )
