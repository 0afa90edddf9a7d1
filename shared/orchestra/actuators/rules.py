"""Cloud Run's rules for a service's configuration: one table, each rule with its source.

Every configuration Orchestra writes or recommends — performance, infrastructure, cost — is
checked against :data:`RULES` (:func:`violations`) before it is written or shown, and sizes are
chosen inside them (:func:`fit`, :func:`size_for`, :func:`scale_cap`). The figures were checked
against the pages named beside each rule; where a figure is a quota that a project can change
(Direct VPC egress instances, the regional CPU and memory quota) it is a setting
(:class:`CloudRunLimits`, ``settings.cloud_run_limits`` of the automations).

What a rule needs besides the settings Orchestra changes (:class:`~.base.ServiceConfig`) is the
service's :class:`ServiceFacts`: its execution environment, whether it uses Direct VPC egress, and
the service-level (not revision-level) scaling bounds.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from .base import ServiceConfig

CPU_DOC = "https://cloud.google.com/run/docs/configuring/services/cpu"
MEMORY_DOC = "https://cloud.google.com/run/docs/configuring/services/memory-limits"
CONCURRENCY_DOC = "https://cloud.google.com/run/docs/configuring/concurrency"
MIN_INSTANCES_DOC = "https://cloud.google.com/run/docs/configuring/min-instances"
MAX_INSTANCES_DOC = "https://cloud.google.com/run/docs/configuring/max-instances"
DIRECT_VPC_DOC = "https://cloud.google.com/run/docs/configuring/vpc-direct-vpc"
QUOTAS_DOC = "https://cloud.google.com/run/quotas"
BILLING_DOC = "https://cloud.google.com/run/docs/configuring/billing-settings"
YAML_DOC = "https://cloud.google.com/run/docs/reference/yaml/v1"

# vCPU above 1 is one of these integers; below 1 any value from 0.08 in steps of 0.001.
CPU_STEPS: tuple[int, ...] = (1, 2, 4, 6, 8)
CPU_MIN = 0.08
CPU_INCREMENT = 0.001
# Memory allowed with each vCPU value (MiB): at most, and at least.
MEMORY_CAP_MIB: dict[int, int] = {1: 4096, 2: 8192, 4: 16384, 6: 24576, 8: 32768}
MEMORY_FLOOR_MIB: dict[int, int] = {1: 128, 2: 128, 4: 2048, 6: 4096, 8: 4096}
# Below 1 vCPU: more than 512 MiB needs at least 0.5 vCPU, more than 1 GiB at least 1 vCPU.
FRACTIONAL_MEMORY_CAP_MIB: tuple[tuple[float, int], ...] = ((0.5, 1024), (CPU_MIN, 512))
MEMORY_MAX_MIB = 32768
# The smallest memory per execution environment (unset: Cloud Run chooses, first generation
# minimums apply).
MEMORY_MIN_MIB: dict[str, int] = {"gen1": 128, "gen2": 512, "unset": 128}
CONCURRENCY_MAX = 1000
# Sizes recommendations choose memory from (MiB); 128 and 256 only where the environment allows.
MEMORY_STEPS_MIB: tuple[int, ...] = (
    128,
    256,
    512,
    1024,
    2048,
    4096,
    8192,
    12288,
    16384,
    24576,
    32768,
)

# YAML placement (serving.knative.dev/v1): revision settings on spec.template.metadata.annotations,
# service-level scaling on metadata.annotations; annotation values are strings.
REVISION_MIN_SCALE = "autoscaling.knative.dev/minScale"
REVISION_MAX_SCALE = "autoscaling.knative.dev/maxScale"
SERVICE_MIN_SCALE = "run.googleapis.com/minScale"
SERVICE_MAX_SCALE = "run.googleapis.com/maxScale"
EXECUTION_ENVIRONMENT = "run.googleapis.com/execution-environment"
NETWORK_INTERFACES = "run.googleapis.com/network-interfaces"
CPU_THROTTLING = "run.googleapis.com/cpu-throttling"
STARTUP_CPU_BOOST = "run.googleapis.com/startup-cpu-boost"
REVISION_ANNOTATIONS = (
    REVISION_MIN_SCALE,
    REVISION_MAX_SCALE,
    EXECUTION_ENVIRONMENT,
    NETWORK_INTERFACES,
    CPU_THROTTLING,
    STARTUP_CPU_BOOST,
)
SERVICE_ANNOTATIONS = (SERVICE_MIN_SCALE, SERVICE_MAX_SCALE)


class CloudRunLimits(BaseModel):
    """Limits that depend on the project: quotas, with Cloud Run's defaults."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    direct_vpc_max_instances: int = Field(
        100,
        ge=1,
        le=100_000,
        description="max instances of a revision that uses Direct VPC egress (a per-revision quota; "
        f"{DIRECT_VPC_DOC})",
    )
    regional_vcpu_quota: float = Field(
        1000,
        gt=0,
        le=1e7,
        description=f"the region's CPU quota: max instances x vCPU never goes above it ({QUOTAS_DOC})",
    )
    regional_memory_gib_quota: float = Field(
        2000,
        gt=0,
        le=1e8,
        description="the region's memory quota: max instances x memory (GiB) never goes above it",
    )


class ServiceFacts(BaseModel):
    """What the rules need to know of a service besides the settings Orchestra changes."""

    model_config = ConfigDict(extra="forbid")

    execution_environment: Literal["gen1", "gen2"] | None = Field(
        None, description="the revision's execution environment; None: not set (Cloud Run chooses)"
    )
    direct_vpc: bool = Field(False, description="the revision sends traffic through Direct VPC egress")
    service_min_instances: int | None = Field(None, description="service-level minimum instances")
    service_max_instances: int | None = Field(None, description="service-level maximum instances")


@dataclass(frozen=True)
class Rule:
    id: str
    text: str
    source: str
    check: Callable[[ServiceConfig, ServiceFacts, CloudRunLimits], list[str]] | None
    # None: the rule is about the document (placement, value types), kept by the YAML writer.


def _mem(mib: float) -> str:
    mib = int(mib)
    return f"{mib // 1024}Gi" if mib % 1024 == 0 else f"{mib}Mi"


def _cpu(cpu: float) -> str:
    return str(int(cpu)) if float(cpu).is_integer() else f"{int(round(cpu * 1000))}m"


def is_fractional(cpu: float) -> bool:
    return cpu < 1


def memory_cap_mib(cpu: float) -> int:
    """The most memory Cloud Run accepts with ``cpu`` (valid ``cpu`` values)."""
    if cpu < 1:
        return next((cap for at_least, cap in FRACTIONAL_MEMORY_CAP_MIB if cpu >= at_least), 512)
    return MEMORY_CAP_MIB.get(int(cpu), MEMORY_MAX_MIB)


def memory_min_mib(cpu: float, facts: ServiceFacts) -> int:
    """The least memory Cloud Run accepts with ``cpu`` in this execution environment."""
    env = MEMORY_MIN_MIB[facts.execution_environment or "unset"]
    table = MEMORY_FLOOR_MIB.get(int(cpu), 128) if cpu >= 1 else 128
    return max(env, table)


def fractional_allowed(config: ServiceConfig, facts: ServiceFacts) -> bool:
    """Less than 1 vCPU is possible with these other settings: concurrency 1, request-based
    billing, not the second-generation environment."""
    return config.concurrency == 1 and config.cpu_idle and facts.execution_environment != "gen2"


def _cpu_value(c: ServiceConfig, f: ServiceFacts, lim: CloudRunLimits) -> list[str]:
    cpu = c.cpu
    if not math.isfinite(cpu) or cpu < CPU_MIN or cpu > CPU_STEPS[-1]:
        return [f"cpu {cpu:g} outside {CPU_MIN:g}..{CPU_STEPS[-1]} vCPU"]
    if cpu >= 1 and cpu not in CPU_STEPS:
        return [f"cpu {cpu:g} is not one of {', '.join(map(str, CPU_STEPS))} vCPU (above 1 only these)"]
    if cpu < 1 and abs(cpu * 1000 - round(cpu * 1000)) > 1e-6:
        return [f"cpu {cpu:g} is not a multiple of {CPU_INCREMENT:g} vCPU"]
    return []


def _fractional(c: ServiceConfig, f: ServiceFacts, lim: CloudRunLimits) -> list[str]:
    if not c.cpu < 1:
        return []
    out = []
    if c.concurrency != 1:
        out.append(f"cpu {_cpu(c.cpu)} (below 1 vCPU) needs concurrency 1, not {c.concurrency}")
    if not c.cpu_idle:
        out.append(f"cpu {_cpu(c.cpu)} (below 1 vCPU) needs request-based billing, not instance-based")
    if f.execution_environment == "gen2":
        out.append(f"cpu {_cpu(c.cpu)} (below 1 vCPU) needs the first-generation execution environment")
    return out


def _memory_for_cpu(c: ServiceConfig, f: ServiceFacts, lim: CloudRunLimits) -> list[str]:
    if _cpu_value(c, f, lim):
        return []
    cap = memory_cap_mib(c.cpu)
    out = []
    if c.memory_mib > cap:
        out.append(f"memory {_mem(c.memory_mib)} exceeds the {_cpu(c.cpu)} vCPU cap of {_mem(cap)}")
    floor = MEMORY_FLOOR_MIB.get(int(c.cpu), 128) if c.cpu >= 1 else 128
    if c.memory_mib < floor:
        out.append(f"memory {_mem(c.memory_mib)} is below the {_cpu(c.cpu)} vCPU minimum of {_mem(floor)}")
    return out


def _memory_range(c: ServiceConfig, f: ServiceFacts, lim: CloudRunLimits) -> list[str]:
    env = f.execution_environment or "unset"
    low = MEMORY_MIN_MIB[env]
    if c.memory_mib < low:
        label = {"gen1": "first generation", "gen2": "second generation", "unset": "any environment"}[env]
        return [f"memory {_mem(c.memory_mib)} is below the {_mem(low)} minimum of the {label}"]
    if c.memory_mib > MEMORY_MAX_MIB:
        return [f"memory {_mem(c.memory_mib)} exceeds the {_mem(MEMORY_MAX_MIB)} maximum"]
    return []


def _concurrency(c: ServiceConfig, f: ServiceFacts, lim: CloudRunLimits) -> list[str]:
    if not 1 <= c.concurrency <= CONCURRENCY_MAX:
        return [f"concurrency {c.concurrency} outside 1..{CONCURRENCY_MAX}"]
    return []


def _scale(c: ServiceConfig, f: ServiceFacts, lim: CloudRunLimits) -> list[str]:
    out = []
    if c.min_instances < 0:
        out.append(f"min instances {c.min_instances} is negative")
    if c.max_instances < 1:
        out.append(f"max instances {c.max_instances} must be at least 1")
    if c.min_instances > c.max_instances:
        out.append(f"min instances {c.min_instances} exceeds max instances {c.max_instances}")
    return out


def _service_bounds(c: ServiceConfig, f: ServiceFacts, lim: CloudRunLimits) -> list[str]:
    top = f.service_max_instances
    if top is None:
        return []
    out = []
    if c.min_instances > top:
        out.append(
            f"min instances {c.min_instances} exceeds the service-level maximum {top} ({SERVICE_MAX_SCALE})"
        )
    if c.max_instances > top:
        out.append(
            f"max instances {c.max_instances} is above the service-level maximum {top} ({SERVICE_MAX_SCALE}), "
            "which bounds it"
        )
    return out


def _direct_vpc(c: ServiceConfig, f: ServiceFacts, lim: CloudRunLimits) -> list[str]:
    cap = lim.direct_vpc_max_instances
    if f.direct_vpc and c.max_instances > cap:
        return [f"max instances {c.max_instances} exceeds {cap}, the cap with Direct VPC egress"]
    return []


def _quota(c: ServiceConfig, f: ServiceFacts, lim: CloudRunLimits) -> list[str]:
    out = []
    vcpu = c.max_instances * c.cpu
    if vcpu > lim.regional_vcpu_quota + 1e-9:
        out.append(
            f"max instances {c.max_instances} x {_cpu(c.cpu)} vCPU = {vcpu:g} vCPU exceeds the regional "
            f"quota of {lim.regional_vcpu_quota:g} vCPU"
        )
    gib = c.max_instances * c.memory_mib / 1024
    if gib > lim.regional_memory_gib_quota + 1e-9:
        out.append(
            f"max instances {c.max_instances} x {_mem(c.memory_mib)} = {gib:g} GiB exceeds the regional "
            f"quota of {lim.regional_memory_gib_quota:g} GiB"
        )
    return out


def _billing(c: ServiceConfig, f: ServiceFacts, lim: CloudRunLimits) -> list[str]:
    if not c.cpu_idle and c.cpu < 1:
        return [f"instance-based billing needs at least 1 vCPU, not {c.cpu:g}"]
    return []


RULES: tuple[Rule, ...] = (
    Rule(
        "cpu-values",
        "vCPU 0.08..1 in steps of 0.001, above 1 only 1, 2, 4, 6 or 8",
        CPU_DOC,
        _cpu_value,
    ),
    Rule(
        "fractional-cpu",
        "below 1 vCPU: max concurrency 1, request-based billing, first-generation environment",
        CPU_DOC,
        _fractional,
    ),
    Rule(
        "memory-per-cpu",
        "memory per vCPU: below 0.5 vCPU at most 512 MiB, below 1 vCPU at most 1 GiB; 1 vCPU up to "
        "4 GiB, 2 up to 8 GiB, 4: 2..16 GiB, 6: 4..24 GiB, 8: 4..32 GiB",
        CPU_DOC,
        _memory_for_cpu,
    ),
    Rule(
        "memory-per-environment",
        "memory at least 128 MiB (first generation) or 512 MiB (second generation), at most 32 GiB",
        MEMORY_DOC,
        _memory_range,
    ),
    Rule("concurrency", "max concurrent requests per instance 1..1000", CONCURRENCY_DOC, _concurrency),
    Rule(
        "scale-bounds",
        "min instances >= 0, max instances >= 1, min <= max",
        MIN_INSTANCES_DOC,
        _scale,
    ),
    Rule(
        "service-level-scaling",
        f"a service-level maximum ({SERVICE_MAX_SCALE} on the Service's metadata) bounds the revision: "
        "its min and max instances stay at or below it",
        MAX_INSTANCES_DOC,
        _service_bounds,
    ),
    Rule(
        "direct-vpc-max-instances",
        "with Direct VPC egress (run.googleapis.com/network-interfaces on the revision template) max "
        "instances at most the Direct VPC quota (100 by default; settings.cloud_run_limits)",
        DIRECT_VPC_DOC,
        _direct_vpc,
    ),
    Rule(
        "regional-quota",
        "max instances x vCPU and x memory within the region's CPU and memory quota "
        "(settings.cloud_run_limits)",
        QUOTAS_DOC,
        _quota,
    ),
    Rule(
        "billing-mode",
        f"instance-based billing ({CPU_THROTTLING}: 'false') needs at least 1 vCPU",
        BILLING_DOC,
        _billing,
    ),
    Rule(
        "annotation-placement",
        "revision settings (autoscaling.knative.dev/minScale, maxScale, cpu-throttling, "
        "startup-cpu-boost, execution-environment, network-interfaces) go on "
        "spec.template.metadata.annotations; service-level run.googleapis.com/minScale, maxScale on "
        "metadata.annotations",
        YAML_DOC,
        None,
    ),
    Rule(
        "annotation-strings",
        "annotation values are strings: '3', 'false' (quoted in YAML), never 3 or false",
        YAML_DOC,
        None,
    ),
)


def violations(
    config: ServiceConfig, facts: ServiceFacts | None = None, limits: CloudRunLimits | None = None
) -> list[str]:
    """Why Cloud Run would refuse (or silently bound) ``config``; empty when it passes every rule.

    ``limits`` are the project's quotas; without them the regional quota (which depends on the
    project) is not checked, Cloud Run's fixed rules and default caps are."""
    facts = facts or ServiceFacts()
    check_quota = limits is not None
    limits = limits or CloudRunLimits()
    out: list[str] = []
    for rule in RULES:
        if rule.check is _quota and not check_quota:
            continue
        if rule.check is not None:
            out.extend(
                f"{message} [{rule.id}: {rule.source}]" for message in rule.check(config, facts, limits)
            )
    return out


def new_violations(
    current: ServiceConfig,
    proposed: ServiceConfig,
    facts: ServiceFacts | None = None,
    limits: CloudRunLimits | None = None,
) -> list[str]:
    """Violations ``proposed`` has that ``current`` does not: what a change would introduce."""
    before = set(violations(current, facts, limits))
    return [v for v in violations(proposed, facts, limits) if v not in before]


def table_markdown() -> str:
    """The rules as a Markdown table (the README's copy is this text)."""
    rows = ["| rule | what Cloud Run requires | source |", "|---|---|---|"]
    rows.extend(f"| `{r.id}` | {r.text} | {r.source} |" for r in RULES)
    return "\n".join(rows)


# ----- sizes inside the rules -----


def round_cpu_up(cpu: float, *, fractional: bool) -> float:
    """The smallest valid vCPU value at or above ``cpu`` (fractional values only if allowed)."""
    if fractional and cpu < 1:
        return max(CPU_MIN, math.ceil(cpu * 1000 - 1e-6) / 1000)
    return float(next((s for s in CPU_STEPS if s >= cpu - 1e-9), CPU_STEPS[-1]))


def min_cpu_for_memory(memory_mib: int, *, fractional: bool) -> float | None:
    """The least vCPU that accepts ``memory_mib``; None above the largest size."""
    if fractional:
        if memory_mib <= 512:
            return CPU_MIN
        if memory_mib <= 1024:
            return 0.5
    return next((float(s) for s in CPU_STEPS if memory_mib <= MEMORY_CAP_MIB[s]), None)


def size_for(
    need_cpu: float,
    need_memory_mib: float,
    config: ServiceConfig,
    facts: ServiceFacts,
    *,
    memory_step_mib: int | None = None,
) -> tuple[float, int] | None:
    """The smallest (vCPU, MiB) inside the rules with at least ``need_cpu`` and ``need_memory_mib``,
    given the service's other settings (a fractional vCPU only where they allow it); None when
    nothing is large enough. Memory is one of :data:`MEMORY_STEPS_MIB`, or a multiple of
    ``memory_step_mib`` when given."""
    fractional = fractional_allowed(config, facts)
    if need_cpu > CPU_STEPS[-1] + 1e-9 or need_memory_mib > MEMORY_MAX_MIB:
        return None
    cpu = round_cpu_up(max(need_cpu, CPU_MIN), fractional=fractional)
    if memory_step_mib:
        memory = max(128, int(math.ceil(need_memory_mib / memory_step_mib - 1e-9)) * memory_step_mib)
    else:
        memory = next(m for m in MEMORY_STEPS_MIB if m >= need_memory_mib - 1e-9)
    memory = max(memory, memory_min_mib(cpu, facts))
    needed = min_cpu_for_memory(memory, fractional=fractional)
    if needed is None:
        return None
    cpu = max(cpu, needed)
    memory = max(memory, memory_min_mib(cpu, facts))
    return cpu, memory


def scale_cap(config: ServiceConfig, facts: ServiceFacts, limits: CloudRunLimits, *, ceiling: int) -> int:
    """The most max instances the rules allow at this size: ``ceiling`` (a setting), the Direct VPC
    cap, the service-level maximum and the regional quota, whichever is lowest (at least 1)."""
    caps = [ceiling]
    if facts.direct_vpc:
        caps.append(limits.direct_vpc_max_instances)
    if facts.service_max_instances is not None:
        caps.append(facts.service_max_instances)
    caps.append(int(math.floor(limits.regional_vcpu_quota / config.cpu + 1e-9)))
    caps.append(int(math.floor(limits.regional_memory_gib_quota * 1024 / config.memory_mib + 1e-9)))
    return max(1, min(caps))


def scale_cap_reason(
    config: ServiceConfig, facts: ServiceFacts, limits: CloudRunLimits, *, ceiling: int
) -> str:
    """Which limit :func:`scale_cap` is, in words."""
    cap = scale_cap(config, facts, limits, ceiling=ceiling)
    if facts.direct_vpc and cap == limits.direct_vpc_max_instances:
        return f"{cap}: the Direct VPC egress cap ({DIRECT_VPC_DOC})"
    if facts.service_max_instances is not None and cap == facts.service_max_instances:
        return f"{cap}: the service-level maximum ({SERVICE_MAX_SCALE})"
    if cap == ceiling:
        return f"{cap}: settings max_instances_cap"
    return f"{cap}: the regional CPU/memory quota at this size (settings.cloud_run_limits)"


def fit(
    target: ServiceConfig,
    current: ServiceConfig,
    facts: ServiceFacts,
    limits: CloudRunLimits,
    *,
    max_instances_ceiling: int = 100_000,
) -> ServiceConfig:
    """The nearest configuration inside the rules that never has less capacity than ``target``
    asks for: vCPU rounded up (staying fractional where the service's settings allow), memory and
    vCPU raised to pair, concurrency clamped; max instances bounded by the caps (and min with it:
    a service above a cap is brought under it).
    Whether fractional vCPU is allowed is judged on ``current``'s concurrency, billing and
    environment, so that a resources change never depends on a concurrency change."""
    fractional = fractional_allowed(current, facts) and target.concurrency == 1 and target.cpu_idle
    memory = int(
        min(max(target.memory_mib, MEMORY_MIN_MIB[facts.execution_environment or "unset"]), MEMORY_MAX_MIB)
    )
    cpu = round_cpu_up(min(target.cpu, CPU_STEPS[-1]), fractional=fractional)
    cpu = max(cpu, min_cpu_for_memory(memory, fractional=fractional) or CPU_STEPS[-1])
    memory = max(memory, memory_min_mib(cpu, facts))
    concurrency = min(CONCURRENCY_MAX, max(1, target.concurrency))
    if cpu < 1 and (concurrency != 1 or not target.cpu_idle):
        cpu = 1.0
        memory = max(memory, memory_min_mib(cpu, facts))
    sized = target.model_copy(update={"cpu": cpu, "memory_mib": memory, "concurrency": concurrency})
    cap = scale_cap(sized, facts, limits, ceiling=max(max_instances_ceiling, 1))
    max_instances = min(max(1, target.max_instances, target.min_instances), cap)
    min_instances = min(max(0, target.min_instances), max_instances)
    return sized.model_copy(update={"min_instances": min_instances, "max_instances": max_instances})


# ----- the usage floor: no recommendation below what the service was seen to use -----


class ObservedUsage(BaseModel):
    """What a service was seen to use, in absolute units, and the headroom kept above it."""

    model_config = ConfigDict(extra="forbid")

    cpu_p90_cores: float | None = Field(None, ge=0, description="P90 of CPU usage, in vCPU")
    memory_peak_mib: float | None = Field(None, ge=0, description="highest memory usage, MiB")
    headroom: float = Field(0.15, ge=0, le=10, description="kept above both (0.15 = 15 %)")
    origin: str = ""

    @property
    def cpu_floor(self) -> float | None:
        return None if self.cpu_p90_cores is None else self.cpu_p90_cores * (1 + self.headroom)

    @property
    def memory_floor_mib(self) -> float | None:
        return None if self.memory_peak_mib is None else self.memory_peak_mib * (1 + self.headroom)


def below_usage(current: ServiceConfig, proposed: ServiceConfig, usage: ObservedUsage | None) -> list[str]:
    """The one check every recommendation goes through: a vCPU or memory value it changes must
    not be below the observed P90 CPU / peak memory plus headroom. Empty when it is not."""
    if usage is None:
        return []
    out = []
    cpu_floor, memory_floor = usage.cpu_floor, usage.memory_floor_mib
    if cpu_floor is not None and proposed.cpu != current.cpu and proposed.cpu < cpu_floor - 1e-9:
        out.append(
            f"cpu {_cpu(proposed.cpu)} is below the observed P90 {usage.cpu_p90_cores:.3f} vCPU + "
            f"{usage.headroom:.0%} headroom ({cpu_floor:.3f} vCPU)"
        )
    if (
        memory_floor is not None
        and proposed.memory_mib != current.memory_mib
        and proposed.memory_mib < memory_floor - 1e-9
    ):
        out.append(
            f"memory {_mem(proposed.memory_mib)} is below the observed peak {usage.memory_peak_mib:.0f}Mi + "
            f"{usage.headroom:.0%} headroom ({memory_floor:.0f}Mi)"
        )
    return out


__all__ = [
    "RULES",
    "CloudRunLimits",
    "ObservedUsage",
    "Rule",
    "ServiceFacts",
    "below_usage",
    "fit",
    "fractional_allowed",
    "memory_cap_mib",
    "memory_min_mib",
    "min_cpu_for_memory",
    "new_violations",
    "round_cpu_up",
    "scale_cap",
    "size_for",
    "table_markdown",
    "violations",
]
