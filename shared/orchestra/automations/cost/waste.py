"""Cloud Run waste: idle minimum instances and over-provisioned services, priced per month.

Service settings (vCPU, memory, min instances, billing mode) come from configuration; traffic
and utilization from metric series (``orchestra.metrics`` files: request counts per sample,
utilizations in percent).

Rightsizing follows the Kubernetes VPA reference: the P90 of CPU usage plus a safety margin,
sized so that the autoscaler's CPU target (60 % by default) is not exceeded at that load, and
memory from the highest peak plus the margin, never so small that the peak would cross the
memory alert threshold (the performance automation would size it back up). Sizes snap to what
Cloud Run accepts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ...actuators.base import MEMORY_CAP_MIB, MEMORY_FLOOR_MIB, VCPU_STEPS
from ...models import Risk

if TYPE_CHECKING:
    from orchestra.metrics.base import MetricSeries

    from . import CloudRunPrices, RunService, WasteSettings

SECONDS_PER_MONTH = 730 * 3600  # the 730-hour month of Google Cloud's pricing calculator

# vCPU -> (min GiB, max GiB) that Cloud Run accepts with it
VCPU_MEMORY = {float(c): (MEMORY_FLOOR_MIB[c] / 1024, MEMORY_CAP_MIB[c] / 1024) for c in VCPU_STEPS}


@dataclass
class WasteItem:
    kind: str  # idle-min-instances | over-provisioned
    service: str
    project: str | None
    monthly_savings: float
    risk: Risk
    summary: str
    current: dict[str, Any]
    recommended: dict[str, Any]
    evidence: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "service": self.service,
            "project": self.project,
            "monthly_savings": round(self.monthly_savings, 2),
            "risk": str(self.risk),
            "summary": self.summary,
            "current": self.current,
            "recommended": self.recommended,
            **self.evidence,
        }


def instance_rates(service: RunService, prices: CloudRunPrices, *, idle: bool) -> tuple[float, float]:
    """(per vCPU-second, per GiB-second) for one instance of this service."""
    p = service.prices or prices
    if service.billing == "instance":
        return p.instance_vcpu_second, p.instance_gib_second
    if idle:
        return p.idle_vcpu_second, p.idle_gib_second
    return p.vcpu_second, p.gib_second


def idle_min_instances(
    service: RunService,
    requests: MetricSeries | None,
    prices: CloudRunPrices,
    settings: WasteSettings,
) -> WasteItem | None:
    if service.min_instances <= 0 or requests is None or len(requests) == 0:
        return None
    span_days = max(requests.span_seconds, requests.median_interval_seconds() or 0.0) / 86400
    if span_days < settings.min_traffic_days:
        return None
    total = float(requests.values.sum())
    per_day = total / span_days
    if per_day > settings.idle_requests_per_day:
        return None
    vcpu_rate, gib_rate = instance_rates(service, prices, idle=True)
    per_instance = service.vcpu * vcpu_rate + service.memory_gib * gib_rate
    savings = service.min_instances * per_instance * SECONDS_PER_MONTH
    return WasteItem(
        kind="idle-min-instances",
        service=service.name,
        project=service.project,
        monthly_savings=savings,
        # Scale-to-zero trades money for a cold start on the next request: not a free change.
        risk=Risk.medium,
        summary=(
            f"{service.name}: {service.min_instances} minimum instance(s) kept warm for "
            f"{per_day:.1f} requests/day; scale to zero to save {savings:,.2f}/month"
        ),
        current={"min_instances": service.min_instances},
        recommended={"min_instances": 0},
        evidence={
            "requests_per_day": round(per_day, 2),
            "requests_total": round(total, 1),
            "traffic_days": round(span_days, 2),
            "idle_threshold_requests_per_day": settings.idle_requests_per_day,
            "billing": service.billing,
            "rates": {"vcpu_second": vcpu_rate, "gib_second": gib_rate},
            "traffic_source": requests.origin,
        },
    )


def rightsize(
    service: RunService,
    cpu: MetricSeries | None,
    memory: MetricSeries | None,
    settings: WasteSettings,
    *,
    memory_limit_percent: float = 100.0,
) -> tuple[float, float, dict[str, Any]] | None:
    """Recommended (vcpu, memory_gib) or None when there is not enough data.

    ``memory_limit_percent`` is the memory utilization the peak may reach at the new size."""
    if cpu is None or len(cpu) < settings.min_samples:
        return None
    used_cores = float(np.percentile(cpu.values, settings.cpu_percentile)) / 100.0 * service.vcpu
    need_cores = used_cores * (1 + settings.headroom) / settings.cpu_target_utilization
    sizes = sorted(VCPU_MEMORY)
    vcpu = next((s for s in sizes if s >= need_cores), sizes[-1])
    evidence: dict[str, Any] = {
        f"cpu_p{settings.cpu_percentile:g}_percent": round(
            float(np.percentile(cpu.values, settings.cpu_percentile)), 2
        ),
        "cpu_used_cores": round(used_cores, 3),
        "cpu_samples": len(cpu),
    }
    mem = service.memory_gib
    if memory is not None and len(memory) >= settings.min_samples:
        peak = float(memory.values.max()) / 100.0 * service.memory_gib
        need = max(peak * (1 + settings.headroom), peak * 100.0 / memory_limit_percent)
        # 512 MiB steps; the tolerance keeps float noise (0.8 / 0.8 = 1.0000000000000002) from
        # costing a whole step.
        mem = max(0.5, math.ceil(need * 2 - 1e-9) / 2)
        evidence["memory_peak_gib"] = round(peak, 3)
        evidence["memory_limit_percent"] = memory_limit_percent
        evidence["memory_samples"] = len(memory)
    lo, hi = VCPU_MEMORY[vcpu]
    while mem > hi and vcpu < sizes[-1]:
        vcpu = sizes[sizes.index(vcpu) + 1]
        lo, hi = VCPU_MEMORY[vcpu]
    mem = min(max(mem, lo), hi)
    # Never recommend growth here: that is the performance automation's call, not a saving.
    return min(vcpu, service.vcpu), min(mem, service.memory_gib), evidence


def over_provisioned(
    service: RunService,
    cpu: MetricSeries | None,
    memory: MetricSeries | None,
    prices: CloudRunPrices,
    settings: WasteSettings,
    *,
    memory_limit_percent: float = 100.0,
) -> WasteItem | None:
    sized = rightsize(service, cpu, memory, settings, memory_limit_percent=memory_limit_percent)
    if sized is None:
        return None
    vcpu, mem, evidence = sized
    if vcpu >= service.vcpu and mem >= service.memory_gib:
        return None
    instances = service.average_instances
    assumed = instances is None
    if instances is None:
        instances = float(max(service.min_instances, 1))
    vcpu_rate, gib_rate = instance_rates(service, prices, idle=False)
    savings = ((service.vcpu - vcpu) * vcpu_rate + (service.memory_gib - mem) * gib_rate) * (
        instances * SECONDS_PER_MONTH
    )
    if savings < settings.min_monthly_savings:
        return None
    evidence.update(
        {
            "average_instances": instances,
            "average_instances_assumed": assumed,
            "method": (
                f"P{settings.cpu_percentile:g} CPU x (1 + {settings.headroom:g}) / "
                f"{settings.cpu_target_utilization:g} target utilization; memory = highest "
                f"peak x (1 + {settings.headroom:g}), the peak at most {memory_limit_percent:g} % of it"
            ),
            "billing": service.billing,
            "rates": {"vcpu_second": vcpu_rate, "gib_second": gib_rate},
            "metrics_source": cpu.origin if cpu is not None else None,
        }
    )
    return WasteItem(
        kind="over-provisioned",
        service=service.name,
        project=service.project,
        monthly_savings=savings,
        # Less CPU or memory on a serving path can throttle or OOM: a person should look.
        risk=Risk.high,
        summary=(
            f"{service.name}: {service.vcpu:g} vCPU / {service.memory_gib:g} GiB is more than the load "
            f"needs; {vcpu:g} vCPU / {mem:g} GiB saves {savings:,.2f}/month"
        ),
        current={"vcpu": service.vcpu, "memory_gib": service.memory_gib},
        recommended={"vcpu": vcpu, "memory_gib": mem},
        evidence=evidence,
    )
