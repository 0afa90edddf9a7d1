"""Infrastructure analysis and actions (imported when a run needs them)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from ...actuators import rules
from ...actuators.base import ServiceConfig
from ...automation import Analysis, RunContext, Verification
from ...errors import InputError
from ...inputs import max_input_bytes
from ...metrics.base import MetricSeries, iso, to_ms
from ...models import Action, Finding, Risk, Severity, format_timestamp, safe_doc_id
from ...toolkit.cloudrun import actions as service_actions
from ...toolkit.cloudrun.actions import describe_change
from ...toolkit.cloudrun.inputs import ServiceInput, resolve
from .models import InfrastructureParams, InfrastructureSettings
from .profile import HOURS_PER_WEEK, build_schedule, demand_profile, hour_of_week, slot_label, transitions

COLLECTION = "infrastructure_schedules"


def _capacity(
    settings: InfrastructureSettings, params: InfrastructureParams, item: ServiceInput
) -> tuple[float, str]:
    if params.instance_capacity_rps is not None:
        return params.instance_capacity_rps, "--param instance_capacity_rps"
    if settings.instance_capacity_rps is not None:
        return settings.instance_capacity_rps, "settings.instance_capacity_rps"
    if item.sample_capacity_rps is not None:
        return item.sample_capacity_rps, "the bundled sample's manifest (an assumption for the sample)"
    raise InputError(
        "per-instance capacity unknown: set automations.infrastructure.settings.instance_capacity_rps "
        "(requests per second one instance serves at target utilization) or pass --param instance_capacity_rps=N",
        where="automations.infrastructure.settings.instance_capacity_rps",
    )


def analyze(ctx: RunContext, *, monitoring_client: Any = None, run_client: Any = None) -> Analysis:
    settings: InfrastructureSettings = ctx.settings
    params: InfrastructureParams = ctx.params
    services = resolve(
        settings=settings,
        params=params,
        now=ctx.clock.now(),
        lookback_hours=settings.lookback_days * 24,
        monitoring_client=monitoring_client,
        run_client=run_client,
        max_bytes=max_input_bytes(ctx.config),
    )
    findings: list[Finding] = []
    actions: list[Action] = []
    reports = []
    for item in services:
        ctx.progress(f"infrastructure: {item.service} from {item.source.describe()}")
        report, item_findings, item_actions = _analyze_service(ctx, item, settings, params)
        reports.append(report)
        findings.extend(item_findings)
        actions.extend(item_actions)
        ctx.heartbeat()
    summary = {
        "source": "; ".join(sorted({item.source.describe() for item in services})),
        "now": format_timestamp(ctx.clock.now()),
        "services": reports,
    }
    return Analysis(findings=findings, actions=actions, summary=summary)


def _stored(ctx: RunContext, service: str) -> dict[str, Any] | None:
    return ctx.store.get(COLLECTION, safe_doc_id(service))


def _analyze_service(
    ctx: RunContext, item: ServiceInput, settings: InfrastructureSettings, params: InfrastructureParams
) -> tuple[dict[str, Any], list[Finding], list[Action]]:
    forecast_only = settings.forecast_only if params.forecast_only is None else params.forecast_only
    now = ctx.clock.now()
    slot_now = int(hour_of_week(np.asarray([to_ms(now)], dtype=np.int64))[0])
    data = item.fetch(ctx, ["request_count"])
    series: MetricSeries | None = data.get("request_count")
    stored = _stored(ctx, item.service)
    report: dict[str, Any] = {
        "service": item.service,
        "source": item.source.describe(),
        "forecast_only": forecast_only,
        "slot_now": slot_now,
        "slot_now_label": slot_label(slot_now),
        "notes": [],
    }
    notes: list[str] = report["notes"]
    capacity, capacity_origin = _capacity(settings, params, item)
    history_days = series.span_seconds / 86400 if series is not None and len(series) else 0.0
    recent_need: int | None = None
    if series is not None and len(series) >= 2 and history_days >= settings.min_history_days:
        computed = _computed_schedule(
            ctx,
            item,
            settings,
            series,
            capacity=capacity,
            capacity_origin=capacity_origin,
            history_days=history_days,
            now=now,
        )
        schedule_doc, recent_need = computed.doc, computed.recent_need
        report.update(computed.report)
    elif stored is not None:
        schedule_doc = stored
        report["schedule_origin"] = (
            f"stored schedule computed {stored.get('computed_at')} (run {stored.get('run_id')})"
        )
        notes.append(
            f"request-count history too short here ({history_days:.1f} days < {settings.min_history_days:g}); "
            "using the stored schedule"
        )
    else:
        report["schedule_origin"] = None
        return report, [_short_history_finding(item, settings, history_days)], []
    report["schedule"] = schedule_doc["min_instances"]
    report["max_instances"] = schedule_doc["max_instances"]
    report["transitions"] = transitions(schedule_doc["min_instances"])
    current, config_origin = item.current_config(ctx, ServiceConfig())
    report["config"] = current.model_dump()
    report["config_origin"] = config_origin
    decision = _decide_min_instances(int(schedule_doc["min_instances"][slot_now]), current, recent_need)
    report["decision"] = decision
    facts = item.current_facts(ctx)
    report["facts"] = facts.model_dump()
    limits = settings.cloud_run_limits
    report["max_cap"] = rules.scale_cap(current, facts, limits, ceiling=settings.max_instances_cap)
    if report["max_cap"] < max(int(schedule_doc["max_instances"]), decision["min_instances"]):
        reason = rules.scale_cap_reason(current, facts, limits, ceiling=settings.max_instances_cap)
        decision["capped_at"] = report["max_cap"]
        notes.append(f"scaling capped at {reason}")
    findings = _schedule_findings(item, report, schedule_doc, current, slot_now)
    if forecast_only:
        notes.append("forecast-only: nothing is stored or changed")
        return report, findings, []
    actions = _actions(item, report, schedule_doc, stored, current, slot_now)
    return report, findings, actions


@dataclass(frozen=True)
class _Computed:
    """A schedule computed from this run's request-count history."""

    doc: dict[str, Any]  # the document stored in COLLECTION
    recent_need: int  # instances the most recent demand needs
    report: dict[str, Any]  # what the service's report says about it


def _computed_schedule(
    ctx: RunContext,
    item: ServiceInput,
    settings: InfrastructureSettings,
    series: MetricSeries,
    *,
    capacity: float,
    capacity_origin: str,
    history_days: float,
    now: datetime,
) -> _Computed:
    """The weekly demand profile, the min/max-instances schedule it calls for, and recent demand."""
    profile = demand_profile(series, settings.percentile)
    schedule = build_schedule(
        profile,
        capacity_rps=capacity,
        floor=settings.floor_min_instances,
        quiet_fraction=settings.quiet_fraction,
        warm_ahead_hours=settings.warm_ahead_hours,
        headroom_percent=settings.headroom_percent,
        max_instances_cap=settings.max_instances_cap,
    )
    doc = {
        "id": safe_doc_id(item.service),
        "service": item.service,
        "min_instances": schedule.min_instances,
        "max_instances": schedule.max_instances,
        "capacity_rps": capacity,
        "percentile": settings.percentile,
        "profile_rps": [round(float(v), 6) for v in profile.p_rps],
        "history": {"from": iso(series.start_ms), "to": iso(series.end_ms), "samples": len(series)},
        "computed_at": format_timestamp(now),
        "run_id": ctx.run.id,
        "source": item.source.describe(),
    }
    recent = series.last_minutes(settings.recent_minutes)
    recent_rps = float((recent.values / profile.interval_s).max())
    recent_need = math.ceil(recent_rps / capacity - 1e-9)
    report = {
        "schedule_origin": "computed from this run's history",
        "history_days": round(history_days, 2),
        "interval_seconds": profile.interval_s,
        "capacity_rps": capacity,
        "capacity_origin": capacity_origin,
        "peak_rps": round(profile.peak_rps, 6),
        "profile": [
            {
                "slot": slot,
                "at": slot_label(slot),
                "p_rps": round(float(profile.p_rps[slot]), 6),
                "samples": int(profile.samples[slot]),
                "basis": profile.basis[slot],
                "quiet": schedule.quiet[slot],
                "min_instances": schedule.min_instances[slot],
            }
            for slot in range(HOURS_PER_WEEK)
        ],
        "recent": {
            "from": iso(recent.start_ms),
            "to": iso(recent.end_ms),
            "max_rps": round(recent_rps, 6),
            "instances_needed": recent_need,
        },
    }
    return _Computed(doc=doc, recent_need=recent_need, report=report)


def _short_history_finding(
    item: ServiceInput, settings: InfrastructureSettings, history_days: float
) -> Finding:
    return Finding(
        id=f"infrastructure:{item.service}:history",
        severity=Severity.low,
        summary=f"{item.service}: {history_days:.1f} days of request-count history; a schedule needs "
        f"{settings.min_history_days:g} (pass --metric request_count=PATH or use Cloud Monitoring)",
        evidence={"history_days": round(history_days, 3), "required_days": settings.min_history_days},
    )


def _decide_min_instances(
    scheduled_min: int, current: ServiceConfig, recent_need: int | None
) -> dict[str, Any]:
    """The min instances to set now; ``min_instances`` in the result.

    The schedule is followed upwards; it lowers the current setting only as far as the current
    demand allows, and not at all without current demand data.
    """
    desired_min = scheduled_min
    decision: dict[str, Any] = {"scheduled_min": scheduled_min, "current_min": current.min_instances}
    if desired_min < current.min_instances and recent_need is not None and recent_need > desired_min:
        held = min(current.min_instances, recent_need)
        decision["held_at"] = held
        decision["reason"] = (
            f"current demand needs {recent_need} instance(s): not lowering below {held} on a forecast alone"
        )
        desired_min = held
    elif desired_min < current.min_instances and recent_need is None:
        decision["held_at"] = current.min_instances
        decision["reason"] = "no current demand data: not lowering on a forecast alone"
        desired_min = current.min_instances
    decision["min_instances"] = desired_min
    return decision


def _schedule_findings(
    item: ServiceInput,
    report: dict[str, Any],
    schedule_doc: dict[str, Any],
    current: ServiceConfig,
    slot_now: int,
) -> list[Finding]:
    """Max instances below what peak demand needs (if so), then the schedule and the decision."""
    findings: list[Finding] = []
    decision = report["decision"]
    max_needed = int(schedule_doc["max_instances"])
    if current.max_instances < max_needed:
        findings.append(
            Finding(
                id=f"infrastructure:{item.service}:max-instances",
                severity=Severity.medium,
                summary=f"{item.service}: max instances {current.max_instances} is below the {max_needed} that peak "
                f"demand with headroom needs",
                evidence={
                    "current_max": current.max_instances,
                    "needed_max": max_needed,
                    "peak_rps": report.get("peak_rps"),
                },
            )
        )
    findings.append(
        Finding(
            id=f"infrastructure:{item.service}:schedule",
            severity=Severity.info,
            summary=f"{item.service}: min instances {min(schedule_doc['min_instances'])}..{max(schedule_doc['min_instances'])} "
            f"over the week ({len(report['transitions'])} changes), max {max_needed}; now ({slot_label(slot_now)} UTC) "
            f"{decision['min_instances']}",
            evidence={"decision": decision, "transitions": report["transitions"][:50]},
        )
    )
    return findings


def _scaling_changes(
    current: ServiceConfig, desired_min: int, max_needed: int, cap: int | None = None
) -> dict[str, Any]:
    """The scaling settings to change now: min instances, and max instances when too low; neither
    above ``cap`` (what Cloud Run's rules allow: Direct VPC egress, the service-level maximum, the
    regional quota), and max instances brought down to it when above."""
    if cap is not None:
        max_needed, desired_min = min(max_needed, cap), min(desired_min, cap)
        if current.max_instances > cap:
            changes = {"max_instances": cap}
            if desired_min != current.min_instances or current.min_instances > cap:
                changes["min_instances"] = min(desired_min, cap)
            return changes
    changes: dict[str, Any] = {}
    if desired_min != current.min_instances:
        changes["min_instances"] = desired_min
    if max(current.max_instances, desired_min) < max_needed or desired_min > current.max_instances:
        changes["max_instances"] = max(max_needed, desired_min)
    return changes


def _actions(
    item: ServiceInput,
    report: dict[str, Any],
    schedule_doc: dict[str, Any],
    stored: dict[str, Any] | None,
    current: ServiceConfig,
    slot_now: int,
) -> list[Action]:
    """Store a freshly computed schedule that differs from the stored one; apply this hour's scaling."""
    actions: list[Action] = []
    max_needed = int(schedule_doc["max_instances"])
    if "profile" in report and (stored is None or _differs(stored, schedule_doc)):
        actions.append(
            Action(
                id=f"{item.service}:store-schedule",
                description=f"{item.service}: store the min-instances schedule "
                f"({len(report['transitions'])} changes per week, max {max_needed})",
                risk=Risk.low,
                kind="store-schedule",
                params={"service": item.service, "doc": schedule_doc},
            )
        )
    changes = _scaling_changes(
        current, report["decision"]["min_instances"], max_needed, report.get("max_cap")
    )
    if changes and item.actuator is None:
        report["notes"].append(
            "no target to act on: pass --param service_yaml=PATH or --param cloud_run=projects/P/locations/R/services/S"
        )
    elif changes and item.actuator is not None:
        previous = {k: current.model_dump()[k] for k in changes}
        lowering = changes.get("min_instances", current.min_instances) < current.min_instances
        actions.append(
            Action(
                id=f"{item.service}:set-scaling:{slot_now}",
                description=f"{item.service}: for {slot_label(slot_now)} UTC "
                + describe_change(changes, previous),
                risk=Risk.medium if lowering else Risk.low,
                kind="set-scaling",
                params={
                    "service": item.service,
                    "target": item.actuator.target(),
                    "changes": changes,
                    "previous": previous,
                    "checks": [],
                    "slot": slot_now,
                    "source": item.source.spec(),
                },
            )
        )
    return actions


def _differs(stored: dict[str, Any], fresh: dict[str, Any]) -> bool:
    keys = ("min_instances", "max_instances", "capacity_rps", "percentile")
    return any(stored.get(k) != fresh.get(k) for k in keys)


def prepare(ctx: RunContext, action: Action, run_client: Any) -> dict[str, Any]:
    if action.kind == "store-schedule":
        doc_id = safe_doc_id(action.params["service"])
        return {"collection": COLLECTION, "id": doc_id, "previous": ctx.store.get(COLLECTION, doc_id)}
    return service_actions.prepare(ctx, action, run_client)


def apply(ctx: RunContext, action: Action, run_client: Any) -> dict[str, Any]:
    if action.kind == "store-schedule":
        doc = action.params["doc"]
        ctx.store.put(COLLECTION, doc["id"], doc)
        return {"stored": f"{COLLECTION}/{doc['id']}"}
    return service_actions.apply(ctx, action, run_client)


def verify(ctx: RunContext, action: Action, monitoring_client: Any, run_client: Any) -> Verification:
    if action.kind == "store-schedule":
        doc = action.params["doc"]
        stored = ctx.store.get(COLLECTION, doc["id"])
        return Verification(ok=stored == doc, evidence={"stored": stored is not None})
    return service_actions.verify(ctx, action, run_client)


def rollback(ctx: RunContext, action: Action, run_client: Any) -> dict[str, Any]:
    if action.kind == "store-schedule":
        data = action.rollback or {}
        doc_id = data.get("id") or safe_doc_id(action.params["service"])
        previous = data.get("previous")
        if previous is None:
            return {"deleted": ctx.store.delete(COLLECTION, doc_id)}
        ctx.store.put(COLLECTION, doc_id, previous)
        return {"restored": f"{COLLECTION}/{doc_id}"}
    return service_actions.rollback(ctx, action, run_client)
