"""The cost automation's work: load, analyze, and the Cloud Run actions' handlers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml

from ...actuators.base import Actuator, ServiceConfig, actuator_from_target
from ...automation import Analysis, RunContext, Verification
from ...config import ThresholdRule
from ...errors import InputError
from ...inputs import DEFAULT_MAX_BYTES, max_input_bytes
from ...models import Action, Finding, Severity
from ...toolkit.cloudrun.status import read_status, verify_changes
from ...toolkit.dependencies import guarded
from . import Params, RunService, Settings
from . import analysis as an
from .billing import BillingData, read_bigquery, read_billing_file
from .billing_mode import (
    USAGE_METRICS,
    BillingModeEstimate,
    ServiceShape,
    cpu_idle_of,
    estimate,
    mode_of,
    usage_from_series,
)
from .charts import cost_charts
from .waste import (
    TargetState,
    WasteItem,
    as_targeted,
    disagreements,
    idle_min_instances,
    over_provisioned,
    read_targets,
)

if TYPE_CHECKING:
    from orchestra.metrics.base import MetricSeries

WASTE_METRICS = ("request_count", "cpu", "memory")
# Every metric cost reads from files: waste, then billing mode.
COST_METRICS = (*WASTE_METRICS, *USAGE_METRICS)
SET_BILLING_MODE = "set-billing-mode"
# The configuration a billing-mode estimate depends on besides the mode.
SHAPE_FIELDS = ("cpu", "memory_mib", "min_instances")

T = TypeVar("T")


def sample_dir() -> Path:
    return Path(str(resources.files("orchestra").joinpath("samples/cost")))


def load_sample_settings() -> Settings:
    path = sample_dir() / "settings.yaml"
    return Settings.model_validate(yaml.safe_load(path.read_text()))


def load_billing(
    ctx: RunContext, settings: Settings, params: Params, bigquery_client: Any
) -> tuple[BillingData, Settings]:
    if params.billing:
        data = read_billing_file(
            params.billing, max_bad_share=settings.max_bad_row_share, max_bytes=max_input_bytes(ctx.config)
        )
        return data, settings
    if settings.bigquery is not None:
        end = ctx.clock.now().astimezone(dt.UTC).date()  # today is incomplete: stop before it
        start = end - dt.timedelta(days=settings.history_days)
        ctx.progress(f"querying {settings.bigquery.table} from {start} to {end}")
        return read_bigquery(settings.bigquery, start=start, end=end, client=bigquery_client), settings
    sample = sample_dir() / "billing.csv"
    data = read_billing_file(sample, max_bad_share=1.0)  # bundled: not subject to inputs.max_bytes
    data.sample = True
    data.source = "bundled sample export (orchestra/samples/cost/billing.csv)"
    data.notes.append(
        "no --billing file and no automations.cost.settings.bigquery table: analyzed the bundled "
        "sample export with the sample's own budgets and services (samples/cost/settings.yaml)"
    )
    return data, load_sample_settings()


def metric_paths(params: Params, services: list[RunService], sample: bool) -> dict[tuple[str, str], str]:
    """(service, metric) -> CSV path, from params (or the sample bundle)."""
    out: dict[tuple[str, str], str] = {}
    if sample and not params.metrics:
        base = sample_dir() / "metrics"
        for service in services:
            for name in COST_METRICS:
                path = base / service.name / f"{name}.csv"
                if path.is_file():
                    out[(service.name, name)] = str(path)
        return out
    names = {s.name for s in services}
    for key, path in params.metrics.items():
        service, dot, metric = key.rpartition(".")
        if not dot:
            metric = key
            if params.service:
                service = params.service
            elif len(names) == 1:
                service = next(iter(names))
            else:
                raise InputError(
                    f"metric {key!r} does not say which service it belongs to; use --service NAME "
                    f"or name it SERVICE.{key} (configured services: {', '.join(sorted(names)) or 'none'})",
                    where=f"--metric {key}",
                )
        if metric not in COST_METRICS:
            raise InputError(
                f"metric {metric!r} is not used by cost; accepted: {', '.join(COST_METRICS)}",
                where=f"--metric {key}",
            )
        if service not in names:
            raise InputError(
                f"service {service!r} is not in automations.cost.settings.services "
                f"({', '.join(sorted(names)) or 'none configured'})",
                where=f"--metric {key}",
            )
        out[(service, metric)] = path
    return out


def memory_limit_percent(thresholds: dict[str, ThresholdRule], environment: str) -> float:
    """The lowest memory alert threshold in force here: a smaller size must keep the peak under it."""
    limits = [
        rule.above
        for rule in thresholds.values()
        if rule.metric == "memory" and (rule.environments is None or environment in rule.environments)
    ]
    return min(limits, default=100.0)


def selected_services(settings: Settings, params: Params) -> list[RunService]:
    services = [s for s in settings.services if params.service in (None, s.name)]
    if params.service and not services:
        raise InputError(
            f"service {params.service!r} is not in automations.cost.settings.services", where="--service"
        )
    return services


def load_series(
    settings: Settings, params: Params, sample: bool, *, max_bytes: int = DEFAULT_MAX_BYTES
) -> dict[str, dict[str, MetricSeries]]:
    """service -> metric -> series, for the selected services (empty dict: none given)."""
    from orchestra.metrics.files import read_series

    services = selected_services(settings, params)
    paths = metric_paths(params, services, sample)
    return {
        service.name: {
            m: read_series(p, m, max_bytes=max_bytes, names=COST_METRICS)
            for (s, m), p in paths.items()
            if s == service.name
        }
        for service in services
    }


def find_waste(
    settings: Settings,
    params: Params,
    sample: bool,
    *,
    memory_limit: float = 100.0,
    max_bytes: int = DEFAULT_MAX_BYTES,
    series_by_service: dict[str, dict[str, MetricSeries]] | None = None,
    targets: dict[str, TargetState] | None = None,
) -> tuple[list[WasteItem], list[str]]:
    """Idle and over-provisioned services; a service with a target is judged on the target's
    configuration (``targets``, :func:`.waste.read_targets`), not on the settings' copy of it."""
    targets = targets or {}
    services = [as_targeted(s, targets.get(s.name)) for s in selected_services(settings, params)]
    if series_by_service is None:
        series_by_service = load_series(settings, params, sample, max_bytes=max_bytes)
    items: list[WasteItem] = []
    notes: list[str] = []
    for service in services:
        series = {m: v for m, v in series_by_service.get(service.name, {}).items() if m in WASTE_METRICS}
        if not series:
            notes.append(f"{service.name}: no request_count / cpu / memory series given; waste not assessed")
            continue
        idle = idle_min_instances(
            service, series.get("request_count"), settings.cloud_run_prices, settings.waste
        )
        if idle is not None:
            items.append(idle)
            continue  # an idle service's utilization says nothing about its right size
        sized = over_provisioned(
            service,
            series.get("cpu"),
            series.get("memory"),
            settings.cloud_run_prices,
            settings.waste,
            memory_limit_percent=memory_limit,
            state=targets.get(service.name),
        )
        if sized is not None:
            items.append(sized)
    items.sort(key=lambda w: -w.monthly_savings)
    return items, notes


def _anomaly_findings(
    data: BillingData, series: an.DailySeries, settings: Settings, by_sku: bool
) -> tuple[list[Finding], list[dict[str, Any]], int]:
    a = settings.anomalies
    found = an.detect(series, a, last_days=a.detect_days)
    findings: list[Finding] = []
    rows: list[dict[str, Any]] = []
    for anomaly in found[: a.max_findings]:
        key = series.keys[anomaly.series]
        project, service = int(key[0]), int(key[1])
        date = series.date(anomaly.column).isoformat()
        evidence: dict[str, Any] = {
            "date": date,
            "project": data.project_names[project],
            "service": data.service_names[service],
            "actual": round(anomaly.actual, 2),
            "expected": round(anomaly.expected, 2),
            "delta": round(anomaly.delta, 2),
            "ratio": round(anomaly.actual / anomaly.expected, 2) if anomaly.expected > 0 else None,
            "noise_scale": round(anomaly.scale, 2),
            "currency": data.currency,
        }
        if by_sku:
            evidence["sku"] = data.sku_names[int(key[2])]
        evidence["top_skus"] = an.top_skus(data, project, service, anomaly.column, series.first_day, a)
        severity = an.severity_for(anomaly.delta, a)
        label = f"{evidence['project']} / {evidence['service']}" + (f" / {evidence['sku']}" if by_sku else "")
        summary = (
            f"{label} cost {anomaly.actual:,.2f} {data.currency} on {date}, expected "
            f"{anomaly.expected:,.2f} (+{anomaly.delta:,.2f})"
        )
        fid = f"anomaly:{date}:{evidence['project']}:{evidence['service']}" + (
            f":{evidence['sku']}" if by_sku else ""
        )
        findings.append(Finding(id=fid, severity=severity, summary=summary, evidence=evidence))
        rows.append({**evidence, "severity": str(severity)})
    return findings, rows, len(found)


def analyze(ctx: RunContext, *, bigquery_client: Any = None, run_client: Any = None) -> Analysis:
    params: Params = ctx.params
    data, settings = load_billing(ctx, ctx.settings, params, bigquery_client)
    ctx.heartbeat()
    series = an.daily_series(data, by_sku=params.by_sku)
    findings, anomaly_rows, anomaly_count = _anomaly_findings(data, series, settings, params.by_sku)

    # budgets: as of the last day in the data (the export lags; the clock would understate MTD)
    totals = an.daily_series(data) if params.by_sku else series
    as_of_column = totals.days - 1
    budgets = []
    for budget in settings.budgets:
        status = an.budget_status(
            totals, data, budget, as_of_column=as_of_column, window_days=settings.anomalies.window_days
        )
        budgets.append(status.as_dict())
        if status.alert:
            findings.append(
                Finding(
                    id=f"budget:{budget.name}:{status.month}",
                    severity=status.severity(),
                    summary=(
                        f"budget {budget.name}: forecast {status.forecast:,.2f} {data.currency} for "
                        f"{status.month} exceeds {budget.amount:,.2f} "
                        f"({status.forecast / budget.amount:.0%}; month-to-date {status.month_to_date:,.2f})"
                    ),
                    evidence={**status.as_dict(), "currency": data.currency},
                )
            )

    series_by_service = load_series(settings, params, data.sample, max_bytes=max_input_bytes(ctx.config))
    targets, target_notes = read_targets(ctx, selected_services(settings, params), run_client)
    findings.extend(_disagreement_findings(settings, targets))
    waste, waste_notes = find_waste(
        settings,
        params,
        data.sample,
        memory_limit=memory_limit_percent(ctx.config.thresholds, ctx.run.environment),
        series_by_service=series_by_service,
        targets=targets,
    )
    waste_notes = target_notes + waste_notes
    actions: list[Action] = []
    for item in waste:
        service = next(s for s in settings.services if s.name == item.service)
        findings.append(
            _recommendation_finding(
                f"waste:{item.kind}:{item.service}",
                item.summary,
                item.monthly_savings,
                item.as_dict(),
                _waste_action(item, service) if service.target() else None,
                actions,
            )
        )

    modes, mode_notes = find_billing_modes(
        ctx,
        settings,
        params,
        series_by_service,
        run_client=run_client,
        idle=frozenset(w.service for w in waste if w.kind == "idle-min-instances"),
        resized=frozenset(w.service for w in waste if w.kind == "over-provisioned"),
    )
    for item in modes:
        if item.outcome != "switch":
            continue
        service = next(s for s in settings.services if s.name == item.service)
        findings.append(
            _recommendation_finding(
                f"billing-mode:{item.service}",
                item.summary(),
                item.monthly_savings,
                item.as_dict(),
                _billing_mode_action(item, service) if service.target() else None,
                actions,
            )
        )

    # Several recommendations for one service overlap (each is priced on today's configuration):
    # the total counts each service's largest.
    best_savings: dict[str, float] = {}
    for name, amount in [(w.service, w.monthly_savings) for w in waste] + [
        (m.service, m.monthly_savings) for m in modes if m.outcome == "switch"
    ]:
        best_savings[name] = max(best_savings.get(name, 0.0), amount)

    malformed = data.bad.finding(data.rows, data.source)
    if malformed is not None:
        findings.append(malformed)

    last = series.date(series.days - 1)
    window = [c for c in range(max(0, series.days - 30), series.days)]
    summary: dict[str, Any] = {
        "input": data.summary(),
        "analyzed_days": series.days,
        "series": len(series.keys),
        "by_sku": params.by_sku,
        "last_30_days_cost": round(float(series.values[:, window].sum()), 2),
        "as_of": last.isoformat(),
        "anomalies": {
            "count": anomaly_count,
            "evaluated_days": min(
                an.evaluable_days(series, settings.anomalies),
                settings.anomalies.detect_days or series.days,
            ),
            "window_days": settings.anomalies.window_days,
            "top": anomaly_rows[:20],
        },
        "budgets": budgets,
        "recommendations": [w.as_dict() for w in waste],
        "billing_modes": [m.as_dict() for m in modes],
        "monthly_savings": round(sum(best_savings.values()), 2),
        "notes": data.notes + waste_notes + mode_notes,
        "applies": "services with a manifest or resource_name get actions; others analysis only",
        # Bounded copies of the daily series and the budgets' months for the console's charts.
        "charts": cost_charts(series, totals, data, anomaly_rows[:20], settings.budgets, budgets),
    }
    return Analysis(findings=findings, actions=actions, summary=summary)


def _disagreement_findings(settings: Settings, targets: dict[str, TargetState]) -> list[Finding]:
    """A service whose settings say otherwise than its target: the target is what runs."""
    out = []
    for service in settings.services:
        state = targets.get(service.name)
        differ = disagreements(service, state) if state is not None else {}
        if not differ:
            continue
        shown = ", ".join(f"{k} {v['configured']} (configured) vs {v['actual']}" for k, v in differ.items())
        out.append(
            Finding(
                id=f"config-drift:{service.name}",
                severity=Severity.low,
                summary=f"{service.name}: automations.cost.settings.services disagrees with the service: {shown}; "
                "the service's own configuration is used",
                evidence={
                    "service": service.name,
                    "fields": differ,
                    "origin": state.origin if state else None,
                },
            )
        )
    return out


def _recommendation_finding(
    finding_id: str,
    summary: str,
    monthly_savings: float,
    evidence: dict[str, Any],
    action: Action | None,
    actions: list[Action],
) -> Finding:
    """A recommendation's finding; its action (None: the service has no target) joins ``actions``."""
    if action is not None:
        actions.append(action)
        evidence["action"] = action.id
    else:
        evidence["action"] = None
        evidence["why_no_action"] = (
            "no target for this service: set automations.cost.settings.services[].manifest "
            "(service YAML) or resource_name (Cloud Run Admin API)"
        )
    return Finding(
        id=finding_id,
        severity=Severity.medium if monthly_savings >= 100 else Severity.low,
        summary=summary,
        evidence=evidence,
    )


def _waste_action(item: WasteItem, service: RunService) -> Action:
    target = dict(service.target() or {})
    if target.get("type") == "cloud-run-yaml":
        target["path"] = str(Path(target["path"]).resolve())
    previous: dict[str, Any] = {}
    if item.kind == "idle-min-instances":
        kind, changes = "set-min-instances", {"min_instances": int(item.recommended["min_instances"])}
    else:
        kind = "resize-service"
        changes = {
            "cpu": float(item.recommended["vcpu"]),
            "memory_mib": int(round(float(item.recommended["memory_gib"]) * 1024)),
        }
        # Sized from this configuration: prepare refuses a service that no longer has it.
        previous = {
            "cpu": float(item.current["vcpu"]),
            "memory_mib": int(round(float(item.current["memory_gib"]) * 1024)),
        }
    where = target.get("path") or target.get("name")
    return Action(
        id=f"{kind}:{service.name}",
        description=f"{item.summary} ({where})",
        risk=item.risk,
        kind=kind,
        params={
            "target": target,
            "service": service.name,
            "changes": changes,
            **({"previous": previous} if previous else {}),
            "monthly_savings": round(item.monthly_savings, 2),
        },
    )


def service_shape(ctx: RunContext, service: RunService, run_client: Any) -> ServiceShape:
    """vCPU, memory, billing mode and min instances: read from the service's target (its YAML or
    the Admin API, as every Cloud Run action reads it), else taken from the settings."""
    target = service.target()
    if target is None:
        return ServiceShape(
            vcpu=service.vcpu,
            memory_gib=service.memory_gib,
            mode=service.billing,
            min_instances=service.min_instances,
            origin="automations.cost.settings.services (no manifest or resource_name to read)",
        )
    actuator = actuator_from_target(target, run_client=run_client)
    found = guarded(ctx, target["type"], actuator.service_name)
    if found not in (None, service.name):
        raise InputError(
            f"target is service {found!r}, not {service.name!r}",
            where=f"automations.cost.settings.services[{service.name}]",
        )
    config: ServiceConfig = guarded(ctx, target["type"], actuator.read)
    return ServiceShape(
        vcpu=config.cpu,
        memory_gib=config.memory_mib / 1024,
        mode=mode_of(config.cpu_idle),
        min_instances=config.min_instances,
        origin=f"read from {actuator.describe()}",
        config=config.model_dump(),
    )


def find_billing_modes(
    ctx: RunContext,
    settings: Settings,
    params: Params,
    series_by_service: dict[str, dict[str, MetricSeries]],
    *,
    run_client: Any = None,
    idle: frozenset[str] = frozenset(),
    resized: frozenset[str] = frozenset(),
) -> tuple[list[BillingModeEstimate], list[str]]:
    """Each selected service's billing-mode estimate; notes for those that could not be judged.

    ``idle``: services whose minimum instances should go first; once they scale to zero their
    instance time, and with it both estimates, changes."""
    if not settings.billing_mode.enabled:
        return [], []
    out: list[BillingModeEstimate] = []
    notes: list[str] = []
    for service in selected_services(settings, params):
        series = series_by_service.get(service.name, {})
        if not any(m in series for m in USAGE_METRICS):
            notes.append(
                f"{service.name}: no {' / '.join(USAGE_METRICS)} series given; billing mode not assessed"
            )
            continue
        if service.name in idle:
            notes.append(
                f"{service.name}: billing mode not assessed while its idle minimum instances are "
                "recommended to go (its instance time will change)"
            )
            continue
        shape = service_shape(ctx, service, run_client)
        usage = usage_from_series(series, shape.mode)
        item = estimate(
            service.name, shape, usage, service.prices or settings.cloud_run_prices, settings.billing_mode
        )
        if service.target() is not None and shape.mode != service.billing:
            item.notes.append(
                f"the service is {shape.mode}-based ({shape.origin}); settings say {service.billing}-based"
            )
        if service.name in resized and item.outcome == "switch":
            item.notes.append(
                f"priced at the current {shape.vcpu:g} vCPU / {shape.memory_gib:g} GiB; the over-provisioned "
                "recommendation for this service lowers both estimates, and the savings overlap"
            )
        if item.outcome == "unknown":
            notes.append(item.summary())
        out.append(item)
    out.sort(key=lambda m: -m.monthly_savings)
    return out, notes


def _billing_mode_action(item: BillingModeEstimate, service: RunService) -> Action:
    target = dict(service.target() or {})
    if target.get("type") == "cloud-run-yaml":
        target["path"] = str(Path(target["path"]).resolve())
    if item.recommended is None:
        raise ValueError(f"{item.service}: no billing mode recommended, nothing to act on")
    where = target.get("path") or target.get("name")
    evidence = item.as_dict()
    # What the estimate rests on: prepare refuses a service changed since.
    config = item.shape.config or {}
    previous = {"cpu_idle": cpu_idle_of(item.current), **{k: config[k] for k in SHAPE_FIELDS if k in config}}
    return Action(
        id=f"{SET_BILLING_MODE}:{service.name}",
        description=f"{item.summary()} ({where})",
        risk=item.risk,
        kind=SET_BILLING_MODE,
        params={
            "target": target,
            "service": service.name,
            "changes": {"cpu_idle": cpu_idle_of(item.recommended)},
            "previous": previous,
            "monthly_savings": round(item.monthly_savings, 2),
            "estimates": evidence["estimates"],
            "utilization": evidence["utilization"],
            "break_even_utilization": evidence["break_even_utilization"],
        },
    )


# ----- action handlers: they work from the stored action alone -----


def _actuator(action: Action, run_client: Any) -> Actuator:
    actuator = actuator_from_target(action.params["target"], run_client=run_client)
    service = action.params["service"]
    found = actuator.service_name()
    if found != service:
        raise InputError(f"target is service {found!r}, not {service!r}", where=actuator.describe())
    return actuator


def _guarded(ctx: RunContext, action: Action, fn: Callable[[], T]) -> T:
    # The Admin API shares its breaker with performance and infrastructure.
    return guarded(ctx, action.params["target"].get("type"), fn)


def prepare(ctx: RunContext, action: Action, *, run_client: Any = None) -> dict[str, Any]:
    actuator = _actuator(action, run_client)
    previous: dict[str, Any] = action.params.get("previous", {})
    if previous:
        # Decided on the configuration seen by the analysis: refuse if someone changed it since.
        current = _guarded(ctx, action, actuator.read).model_dump()
        changes = action.params["changes"]
        drift = {k: current[k] for k, v in previous.items() if current[k] not in (v, changes.get(k))}
        if drift:
            raise InputError(
                f"{actuator.describe()} changed since the analysis ({drift} now, {previous} then); "
                "run the analysis again",
                where=f"action {action.id}",
            )
    return _guarded(ctx, action, actuator.snapshot)


def apply(ctx: RunContext, action: Action, *, run_client: Any = None) -> dict[str, Any]:
    actuator = _actuator(action, run_client)
    config = _guarded(ctx, action, lambda: actuator.apply(action.params["changes"]))
    result = {"config": config.model_dump(), "target": actuator.describe()}
    diff = getattr(actuator, "last_diff", None)
    if diff is not None:
        result["diff"] = diff  # exactly the fields that changed
    return result


def verify(ctx: RunContext, action: Action, *, run_client: Any = None) -> Verification:
    if action.kind == SET_BILLING_MODE:
        # The service reports the new mode and, through the Admin API, is ready.
        actuator = _actuator(action, run_client)
        return verify_changes(_guarded(ctx, action, lambda: read_status(actuator)), action.params["changes"])
    config = _guarded(ctx, action, _actuator(action, run_client).read).model_dump()
    wanted = action.params["changes"]
    ok = all(config.get(k) == v for k, v in wanted.items())
    return Verification(ok=ok, evidence={"config": config, "wanted": wanted})


def rollback(action: Action, *, run_client: Any = None) -> None:
    if not action.rollback:
        return
    evidence = _actuator(action, run_client).restore(action.rollback, action.params["changes"])
    action.result = {**(action.result or {}), "rollback": evidence}
