"""Changing one Cloud Run service's settings from a stored action: prepare, apply, verify, rollback.

Everything comes from the action (its ``target``, ``changes`` and ``previous``), so another
process can finish or undo the change after a crash.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...actuators.base import Actuator, actuator_from_target, format_cpu, format_memory
from ...automation import RunContext, Verification
from ...errors import InputError
from ...models import Action
from ..dependencies import guarded
from .models import SourceSettings

# Judges an action's stored metric checks once its configuration is confirmed: given the checks
# and the evidence so far, the verification.
CheckJudge = Callable[[list[dict[str, Any]], dict[str, Any]], Verification]


def describe_change(changes: dict[str, Any], previous: dict[str, Any]) -> str:
    def show(key: str, value: Any) -> str:
        if key == "cpu":
            return f"{format_cpu(value)} vCPU"
        if key == "memory_mib":
            return format_memory(int(value))
        if key == "cpu_idle":
            return "request-based" if value else "instance-based"
        return str(value).lower() if isinstance(value, bool) else str(value)

    labels = {
        "cpu": "cpu",
        "memory_mib": "memory",
        "concurrency": "concurrency",
        "min_instances": "min instances",
        "max_instances": "max instances",
        "startup_cpu_boost": "startup CPU boost",
        "cpu_idle": "billing",
    }
    return ", ".join(f"{labels[k]} {show(k, previous[k])} -> {show(k, v)}" for k, v in changes.items())


def actuator_for(action: Action, run_client: Any, settings: SourceSettings | None = None) -> Actuator:
    target = action.params.get("target")
    if not isinstance(target, dict):
        raise InputError(f"action {action.id} has no target to act on", where="action.params.target")
    act = actuator_from_target(target, run_client=run_client)
    if settings is not None and hasattr(act, "operation_timeout"):
        act.operation_timeout = settings.operation_timeout_seconds
    if settings is not None:
        act.limits = settings.cloud_run_limits
    return act


def preview_diff(actuator: Actuator, changes: dict[str, Any]) -> str | None:
    """What ``changes`` would write, as a bounded unified diff (YAML targets), for the run's
    record before anything is applied; None when the target shows no text or cannot be read."""
    try:
        return actuator.preview(changes)
    except InputError:
        return None


def prepare(ctx: RunContext, action: Action, run_client: Any) -> dict[str, Any]:
    actuator = actuator_for(action, run_client, ctx.settings)
    kind = action.params["target"].get("type")
    current = guarded(ctx, kind, actuator.read).model_dump()
    previous: dict[str, Any] = action.params.get("previous", {})
    changes: dict[str, Any] = action.params.get("changes", {})
    drift = {k: current[k] for k, v in previous.items() if current[k] != v and current[k] != changes.get(k)}
    if drift:
        raise InputError(
            f"{actuator.describe()} changed since the analysis ({drift} now, {previous} then); "
            "run the analysis again",
            where=f"action {action.id}",
        )
    return guarded(ctx, kind, actuator.snapshot)


def apply(ctx: RunContext, action: Action, run_client: Any) -> dict[str, Any]:
    actuator = actuator_for(action, run_client, ctx.settings)
    config = guarded(
        ctx, action.params["target"].get("type"), lambda: actuator.apply(action.params["changes"])
    )
    result: dict[str, Any] = {"config": config.model_dump(), "target": actuator.describe()}
    diff = getattr(actuator, "last_diff", None)
    if diff is not None:
        result["diff"] = diff
    if action.params["target"].get("type") == "cloud-run-yaml":
        result["next_step"] = f"gcloud run services replace {action.params['target']['path']}"
    return result


def rollback(ctx: RunContext, action: Action, run_client: Any) -> dict[str, Any]:
    if not action.rollback:
        return {"restored": False, "reason": "nothing was captured before apply"}
    actuator = actuator_for(action, run_client, ctx.settings)
    return actuator.restore(action.rollback, action.params.get("changes", {}))


def verify(
    ctx: RunContext, action: Action, run_client: Any, judge_checks: CheckJudge | None = None
) -> Verification:
    """After ``settings.settle_seconds`` from the change, the service has the changed settings; the
    action's metric checks, when it has any, are then ``judge_checks``'s to decide. A check made
    again later (a pending verification) waits only for what is left of the settle period."""
    settings: SourceSettings = ctx.settings
    elapsed = (ctx.clock.now() - action.applied_at).total_seconds() if action.applied_at else 0.0
    ctx.clock.sleep(max(0.0, settings.settle_seconds - max(0.0, elapsed)))
    actuator = actuator_for(action, run_client, settings)
    config = guarded(ctx, action.params["target"].get("type"), actuator.read)
    changes: dict[str, Any] = action.params.get("changes", {})
    state = config.model_dump()
    drift = {k: state[k] for k, v in changes.items() if state[k] != v}
    evidence: dict[str, Any] = {"settled_seconds": settings.settle_seconds, "config": state}
    if drift:
        return Verification(ok=False, evidence={**evidence, "drift": drift, "expected": changes})
    checks: list[dict[str, Any]] = action.params.get("checks", [])
    if not checks:
        return Verification(ok=True, evidence={**evidence, "checks": [], "note": "configuration confirmed"})
    if judge_checks is None:
        return Verification(
            ok=False,
            evidence={
                **evidence,
                "note": f"{len(checks)} metric check(s) stored but none can be judged here",
            },
        )
    return judge_checks(checks, evidence)
