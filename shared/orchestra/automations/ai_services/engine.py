"""The ai-services automation's analysis: load the request log, report, find opportunities."""

from __future__ import annotations

import datetime as dt
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ...automation import Analysis, RunContext
from ...inputs import max_input_bytes
from ...models import Action, Finding, Severity
from . import Params, Settings
from . import analysis as an
from .policy import resolve_policy_path
from .usage import UsageData, fetch_log_entries, read_usage_file, usage_from_entries


def sample_dir() -> Path:
    return Path(str(resources.files("orchestra").joinpath("samples/ai_services")))


def load_usage(
    ctx: RunContext, settings: Settings, params: Params, session: Any
) -> tuple[UsageData, Settings]:
    if params.usage:
        data = read_usage_file(
            params.usage, max_bad_share=settings.max_bad_row_share, max_bytes=max_input_bytes(ctx.config)
        )
        return data, settings
    if settings.logging is not None:
        end = ctx.clock.now().astimezone(dt.UTC)
        start = end - dt.timedelta(days=settings.history_days)
        ctx.progress(f"reading Cloud Logging entries of {settings.logging.project} since {start:%Y-%m-%d}")
        entries = fetch_log_entries(settings.logging, start, end, session=session)
        source = f"cloud-logging:projects/{settings.logging.project}"
        return usage_from_entries(entries, source=source, max_bad_share=settings.max_bad_row_share), settings
    # bundled: not subject to inputs.max_bytes
    data = read_usage_file(sample_dir() / "usage.jsonl", max_bad_share=1.0)
    data.sample = True
    data.source = "bundled sample request log (orchestra/samples/ai_services/usage.jsonl)"
    data.notes.append(
        "no --usage file and no automations.ai-services.settings.logging: analyzed the bundled sample "
        "log with the sample's own model prices (samples/ai_services/settings.yaml)"
    )
    sample_settings = yaml.safe_load((sample_dir() / "settings.yaml").read_text())
    # the policy file stays the operator's choice even for the sample
    sample_settings["policy_path"] = settings.policy_path
    return data, Settings.model_validate(sample_settings)


def _action_id(opportunity: an.Opportunity) -> str:
    return f"{opportunity.kind}:" + ":".join(str(v) for v in opportunity.key.values())


def analyze(ctx: RunContext, *, logging_session: Any = None) -> Analysis:
    params: Params = ctx.params
    data, settings = load_usage(ctx, ctx.settings, params, logging_session)
    ctx.heartbeat()
    cost = an.request_costs(data, settings.models)
    factor = an.monthly_factor(data)
    tables = an.report(data, cost, factor)
    context, too_small = an.context_cache(data, factor, settings)
    opportunities = (
        an.response_cache(data, cost, factor, settings)
        + context
        + an.routing(data, cost, factor, settings)
        + an.throttling(data, settings)
    )
    opportunities.sort(key=lambda o: (-o.monthly_savings, o.kind))
    policy_path = resolve_policy_path(params.policy_path, settings.policy_path)

    findings: list[Finding] = []
    actions: list[Action] = []
    for opp in opportunities:
        action_id = _action_id(opp)
        actions.append(
            Action(
                id=action_id,
                description=f"{opp.summary} (policy {policy_path})",
                risk=opp.risk,
                kind=f"policy-{opp.kind}",
                params={"policy_path": policy_path, "kind": opp.kind, "key": opp.key, "entry": opp.entry},
            )
        )
        if opp.kind == "backoff":
            severity = Severity.high if opp.evidence["throttle_rate"] >= 0.05 else Severity.medium
        else:
            severity = Severity.medium if opp.monthly_savings >= 100 else Severity.low
        findings.append(
            Finding(
                id=f"opportunity:{action_id}",
                severity=severity,
                summary=opp.summary,
                evidence={**opp.as_dict(), "action": action_id, "monthly_factor": round(factor, 3)},
            )
        )
    missing = an.unpriced_models(data, settings)
    if missing:
        findings.append(
            Finding(
                id="config:unpriced-models",
                severity=Severity.low,
                summary=f"no price configured for {', '.join(missing)}: their cost and savings are not counted",
                evidence={"models": missing, "configure": "automations.ai-services.settings.models"},
            )
        )
    malformed = data.bad.finding(data.rows, data.source)
    if malformed is not None:
        findings.append(malformed)
    total = float(sum(r["monthly_cost"] or 0 for r in tables["by_model"]))
    counted = {"models_total": len(tables["by_model"]), "routes_total": len(tables["by_route"])}
    for name in ("by_model", "by_route"):  # the costliest: the document stays small
        tables[name] = tables[name][: an.MAX_ROWS]
    summary: dict[str, Any] = {
        "input": data.summary(),
        "monthly_factor": round(factor, 3),
        "monthly_cost": round(total, 2),
        **tables,
        **counted,
        "opportunities": [o.as_dict() for o in opportunities],
        "monthly_savings": round(sum(o.monthly_savings for o in opportunities), 2),
        "context_cache_too_small": too_small,
        "policy_path": policy_path,
        "notes": data.notes,
    }
    return Analysis(findings=findings, actions=actions, summary=summary)
