"""From breach episodes to Cloud Run setting changes.

Each rule that breached yields recommendations with a risk, an expected effect and the evidence
behind them; rightsizing looks for long quiet stretches. ``plan`` merges all of them into one
target configuration, fits it inside Cloud Run's rules (:func:`orchestra.actuators.rules.fit`:
the service's facts — execution environment, Direct VPC egress, service-level bounds — and the
project's limits included), refuses any vCPU or memory below the observed usage plus headroom
(:func:`orchestra.actuators.rules.below_usage`), and splits it into independent groups
(resources, concurrency, scaling, startup boost) whose changes are each valid on their own, so
any subset the runner applies, in any order, leaves the service in a valid state (groups that are
not valid alone are merged into one).

A fractional vCPU (below 1) is a size like any other: a service that has one stays fractional
while the rules allow it, and a step up to whole vCPU says why it is needed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ...actuators import rules
from ...actuators.base import (
    MAX_MEMORY_MIB,
    MEMORY_STEPS_MIB,
    VCPU_STEPS,
    ServiceConfig,
    format_cpu,
    format_memory,
)
from ...actuators.rules import CloudRunLimits, ObservedUsage, ServiceFacts
from ...config import ThresholdRule
from ...metrics.base import MetricSeries, iso
from ...models import RISK_ORDER, Risk
from .episodes import Episodes
from .models import PerformanceSettings


class Recommendation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    cause: str = Field(description="the rule that breached, or rightsizing-cpu / rightsizing-memory")
    title: str
    changes: dict[str, Any] = Field(
        default_factory=dict, description="absolute target values; empty = advice"
    )
    risk: Risk
    expected_effect: str
    evidence: dict[str, Any] = Field(default_factory=dict)
    checks: list[dict[str, Any]] = Field(default_factory=list, description="how verification judges it")
    superseded: str | None = Field(None, description="why it is not part of the plan")

    @property
    def advice_only(self) -> bool:
        return not self.changes


@dataclass
class RuleResult:
    name: str
    rule: ThresholdRule
    series: MetricSeries
    episodes: Episodes

    def windows(self) -> list[tuple[int, int]]:
        return list(zip(self.episodes.start_ms.tolist(), self.episodes.end_ms.tolist(), strict=True))

    def worst_mean(self) -> float:
        return float(self.episodes.mean.max())

    def worst_peak(self) -> float:
        return float(self.episodes.peak.max())

    def total_minutes(self) -> float:
        return float(self.episodes.duration_s.sum()) / 60.0

    def summary(self) -> dict[str, Any]:
        return {
            "rule": self.name,
            "metric": self.rule.metric,
            "threshold": self.rule.above,
            "episodes": len(self.episodes),
            "breach_minutes": round(self.total_minutes(), 1),
            "worst_mean": round(self.worst_mean(), 3),
            "peak": round(self.worst_peak(), 3),
        }


@dataclass
class Inputs:
    service: str
    current: ServiceConfig
    results: dict[str, RuleResult]  # rule name -> result with at least one episode
    series: dict[str, MetricSeries]
    rules: dict[str, ThresholdRule]  # rules evaluated in this run
    focused: bool
    settings: PerformanceSettings
    single_threaded: bool
    notes: list[str] = field(default_factory=list)
    facts: ServiceFacts = field(default_factory=ServiceFacts)
    limits: CloudRunLimits = field(default_factory=CloudRunLimits)

    @property
    def fractional_ok(self) -> bool:
        return rules.fractional_allowed(self.current, self.facts)

    def max_cap(self) -> int:
        """The most max instances a recommendation may set (settings cap and Cloud Run's rules)."""
        return rules.scale_cap(self.current, self.facts, self.limits, ceiling=self.settings.max_instances_cap)


def observed_usage(current: ServiceConfig, series: dict[str, MetricSeries], headroom: float) -> ObservedUsage:
    """P90 CPU (vCPU) and peak memory (MiB) over the series read, for the usage floor."""
    cpu, memory = series.get("cpu"), series.get("memory")
    return ObservedUsage(
        cpu_p90_cores=float(np.percentile(cpu.values, 90)) / 100 * current.cpu
        if cpu is not None and len(cpu)
        else None,
        memory_peak_mib=float(memory.values.max()) / 100 * current.memory_mib
        if memory is not None and len(memory)
        else None,
        headroom=headroom,
        origin="the run's cpu / memory utilization series",
    )


def baseline(series: MetricSeries, minutes: float) -> float | None:
    tail = series.last_minutes(minutes)
    return float(tail.values.mean()) if len(tail) else None


def _check(kind: str, name: str, rule: ThresholdRule, series: MetricSeries, minutes: float) -> dict[str, Any]:
    return {
        "kind": kind,
        "rule": name,
        "metric": rule.metric,
        "threshold": rule.above,
        "for_minutes": rule.for_minutes,
        "baseline": baseline(series, minutes),
        "baseline_minutes": minutes,
    }


def _overlaps(windows: list[tuple[int, int]], t_ms: np.ndarray) -> np.ndarray:
    mask = np.zeros(t_ms.shape[0], dtype=bool)
    for start, end in windows:
        mask |= (t_ms >= start) & (t_ms <= end)
    return mask


def _episode_evidence(result: RuleResult) -> dict[str, Any]:
    worst = int(np.argmax(result.episodes.mean))
    return {
        **result.summary(),
        "worst_episode": {
            "start": iso(result.episodes.start_ms[worst]),
            "end": iso(result.episodes.end_ms[worst]),
            "mean": round(float(result.episodes.mean[worst]), 3),
            "peak": round(float(result.episodes.peak[worst]), 3),
        },
    }


def _cpu(inputs: Inputs, result: RuleResult) -> list[Recommendation]:
    s, cur = inputs.settings, inputs.current
    level = result.worst_mean()
    target = s.cpu_target_percent
    evidence = _episode_evidence(result)
    check = _check("not-worse", result.name, result.rule, result.series, s.baseline_minutes)
    instances = inputs.series.get("instance_count")
    capped = False
    if instances is not None and len(instances):
        during = instances.values[_overlaps(result.windows(), instances.t_ms)]
        if during.size:
            evidence["max_instances_seen"] = int(during.max())
            capped = int(during.max()) >= cur.max_instances
    out: list[Recommendation] = []

    def raise_max(reason: str) -> Recommendation | None:
        cap = inputs.max_cap()
        if cur.max_instances >= cap:
            inputs.notes.append(
                "max instances not raised: "
                + rules.scale_cap_reason(cur, inputs.facts, inputs.limits, ceiling=s.max_instances_cap)
            )
            return None
        new_max = min(cap, max(cur.max_instances + 1, math.ceil(cur.max_instances * level / target)))
        return Recommendation(
            id=f"{inputs.service}:cpu:max-instances",
            cause=result.name,
            title=f"raise max instances {cur.max_instances} -> {new_max}",
            changes={"max_instances": new_max},
            risk=Risk.low,
            expected_effect=f"{reason}; at the same load CPU per instance falls towards {target:g} % "
            f"(from {level:.0f} %); cost rises only while the extra instances run",
            evidence=evidence,
            checks=[check],
        )

    if capped:
        rec = raise_max(
            f"instances reached the max ({cur.max_instances}) during the breach, so scaling out was blocked"
        )
        if rec:
            out.append(rec)
            return out
    if inputs.single_threaded or cur.cpu >= VCPU_STEPS[-1]:
        if cur.concurrency > 1:
            new_c = max(1, min(cur.concurrency - 1, math.floor(cur.concurrency * target / level)))
            why = (
                "the service is single-threaded: more vCPU would sit idle"
                if inputs.single_threaded
                else f"already at the largest size ({VCPU_STEPS[-1]} vCPU)"
            )
            out.append(
                Recommendation(
                    id=f"{inputs.service}:cpu:concurrency",
                    cause=result.name,
                    title=f"lower concurrency {cur.concurrency} -> {new_c}",
                    changes={"concurrency": new_c},
                    risk=Risk.medium,
                    expected_effect=f"{why}; fewer requests share one instance's CPU, so the autoscaler adds "
                    f"instances sooner and per-instance CPU falls towards {target:g} % (from {level:.0f} %); "
                    "more instances run at peaks",
                    evidence=evidence,
                    checks=[check],
                )
            )
            return out
        rec = raise_max("concurrency is already 1: a request's own CPU time is the hot spot")
        if rec:
            rec.expected_effect += "; profile the handler, no setting makes one request faster"
            out.append(rec)
        return out
    why_whole = ""
    if cur.cpu < 1:
        # Fractional: the size the load needs, staying below 1 vCPU while the rules allow it.
        need = cur.cpu * level / target
        sized = rules.size_for(max(need, cur.cpu + rules.CPU_INCREMENT), cur.memory_mib, cur, inputs.facts)
        new_cpu: float = sized[0] if sized else 1.0
        if new_cpu >= 1:
            why_whole = (
                f"; whole vCPU because the load needs {need:.3f} vCPU"
                if need >= 1 or inputs.fractional_ok
                else "; whole vCPU because below 1 vCPU Cloud Run needs concurrency 1, request-based billing "
                "and the first-generation environment, which this service does not have"
            )
    else:
        new_cpu = float(next(step for step in VCPU_STEPS if step > cur.cpu))
    projected = level * cur.cpu / new_cpu
    changes: dict[str, Any] = {"cpu": new_cpu}
    floor = rules.memory_min_mib(new_cpu, inputs.facts)
    if cur.memory_mib < floor:
        changes["memory_mib"] = floor
    out.append(
        Recommendation(
            id=f"{inputs.service}:cpu:vcpu",
            cause=result.name,
            title=f"more vCPU {format_cpu(cur.cpu)} -> {format_cpu(new_cpu)}",
            changes=changes,
            risk=Risk.medium,
            expected_effect=f"at the same load CPU utilization ≈ {projected:.0f} % (from {level:.0f} % over the "
            f"worst breach); CPU cost per instance-second x{new_cpu / cur.cpu:.1f}{why_whole}. If the service is "
            "single-threaded, lower concurrency instead (settings.single_threaded)",
            evidence=evidence,
            checks=[check],
        )
    )
    return out


def _memory(inputs: Inputs, result: RuleResult) -> list[Recommendation]:
    s, cur = inputs.settings, inputs.current
    peak = result.worst_peak()
    evidence = _episode_evidence(result)
    check = _check("not-worse", result.name, result.rule, result.series, s.baseline_minutes)
    needed = cur.memory_mib * peak / s.memory_target_percent
    lowest = rules.memory_min_mib(cur.cpu, inputs.facts)
    new_mem = next((m for m in MEMORY_STEPS_MIB if m >= needed and m > cur.memory_mib and m >= lowest), None)
    if new_mem is None:
        new_mem = MAX_MEMORY_MIB if cur.memory_mib < MAX_MEMORY_MIB else None
    if new_mem is None:
        return [
            Recommendation(
                id=f"{inputs.service}:memory:investigate",
                cause=result.name,
                title="memory is at the 32 GiB maximum: look for leaks or lower concurrency",
                risk=Risk.low,
                expected_effect="no larger size exists; memory per request or a leak must shrink",
                evidence=evidence,
            )
        ]
    changes: dict[str, Any] = {"memory_mib": new_mem}
    needed_cpu = rules.min_cpu_for_memory(new_mem, fractional=inputs.fractional_ok) or float(VCPU_STEPS[-1])
    why = ""
    if needed_cpu > cur.cpu:
        changes["cpu"] = needed_cpu
        why = (
            f"; {format_memory(new_mem)} needs at least {format_cpu(needed_cpu)} vCPU "
            f"(the {format_cpu(cur.cpu)} vCPU cap is {format_memory(rules.memory_cap_mib(cur.cpu))})"
        )
    projected = peak * cur.memory_mib / new_mem
    return [
        Recommendation(
            id=f"{inputs.service}:memory:size",
            cause=result.name,
            title=f"more memory {format_memory(cur.memory_mib)} -> {format_memory(new_mem)}"
            + (f" (needs {format_cpu(needed_cpu)} vCPU)" if "cpu" in changes else ""),
            changes=changes,
            risk=Risk.medium,
            expected_effect=f"peak memory utilization ≈ {projected:.0f} % (from {peak:.0f} %): fewer out-of-memory "
            f"restarts; memory cost per instance-second x{new_mem / cur.memory_mib:.1f}{why}",
            evidence=evidence,
            checks=[check],
        )
    ]


def _latency(inputs: Inputs, result: RuleResult) -> list[Recommendation]:
    s, cur = inputs.settings, inputs.current
    evidence = _episode_evidence(result)
    check = _check("not-worse", result.name, result.rule, result.series, s.baseline_minutes)
    out: list[Recommendation] = []
    new_min = cur.min_instances
    instances = inputs.series.get("instance_count")
    if instances is not None and len(instances):
        during = instances.values[_overlaps(result.windows(), instances.t_ms)]
        if during.size:
            typical = int(math.ceil(float(np.median(during))))
            evidence["median_instances_during_breach"] = typical
            new_min = max(new_min, min(typical, cur.max_instances))
    if new_min == cur.min_instances and cur.min_instances == 0:
        new_min = 1
    new_min = min(new_min, inputs.max_cap())
    if new_min > cur.min_instances:
        out.append(
            Recommendation(
                id=f"{inputs.service}:latency:min-instances",
                cause=result.name,
                title=f"raise min instances {cur.min_instances} -> {new_min}",
                changes={
                    "min_instances": new_min,
                    **({"max_instances": new_min} if new_min > cur.max_instances else {}),
                },
                risk=Risk.low,
                expected_effect="requests stop waiting for cold starts on scale-out from "
                f"{cur.min_instances}; {new_min} idle instance(s) are billed at all times",
                evidence=evidence,
                checks=[check],
            )
        )
    if not cur.startup_cpu_boost:
        out.append(
            Recommendation(
                id=f"{inputs.service}:latency:startup-boost",
                cause=result.name,
                title="enable startup CPU boost",
                changes={"startup_cpu_boost": True},
                risk=Risk.low,
                expected_effect="new instances get extra CPU while starting, shortening cold starts; "
                "billed only during startup",
                evidence=evidence,
                checks=[check],
            )
        )
    out.append(
        Recommendation(
            id=f"{inputs.service}:latency:caching",
            cause=result.name,
            title="cache hot responses (Cloud CDN / Memorystore) and check slow dependencies",
            risk=Risk.low,
            expected_effect="P95 latency over the threshold is usually request work, not capacity: "
            "caching repeat reads and timing downstream calls removes it where settings cannot",
            evidence=evidence,
        )
    )
    return out


def _errors(inputs: Inputs, result: RuleResult) -> list[Recommendation]:
    evidence = _episode_evidence(result)
    related = []
    for other in inputs.results.values():
        if other.name == result.name or other.rule.metric not in ("cpu", "memory"):
            continue
        if any(a <= d and c <= b for a, b in result.windows() for c, d in other.windows()):
            related.append(other.name)
    if related:
        evidence["overlaps_with"] = related
    hint = (
        f"the error episodes overlap {', '.join(related)} breaches (resource exhaustion returns 5xx): "
        "fix those first"
        if related
        else "look at the service's error logs for these windows"
    )
    return [
        Recommendation(
            id=f"{inputs.service}:errors:investigate",
            cause=result.name,
            title="investigate the 5xx responses (no configuration change is made blindly)",
            risk=Risk.low,
            expected_effect=hint,
            evidence=evidence,
        )
    ]


def _daily(series: MetricSeries, days: float, how: str, percentile: float) -> list[float] | None:
    """Per-UTC-day statistic over the last ``days`` days, or None when history is too short."""
    if series.span_seconds < days * 86400 - (series.median_interval_seconds() or 0):
        return None
    recent = series.between(series.end_ms - int(days * 86_400_000) - 1, None)
    day = recent.t_ms // 86_400_000
    edges = np.flatnonzero(np.diff(day)) + 1
    chunks = np.split(recent.values, edges)
    if how == "max":
        return [float(c.max()) for c in chunks if c.size]
    return [float(np.percentile(c, percentile)) for c in chunks if c.size]


def _rightsizing(inputs: Inputs) -> list[Recommendation]:
    s, cur = inputs.settings, inputs.current
    out: list[Recommendation] = []
    margin = 1 + s.rightsizing_margin_percent / 100
    for metric in ("cpu", "memory"):
        series = inputs.series.get(metric)
        found = next(((n, r) for n, r in inputs.rules.items() if r.metric == metric), None)
        # A metric that breached in this run is sized up by its own rule, never down.
        if series is None or found is None or any(r.rule.metric == metric for r in inputs.results.values()):
            continue
        rule_name, rule = found
        how = "max" if metric == "memory" else "percentile"
        daily = _daily(series, s.rightsizing_days, how, s.rightsizing_percentile)
        if daily is None:
            inputs.notes.append(
                f"rightsizing {metric}: needs {s.rightsizing_days:g} days of history, have "
                f"{series.span_seconds / 86400:.1f}"
            )
            continue
        usage_pct = max(daily)
        limit = rule.above / 100
        if metric == "memory":
            stat, stat_key = "daily peak", "max_daily_peak"
        else:
            stat, stat_key = (
                f"daily P{s.rightsizing_percentile:g}",
                f"max_daily_p{s.rightsizing_percentile:g}",
            )
        evidence = {
            "metric": metric,
            "days": len(daily),
            stat_key: round(usage_pct, 3),
            "margin_percent": s.rightsizing_margin_percent,
            "threshold": rule.above,
            "from": iso(series.end_ms - int(s.rightsizing_days * 86_400_000)),
            "to": iso(series.end_ms),
        }
        check = _check("stay-below", rule_name, rule, series, s.baseline_minutes)
        if metric == "cpu":
            need = cur.cpu * usage_pct / 100 * margin
            if need / limit > VCPU_STEPS[-1]:
                continue
            new_cpu = rules.round_cpu_up(need / limit, fractional=inputs.fractional_ok)
            # The current memory may need more vCPU than the usage does.
            new_cpu = max(
                new_cpu,
                rules.min_cpu_for_memory(cur.memory_mib, fractional=inputs.fractional_ok) or VCPU_STEPS[-1],
            )
            if new_cpu >= cur.cpu:
                continue
            projected = usage_pct * cur.cpu / new_cpu
            out.append(
                Recommendation(
                    id=f"{inputs.service}:rightsizing:cpu",
                    cause="rightsizing-cpu",
                    title=f"fewer vCPU {format_cpu(cur.cpu)} -> {format_cpu(new_cpu)}",
                    changes={"cpu": new_cpu},
                    risk=Risk.medium,
                    expected_effect=f"{stat} CPU ≤ {usage_pct:.0f} % for {len(daily)} days; at {format_cpu(new_cpu)} vCPU it "
                    f"would be ≈ {projected:.0f} % (+{s.rightsizing_margin_percent:g} % margin stays under "
                    f"{rule.above:g} %); CPU cost per instance-second x{new_cpu / cur.cpu:.2f}",
                    evidence=evidence,
                    checks=[check],
                )
            )
        else:
            need = cur.memory_mib * usage_pct / 100 * margin
            floor_mib = rules.memory_min_mib(cur.cpu, inputs.facts)
            new_mem = next((m for m in MEMORY_STEPS_MIB if need <= m * limit and m >= floor_mib), None)
            if new_mem is None or new_mem >= cur.memory_mib:
                continue
            projected = usage_pct * cur.memory_mib / new_mem
            out.append(
                Recommendation(
                    id=f"{inputs.service}:rightsizing:memory",
                    cause="rightsizing-memory",
                    title=f"less memory {format_memory(cur.memory_mib)} -> {format_memory(new_mem)}",
                    changes={"memory_mib": new_mem},
                    risk=Risk.high,
                    expected_effect=f"{stat} memory ≤ {usage_pct:.0f} % for {len(daily)} days; at "
                    f"{format_memory(new_mem)} the peak would be ≈ {projected:.0f} % (+{s.rightsizing_margin_percent:g} % "
                    f"margin stays under {rule.above:g} %); an underestimate means out-of-memory restarts",
                    evidence=evidence,
                    checks=[check],
                )
            )
    return out


HANDLERS = {"cpu": _cpu, "memory": _memory, "latency_p95": _latency, "error_rate": _errors}


def recommend(inputs: Inputs) -> list[Recommendation]:
    out: list[Recommendation] = []
    for result in inputs.results.values():
        handler = HANDLERS.get(result.rule.metric)
        if handler is not None:
            out.extend(handler(inputs, result))
    if not inputs.focused:
        out.extend(_rightsizing(inputs))
    return out


GROUPS: dict[str, tuple[str, ...]] = {
    "set-resources": ("cpu", "memory_mib"),
    "set-concurrency": ("concurrency",),
    "set-scaling": ("min_instances", "max_instances"),
    "set-startup-cpu-boost": ("startup_cpu_boost",),
}


@dataclass
class PlannedChange:
    kind: str
    changes: dict[str, Any]
    previous: dict[str, Any]
    risk: Risk
    recommendations: list[str]
    checks: list[dict[str, Any]]


def plan(
    current: ServiceConfig,
    recs: list[Recommendation],
    *,
    facts: ServiceFacts | None = None,
    limits: CloudRunLimits | None = None,
    usage: ObservedUsage | None = None,
) -> tuple[ServiceConfig, list[PlannedChange]]:
    """Merge recommendations into one valid target and split it into independent changes.

    Increases win over decreases (a rightsizing that another finding contradicts is superseded);
    concurrency takes the lowest proposal, scaling and memory the highest. The target is fitted
    inside Cloud Run's rules, and a vCPU or memory decrease below the observed usage plus headroom
    is dropped (the recommendation says why).
    """
    facts = facts or ServiceFacts()
    limits = limits or CloudRunLimits()
    now = current.model_dump()
    target = dict(now)
    increases = {
        key: any(rec.changes.get(key, now[key]) > now[key] for rec in recs) for key in ("cpu", "memory_mib")
    }
    for rec in recs:
        if rec.advice_only:
            continue
        for key, value in rec.changes.items():
            if key in ("cpu", "memory_mib"):
                if value < target[key] and value < now[key] and not increases[key]:
                    target[key] = value
                elif value > target[key]:
                    target[key] = value
            elif key == "concurrency":
                target[key] = min(target[key], value)
            elif key in ("min_instances", "max_instances"):
                target[key] = max(target[key], value)
            elif key == "startup_cpu_boost":
                target[key] = bool(target[key] or value)
    final = rules.fit(ServiceConfig.model_validate(target), current, facts, limits)
    # The one usage check: no vCPU or memory below what the service was seen to use + headroom.
    below = rules.below_usage(current, final, usage)
    if below:
        kept = final.model_dump()
        for key in ("cpu", "memory_mib"):
            if kept[key] < now[key] and rules.below_usage(
                current, current.with_changes({key: kept[key]}), usage
            ):
                kept[key] = now[key]
        final = rules.fit(ServiceConfig.model_validate(kept), current, facts, limits)
        for rec in recs:
            if rec.cause.startswith("rightsizing") and rec.superseded is None:
                found = rules.below_usage(current, current.with_changes(rec.changes), usage)
                if found:
                    rec.superseded = "below the observed usage: " + "; ".join(found)
    planned = final.model_dump()
    # A change that validity or an increase undid is no longer part of the plan.
    for rec in recs:
        if rec.advice_only or rec.superseded is not None:
            continue
        undone = [k for k, v in rec.changes.items() if planned[k] != v and k in ("cpu", "memory_mib")]
        if undone and rec.cause.startswith("rightsizing"):
            rec.superseded = (
                f"other findings need {', '.join(undone)} at {', '.join(str(planned[k]) for k in undone)}"
            )
    diff = current.diff(final)
    groups = {kind: {k: v for k, v in diff.items() if k in fields} for kind, fields in GROUPS.items()}
    groups = {kind: group for kind, group in groups.items() if group}
    if len(groups) > 1 and any(
        rules.new_violations(current, current.with_changes(group), facts, limits) for group in groups.values()
    ):
        # Not valid one at a time (e.g. more memory needs the max instances lowered under the
        # quota first): one change with all of it.
        groups = {"set-configuration": diff}
    changes: list[PlannedChange] = []
    for kind, group in groups.items():
        fields = tuple(group)
        related = [
            r for r in recs if not r.advice_only and r.superseded is None and set(r.changes) & set(fields)
        ]
        risk = max((r.risk for r in related), key=lambda r: RISK_ORDER[r], default=Risk.medium)
        checks: list[dict[str, Any]] = []
        for rec in related:
            for check in rec.checks:
                if check not in checks:
                    checks.append(check)
        changes.append(
            PlannedChange(
                kind=kind,
                changes=group,
                previous={k: now[k] for k in group},
                risk=risk,
                recommendations=[r.id for r in related],
                checks=checks,
            )
        )
    return final, changes


__all__ = [
    "Inputs",
    "PlannedChange",
    "Recommendation",
    "RuleResult",
    "observed_usage",
    "plan",
    "recommend",
]
