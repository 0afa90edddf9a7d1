"""Performance analysis, apply, verification and rollback (imported when a run needs it)."""

from __future__ import annotations

from typing import Any

from ...automation import Analysis, RunContext, Verification
from ...config import ThresholdRule
from ...inputs import max_input_bytes
from ...metrics import source_from_spec
from ...metrics.base import MetricSeries, iso, to_ms
from ...models import Action, Finding, Severity, VerificationOutcome
from ...toolkit.cloudrun import actions as service_actions
from ...toolkit.cloudrun.actions import describe_change
from ...toolkit.cloudrun.inputs import ServiceInput, resolve
from ...toolkit.dependencies import guarded
from .charts import Budget, after_window, duration_text, service_charts
from .episodes import Episodes, find_episodes
from .models import PerformanceParams, PerformanceSettings
from .recommend import Inputs, Recommendation, RuleResult, observed_usage, plan, recommend

RIGHTSIZING_METRICS = ("cpu", "memory")


def select_rules(
    thresholds: dict[str, ThresholdRule], environment: str, focus: str | None
) -> tuple[dict[str, ThresholdRule], dict[str, str]]:
    """Rules this run evaluates, and why the others are not."""
    chosen: dict[str, ThresholdRule] = {}
    skipped: dict[str, str] = {}
    for name, rule in thresholds.items():
        if focus is not None and rule.focus != focus:
            skipped[name] = f"focused run ({focus})"
        elif rule.environments is not None and environment not in rule.environments:
            skipped[name] = f"applies only in {', '.join(rule.environments)}"
        else:
            chosen[name] = rule
    return chosen, skipped


def _severity(rule: ThresholdRule, mean: float, duration_s: float) -> Severity:
    required = rule.for_minutes * 60
    ratio = mean / rule.above if rule.above > 0 else float("inf")
    heavy = 5.0 if rule.metric == "error_rate" else 1.25
    if ratio >= heavy or (required > 0 and duration_s >= 4 * required):
        return Severity.high
    return Severity.medium


def episode_findings(
    service: str, name: str, rule: ThresholdRule, series: MetricSeries, eps: Episodes
) -> list[Finding]:
    unit = series.unit
    out = []
    for i in range(len(eps)):
        start, end = iso(eps.start_ms[i]), iso(eps.end_ms[i])
        mean, peak, duration = float(eps.mean[i]), float(eps.peak[i]), float(eps.duration_s[i])
        out.append(
            Finding(
                id=f"performance:{service}:{name}:{start}",
                severity=_severity(rule, mean, duration),
                summary=f"{service}: {rule.metric} above {rule.above:g} {unit} for {duration_text(duration)} "
                f"({start} .. {end}; mean {mean:.1f}, peak {peak:.1f} {unit})",
                evidence={
                    "rule": name,
                    "metric": rule.metric,
                    "service": service,
                    "start": start,
                    "end": end,
                    "peak": round(peak, 6),
                    "mean": round(mean, 6),
                    "threshold": rule.above,
                    "for_minutes": rule.for_minutes,
                    "duration_minutes": round(duration / 60, 3),
                    "samples": int(eps.samples[i]),
                    "unit": unit,
                    "source": series.origin,
                },
            )
        )
    return out


def _metric_info(series: MetricSeries) -> dict[str, Any]:
    interval = series.median_interval_seconds()
    return {
        "samples": len(series),
        "from": iso(series.start_ms) if len(series) else None,
        "to": iso(series.end_ms) if len(series) else None,
        "unit": series.unit,
        "interval_seconds": interval,
        "origin": series.origin,
    }


def analyze(ctx: RunContext, *, monitoring_client: Any = None, run_client: Any = None) -> Analysis:
    settings: PerformanceSettings = ctx.settings
    params: PerformanceParams = ctx.params
    environment = ctx.run.environment
    rules, skipped = select_rules(ctx.config.thresholds, environment, params.focus)
    single_threaded = settings.single_threaded if params.single_threaded is None else params.single_threaded
    services = resolve(
        settings=settings,
        params=params,
        now=ctx.clock.now(),
        lookback_hours=settings.lookback_hours,
        monitoring_client=monitoring_client,
        run_client=run_client,
        max_bytes=max_input_bytes(ctx.config),
    )
    findings: list[Finding] = []
    actions: list[Action] = []
    reports: list[dict[str, Any]] = []
    budget = Budget()  # what the run may store for its charts, over all its services
    for item in services:
        ctx.progress(f"performance: {item.service} from {item.source.describe()}")
        report, item_findings, item_actions = _analyze_service(
            ctx, item, rules, settings, params, single_threaded, budget
        )
        findings.extend(item_findings)
        actions.extend(item_actions)
        reports.append(report)
        ctx.heartbeat()
    sources = sorted({item.source.describe() for item in services})
    summary = {
        "source": "; ".join(sources),
        "environment": environment,
        "focus": params.focus,
        "rules": {
            name: {**rule.model_dump(mode="json"), "evaluated": name in rules, "skipped": skipped.get(name)}
            for name, rule in ctx.config.thresholds.items()
        },
        "services": reports,
        "findings": len(findings),
        "actions": len(actions),
    }
    return Analysis(findings=findings, actions=actions, summary=summary)


def _analyze_service(
    ctx: RunContext,
    item: ServiceInput,
    rules: dict[str, ThresholdRule],
    settings: PerformanceSettings,
    params: PerformanceParams,
    single_threaded: bool,
    budget: Budget,
) -> tuple[dict[str, Any], list[Finding], list[Action]]:
    needed = {rule.metric for rule in rules.values()}
    if params.focus is None:
        needed |= set(RIGHTSIZING_METRICS)
    if needed & {"cpu", "latency_p95"}:
        needed.add("instance_count")
    wanted = [m for m in item.source.available() if m in needed]
    data = item.fetch(ctx, wanted)
    notes: list[str] = []
    results: dict[str, RuleResult] = {}
    findings: list[Finding] = []
    rule_reports = []
    evaluated: list[tuple[str, ThresholdRule, Episodes]] = []
    for name, rule in rules.items():
        series = data.get(rule.metric)
        if series is None or not len(series):
            rule_reports.append(
                {"rule": name, "metric": rule.metric, "threshold": rule.above, "status": "no data"}
            )
            continue
        eps = find_episodes(series.t_ms, series.values, rule.above, rule.for_minutes * 60)
        evaluated.append((name, rule, eps))
        result = RuleResult(name, rule, series, eps)
        if len(eps):
            results[name] = result
            findings.extend(episode_findings(item.service, name, rule, series, eps))
            rule_reports.append({**result.summary(), "status": "breached"})
        else:
            rule_reports.append(
                {
                    "rule": name,
                    "metric": rule.metric,
                    "threshold": rule.above,
                    "status": "ok",
                    "max": round(float(series.values.max()), 3),
                }
            )
    current, config_origin = item.current_config(ctx, settings.assumed_service)
    facts = item.current_facts(ctx)
    recs = recommend(
        Inputs(
            service=item.service,
            current=current,
            results=results,
            series=data,
            rules=rules,
            focused=params.focus is not None,
            settings=settings,
            single_threaded=single_threaded,
            notes=notes,
            facts=facts,
            limits=settings.cloud_run_limits,
        )
    )
    usage = observed_usage(current, data, settings.rightsizing_margin_percent / 100)
    final, planned = plan(current, recs, facts=facts, limits=settings.cloud_run_limits, usage=usage)
    actions: list[Action] = []
    data_end = max((s.end_ms for s in data.values() if len(s)), default=None)
    if planned and item.actuator is None:
        notes.append(
            "recommendations only: no target to act on (pass --param service_yaml=PATH or "
            "--param cloud_run=projects/P/locations/R/services/S)"
        )
    for change in planned if item.actuator is not None else []:
        actions.append(
            Action(
                id=f"{item.service}:{change.kind}",
                description=f"{item.service}: {describe_change(change.changes, change.previous)}",
                risk=change.risk,
                kind=change.kind,
                params={
                    "service": item.service,
                    "target": item.actuator.target(),
                    "changes": change.changes,
                    "previous": change.previous,
                    "checks": change.checks,
                    "recommendations": change.recommendations,
                    "source": item.source.spec(),
                    "data_end_ms": data_end,
                    "diff": service_actions.preview_diff(item.actuator, change.changes),
                },
            )
        )
    report = {
        "service": item.service,
        "source": item.source.describe(),
        "metrics": {name: _metric_info(series) for name, series in data.items()},
        "config": current.model_dump(),
        "config_origin": config_origin,
        "facts": facts.model_dump(),
        "target_config": final.model_dump(),
        "actuator": item.actuator.describe() if item.actuator is not None else None,
        "rules": rule_reports,
        "recommendations": [r.model_dump(mode="json") for r in recs],
        "notes": notes,
        "charts": service_charts(data, evaluated, budget),
    }
    return report, findings, actions


# ----- apply side: everything from the stored action (the toolkit's, for a Cloud Run service) -----

prepare = service_actions.prepare
apply = service_actions.apply
rollback = service_actions.rollback


def _post_window(
    ctx: RunContext, action: Action, monitoring_client: Any, metrics: list[str]
) -> tuple[dict[str, MetricSeries], str]:
    spec = action.params.get("source") or {}
    source = source_from_spec(spec, monitoring_client=monitoring_client)
    service = action.params["service"]
    if spec.get("type") == "cloud-monitoring":
        now = ctx.clock.now()
        applied = action.applied_at or now
        data = guarded(ctx, source.kind, lambda: source.fetch(service, metrics, start=applied, end=now))
        cutoff = to_ms(applied)
        return {
            k: v.between(cutoff, None) for k, v in data.items()
        }, f"samples after {iso(cutoff)} (the change)"
    # Files are history: what counts as "after" is anything newer than what the analysis saw.
    data = source.fetch(service, metrics)
    cutoff_ms = action.params.get("data_end_ms")
    if cutoff_ms is None:
        return {}, "no analysis cut-off stored"
    return {
        k: v.between(int(cutoff_ms), None) for k, v in data.items()
    }, f"samples after {iso(int(cutoff_ms))}"


def _after_from(action: Action) -> int | None:
    """Where the after window starts: the change (Cloud Monitoring), or the end of what the
    analysis saw (files, which are history)."""
    if (action.params.get("source") or {}).get("type") == "cloud-monitoring":
        return to_ms(action.applied_at) if action.applied_at is not None else None
    cutoff = action.params.get("data_end_ms")
    return int(cutoff) if cutoff is not None else None


def judge(check: dict[str, Any], post: MetricSeries | None, tolerance_percent: float) -> dict[str, Any]:
    """One check's verdict: better / not-worse / worse / inconclusive."""
    out: dict[str, Any] = {"rule": check["rule"], "metric": check["metric"], "kind": check["kind"]}
    if post is None or not len(post):
        return {**out, "verdict": "inconclusive", "reason": "no samples after the change yet"}
    mean = float(post.values.mean())
    out.update(
        {
            "after_mean": round(mean, 3),
            "after_samples": len(post),
            "from": iso(post.start_ms),
            "to": iso(post.end_ms),
        }
    )
    if check["kind"] == "stay-below":
        eps = find_episodes(post.t_ms, post.values, check["threshold"], check["for_minutes"] * 60)
        worse = len(eps) > 0 or mean > check["threshold"]
        out["breaches_after"] = len(eps)
        return {**out, "verdict": "worse" if worse else "ok"}
    base = check.get("baseline")
    if base is None:
        return {**out, "verdict": "inconclusive", "reason": "no baseline before the change"}
    out["baseline"] = round(float(base), 3)
    limit = base * (1 + tolerance_percent / 100)
    if mean > limit:
        return {**out, "verdict": "worse", "limit": round(limit, 3)}
    return {**out, "verdict": "better" if mean < base else "not-worse"}


def outcome_of(verdicts: list[dict[str, Any]]) -> VerificationOutcome:
    """Any check worse: failed; else any check that could not judge (no samples after the change,
    no baseline): inconclusive, the change is not proven yet; else passed."""
    found = {v["verdict"] for v in verdicts}
    if "worse" in found:
        return VerificationOutcome.failed
    if "inconclusive" in found:
        return VerificationOutcome.inconclusive
    return VerificationOutcome.passed


def verify(ctx: RunContext, action: Action, monitoring_client: Any, run_client: Any) -> Verification:
    settings: PerformanceSettings = ctx.settings

    def judge_checks(checks: list[dict[str, Any]], evidence: dict[str, Any]) -> Verification:
        metrics = sorted({c["metric"] for c in checks})
        post, window = _post_window(ctx, action, monitoring_client, metrics)
        verdicts = [judge(c, post.get(c["metric"]), settings.verify_tolerance_percent) for c in checks]
        evidence.update(
            {"window": window, "checks": verdicts, "after": after_window(_after_from(action), post)}
        )
        return Verification(outcome=outcome_of(verdicts), evidence=evidence)

    return service_actions.verify(ctx, action, run_client, judge_checks)


def recommendation_rows(summary: dict[str, Any]) -> list[Recommendation]:
    rows = []
    for report in summary.get("services", []):
        rows.extend(Recommendation.model_validate(r) for r in report.get("recommendations", []))
    return rows
