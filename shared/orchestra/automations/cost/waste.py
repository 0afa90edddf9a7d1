"""Cloud Run waste: idle minimum instances and over-provisioned services, priced per month.

Service settings (vCPU, memory, min instances, billing mode) come from the service's target when
it has one — its manifest or the Admin API, read the way apply will edit it (:func:`read_targets`)
— and from configuration otherwise; a configuration that disagrees with the target is a finding
(:func:`disagreements`). Traffic and utilization come from metric series (``orchestra.metrics``
files: request counts per sample, utilizations in percent).

Rightsizing follows the Kubernetes VPA reference: the P90 of CPU usage plus a safety margin,
sized so that the autoscaler's CPU target (60 % by default) is not exceeded at that load, and
memory from the highest peak plus the margin, never so small that the peak would cross the
memory alert threshold (the performance automation would size it back up). Sizes are chosen
inside Cloud Run's rules (:mod:`orchestra.actuators.rules`: a fractional vCPU where the service's
concurrency, billing and environment allow it), and every recommendation passes the one usage
check, :func:`orchestra.actuators.rules.below_usage` (never below P90 CPU or peak memory plus
headroom).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ...actuators import rules
from ...actuators.base import ServiceConfig
from ...actuators.rules import ObservedUsage, ServiceFacts
from ...models import Risk

if TYPE_CHECKING:
    from orchestra.automation import RunContext
    from orchestra.metrics.base import MetricSeries

    from . import CloudRunPrices, RunService, WasteSettings

SECONDS_PER_MONTH = 730 * 3600  # the 730-hour month of Google Cloud's pricing calculator


@dataclass(frozen=True)
class TargetState:
    """A service's configuration as its target (manifest or Admin API) holds it."""

    config: ServiceConfig
    facts: ServiceFacts
    origin: str


def read_targets(
    ctx: RunContext, services: list[RunService], run_client: Any
) -> tuple[dict[str, TargetState], list[str]]:
    """The current configuration of every service that has a target (what apply will edit), and
    notes for targets that could not be read now (those are judged on the settings, and their
    actions carry the settings' values so that prepare refuses a service that differs)."""
    from ...actuators.base import actuator_from_target
    from ...errors import InputError, OrchestraError
    from ...toolkit.dependencies import guarded

    out: dict[str, TargetState] = {}
    notes: list[str] = []
    for service in services:
        target = service.target()
        if target is None:
            continue
        actuator = actuator_from_target(target, run_client=run_client)
        try:
            found = guarded(ctx, target["type"], actuator.service_name)
            if found not in (None, service.name):
                raise InputError(
                    f"target is service {found!r}, not {service.name!r}",
                    where=f"automations.cost.settings.services[{service.name}]",
                )
            config = guarded(ctx, target["type"], actuator.read)
            facts = guarded(ctx, target["type"], actuator.read_facts)
        except InputError:
            raise
        except OrchestraError as exc:
            notes.append(f"{service.name}: {actuator.describe()} not read ({exc}); judged on the settings")
            continue
        out[service.name] = TargetState(config, facts, f"read from {actuator.describe()}")
    return out, notes


def disagreements(service: RunService, state: TargetState) -> dict[str, dict[str, Any]]:
    """Settings in configuration that the target does not have: {field: {configured, actual}}."""
    config = state.config
    actual = {
        "vcpu": config.cpu,
        "memory_gib": config.memory_mib / 1024,
        "min_instances": config.min_instances,
        "billing": "request" if config.cpu_idle else "instance",
    }
    configured = {
        "vcpu": service.vcpu,
        "memory_gib": service.memory_gib,
        "min_instances": service.min_instances,
        "billing": service.billing,
    }
    return {
        k: {"configured": configured[k], "actual": actual[k]}
        for k in actual
        if (
            abs(configured[k] - actual[k]) > 1e-9
            if isinstance(actual[k], float)
            else configured[k] != actual[k]
        )
    }


def as_targeted(service: RunService, state: TargetState | None) -> RunService:
    """``service`` with the target's vCPU, memory, min instances and billing mode: the truth."""
    if state is None:
        return service
    config = state.config
    return service.model_copy(
        update={
            "vcpu": config.cpu,
            "memory_gib": config.memory_mib / 1024,
            "min_instances": config.min_instances,
            "billing": "request" if config.cpu_idle else "instance",
        }
    )


def config_of(service: RunService) -> ServiceConfig:
    """A configuration for a service known only from settings (fractional vCPU already implies
    concurrency 1; nothing else is assumed)."""
    return ServiceConfig(
        cpu=service.vcpu,
        memory_mib=int(round(service.memory_gib * 1024)),
        concurrency=1 if service.vcpu < 1 else 80,
        min_instances=service.min_instances,
        max_instances=max(1, service.min_instances, 100),
        cpu_idle=service.billing == "request",
    )


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
    state: TargetState | None = None,
) -> tuple[float, float, dict[str, Any]] | None:
    """Recommended (vcpu, memory_gib) or None when there is not enough data or no valid size is
    smaller.

    ``memory_limit_percent`` is the memory utilization the peak may reach at the new size."""
    if cpu is None or len(cpu) < settings.min_samples:
        return None
    config = state.config if state is not None else config_of(service)
    facts = state.facts if state is not None else ServiceFacts()
    used_cores = float(np.percentile(cpu.values, settings.cpu_percentile)) / 100.0 * service.vcpu
    need_cores = used_cores * (1 + settings.headroom) / settings.cpu_target_utilization
    evidence: dict[str, Any] = {
        f"cpu_p{settings.cpu_percentile:g}_percent": round(
            float(np.percentile(cpu.values, settings.cpu_percentile)), 2
        ),
        "cpu_used_cores": round(used_cores, 3),
        "cpu_samples": len(cpu),
    }
    need_mib = service.memory_gib * 1024
    peak_mib: float | None = None
    if memory is not None and len(memory) >= settings.min_samples:
        peak = float(memory.values.max()) / 100.0 * service.memory_gib
        need = max(peak * (1 + settings.headroom), peak * 100.0 / memory_limit_percent)
        need_mib = need * 1024
        peak_mib = peak * 1024
        evidence["memory_peak_gib"] = round(peak, 3)
        evidence["memory_limit_percent"] = memory_limit_percent
        evidence["memory_samples"] = len(memory)
    # Memory in 512 MiB steps (128 / 256 MiB below that where the environment allows).
    step = 512 if need_mib > 256 else 128
    sized = rules.size_for(need_cores, need_mib, config, facts, memory_step_mib=step)
    if sized is None:
        return None
    vcpu, mem_mib = sized
    # Never recommend growth here: that is the performance automation's call, not a saving.
    if vcpu > config.cpu:
        vcpu = config.cpu
        mem_mib = max(mem_mib, rules.memory_min_mib(vcpu, facts))
    mem_mib = min(mem_mib, config.memory_mib)
    proposed = config.model_copy(update={"cpu": vcpu, "memory_mib": mem_mib})
    if rules.new_violations(config, proposed, facts):
        return None
    usage = ObservedUsage(cpu_p90_cores=used_cores, memory_peak_mib=peak_mib, headroom=settings.headroom)
    if rules.below_usage(config, proposed, usage):
        return None
    return vcpu, mem_mib / 1024, evidence


def over_provisioned(
    service: RunService,
    cpu: MetricSeries | None,
    memory: MetricSeries | None,
    prices: CloudRunPrices,
    settings: WasteSettings,
    *,
    memory_limit_percent: float = 100.0,
    state: TargetState | None = None,
) -> WasteItem | None:
    sized = rightsize(service, cpu, memory, settings, memory_limit_percent=memory_limit_percent, state=state)
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
