"""Cloud Monitoring incidents (Pub/Sub notification channel, schema 1.2) -> focused runs.

An open incident on a metric that a configured threshold rule covers (``thresholds`` in the
configuration: CPU, memory, P95 latency, error rate) is a threshold breach
(:class:`~orchestra.automation.BreachEvent`): it becomes one run, in apply mode, of the automation
that handles breaches (the performance automation among the built-ins), focused on the rule's
focus (``orchestra.registry.breach_request``); the environment's automation level and gates decide what
is applied. With no automation handling breaches the incident is recorded as ignored. The run's trigger id is ``{incident_id}:open``, so the notification Monitoring
sends more than once (and Pub/Sub redeliveries) run once. A message id is one trigger too: a
message that reuses an id with other content (another incident) is recorded as a duplicate and
starts nothing (``pubsub.claim_message``). A closed incident is recorded against the run its
opening created; an opening that arrives after its closing starts nothing.

Which metric an incident is about: the policy's user label ``orchestra_metric`` when set (for
ratio, MQL or PromQL policies), else the incident's metric type (Cloud Run metrics), else the
``metric.type`` in the condition filter. The environment comes from the policy's user label
``environment`` (default: the configuration's default environment), the service from the
resource's ``service_name`` label (or the policy label ``service``).

When the policy's own threshold and duration are in the incident, they must be at least the
rule's (e.g. CPU above 70 % for 15 min): an alert on a lower threshold, such as an early-warning
policy routed to the same channel, is recorded as ignored rather than starting an optimization.
Incidents that are not for a known metric (including the console's test notification) are
recorded as ignored with the reason.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..automation import BreachEvent, EventKind
from ..config import Config, ThresholdRule
from ..errors import InputError
from ..models import Mode, run_id_for
from ..registry import NO_BREACH_HANDLER, breach_request
from ..runner import RunRequest
from .parsing import validated
from .pubsub import CloudEventLike, PubSubDelivery, claim_message, parse_pubsub_event
from .records import EventLog, EventStatus, Handled, submit_for_event

if TYPE_CHECKING:
    from ..app import App
    from ..registry import Registry

SOURCE = "alerts"
KIND = "monitoring-incident"
SUPPORTED_VERSIONS = ("1.2", "test")
METRIC_LABEL = "orchestra_metric"
ENVIRONMENT_LABEL = "environment"
SERVICE_LABEL = "service"

# Cloud Run metric types (resource cloud_run_revision) and the threshold metric they measure.
METRIC_TYPES: dict[str, str] = {
    "run.googleapis.com/container/cpu/utilizations": "cpu",
    "run.googleapis.com/container/memory/utilizations": "memory",
    "run.googleapis.com/request_latencies": "latency_p95",
    "run.googleapis.com/request_count": "request_count",
}
KNOWN_METRICS = ("cpu", "memory", "latency_p95", "error_rate", "request_count")
_FILTER_METRIC = re.compile(r'metric\.type\s*=\s*"([^"]+)"')
_FIVE_XX = re.compile(r'response_code_class\s*=\s*"5xx"')
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)s$")


class _Lenient(BaseModel):
    # Monitoring adds fields over time; unknown ones are not errors. Field names are the
    # payload's own (snake_case for the incident, camelCase inside the condition).
    model_config = ConfigDict(extra="ignore", defer_build=True)


class IncidentMetric(_Lenient):
    type: str | None = None
    displayName: str | None = None
    labels: dict[str, Any] = Field(default_factory=dict)


class IncidentResource(_Lenient):
    type: str | None = None
    labels: dict[str, Any] = Field(default_factory=dict)


class ConditionThreshold(_Lenient):
    filter: str | None = None
    denominatorFilter: str | None = None
    comparison: str | None = None
    thresholdValue: float | None = None
    duration: str | None = None


class IncidentCondition(_Lenient):
    name: str | None = None
    displayName: str | None = None
    conditionThreshold: ConditionThreshold | None = None


class Incident(_Lenient):
    incident_id: str = Field(min_length=1)
    scoping_project_id: str | None = None
    url: str | None = None
    state: Literal["open", "closed"]
    started_at: float | None = None
    ended_at: float | None = None
    summary: str | None = None
    policy_name: str | None = None
    policy_user_labels: dict[str, Any] = Field(default_factory=dict)
    condition_name: str | None = None
    condition: IncidentCondition | None = None
    metric: IncidentMetric | None = None
    resource: IncidentResource | None = None
    observed_value: str | float | None = None
    threshold_value: str | float | None = None
    severity: str | None = None

    @field_validator("state", mode="before")
    @classmethod
    def _lower_state(cls, value: Any) -> Any:
        # The console's test notification sends "OPEN"; real incidents "open" / "closed".
        return value.lower() if isinstance(value, str) else value

    @field_validator("incident_id", mode="before")
    @classmethod
    def _id_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) else value

    @field_validator("policy_user_labels", mode="before")
    @classmethod
    def _labels_or_empty(cls, value: Any) -> Any:
        return {} if value is None else value

    @property
    def dedupe_key(self) -> str:
        return f"{self.incident_id}:{self.state}"

    def metric_type(self) -> str | None:
        if self.metric and self.metric.type:
            return self.metric.type
        threshold = self.condition.conditionThreshold if self.condition else None
        if threshold and threshold.filter:
            found = _FILTER_METRIC.search(threshold.filter)
            if found:
                return found.group(1)
        return None

    def label(self, name: str) -> str | None:
        value = self.policy_user_labels.get(name)
        return str(value) if value not in (None, "") else None

    def service(self) -> str | None:
        for labels in (
            self.resource.labels if self.resource else {},
            self.metric.labels if self.metric else {},
        ):
            if labels.get("service_name"):
                return str(labels["service_name"])
        return self.label(SERVICE_LABEL)

    def summary_fields(self) -> dict[str, Any]:
        return {
            "incident_id": self.incident_id,
            "state": self.state,
            "policy_name": self.policy_name,
            "condition_name": self.condition_name,
            "metric_type": self.metric_type(),
            "resource": self.resource.model_dump() if self.resource else None,
            "observed_value": self.observed_value,
            "threshold_value": self.threshold_value,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "url": self.url,
            "summary": self.summary,
        }


class IncidentNotification(_Lenient):
    incident: Incident
    version: str

    @field_validator("version", mode="before")
    @classmethod
    def _supported(cls, value: Any) -> Any:
        if str(value) not in SUPPORTED_VERSIONS:
            raise ValueError(
                f"unsupported notification schema version {value!r}; accepted: {', '.join(SUPPORTED_VERSIONS)}"
            )
        return str(value)


def parse_notification(data: dict[str, Any]) -> IncidentNotification:
    return validated(IncidentNotification, data)


class Mapping(BaseModel):
    """The run an open incident asks for, or why none."""

    metric: str | None = None
    rule_name: str | None = None
    environment: str
    service: str | None = None
    ignored: str | None = None


def resolve_metric(incident: Incident) -> tuple[str | None, str]:
    """(threshold metric name or None, how it was determined / why unknown)."""
    labelled = incident.label(METRIC_LABEL)
    if labelled:
        if labelled in KNOWN_METRICS:
            return labelled, f"policy label {METRIC_LABEL}={labelled}"
        return None, f"policy label {METRIC_LABEL}={labelled!r} is not one of {', '.join(KNOWN_METRICS)}"
    metric_type = incident.metric_type()
    if not metric_type:
        return None, f"the incident names no metric type (set the policy label {METRIC_LABEL})"
    metric = METRIC_TYPES.get(metric_type)
    if metric is None:
        return None, (
            f"metric {metric_type!r} is not one the automations act on; known: "
            f"{', '.join(METRIC_TYPES)} (or set the policy label {METRIC_LABEL})"
        )
    if metric == "request_count" and _is_error_ratio(incident):
        return "error_rate", f"{metric_type} restricted to 5xx responses"
    return metric, f"metric type {metric_type}"


def _threshold(incident: Incident) -> ConditionThreshold | None:
    return incident.condition.conditionThreshold if incident.condition else None


def _is_error_ratio(incident: Incident) -> bool:
    threshold = _threshold(incident)
    if threshold and threshold.filter and _FIVE_XX.search(threshold.filter):
        return True
    return bool(incident.metric and str(incident.metric.labels.get("response_code_class")) == "5xx")


def policy_in_rule_units(incident: Incident, metric: str) -> tuple[float | None, float | None]:
    """The policy's threshold in the rule's unit (percent for ratios) and its duration in minutes,
    when the incident carries them."""
    threshold = _threshold(incident)
    if threshold is None:
        return None, None
    value = threshold.thresholdValue
    metric_type = incident.metric_type() or ""
    if value is not None and (
        metric_type.endswith("utilizations") or (metric == "error_rate" and threshold.denominatorFilter)
    ):
        value = value * 100  # utilizations and ratios are fractions; rules are in percent
    minutes = None
    if threshold.duration:
        found = _DURATION.match(threshold.duration.strip())
        if found:
            minutes = float(found.group(1)) / 60
    return value, minutes


def map_incident(incident: Incident, config: Config) -> Mapping:
    environment = incident.label(ENVIRONMENT_LABEL) or config.default_environment
    service = incident.service()
    metric, how = resolve_metric(incident)
    if metric is None:
        return Mapping(environment=environment, service=service, ignored=how)
    rules = [(name, rule) for name, rule in config.thresholds.items() if rule.metric == metric]
    if not rules:
        return Mapping(
            metric=metric,
            environment=environment,
            service=service,
            ignored=f"no threshold rule in the configuration covers metric {metric} ({how})",
        )
    applicable = [(n, r) for n, r in rules if r.environments is None or environment in r.environments]
    if not applicable:
        where = "; ".join(f"{n} applies to {', '.join(r.environments or [])} only" for n, r in rules)
        return Mapping(
            metric=metric,
            environment=environment,
            service=service,
            ignored=f"{where}; this incident is for {environment}",
        )
    name, rule = applicable[0]
    problem = _below_rule(incident, metric, name, rule)
    return Mapping(metric=metric, rule_name=name, environment=environment, service=service, ignored=problem)


def _below_rule(incident: Incident, metric: str, name: str, rule: ThresholdRule) -> str | None:
    threshold = _threshold(incident)
    if threshold and threshold.comparison and threshold.comparison not in ("COMPARISON_GT", "COMPARISON_GE"):
        return f"the policy fires on {threshold.comparison}; rule {name} acts on values above {rule.above}"
    value, minutes = policy_in_rule_units(incident, metric)
    if value is not None and value < rule.above - 1e-9:
        return (
            f"the policy threshold ({value:g}) is below rule {name} "
            f"({metric} > {rule.above:g} for {rule.for_minutes:g} min)"
        )
    if minutes is not None and minutes < rule.for_minutes - 1e-9:
        return (
            f"the policy duration ({minutes:g} min) is shorter than rule {name} "
            f"({metric} > {rule.above:g} for {rule.for_minutes:g} min)"
        )
    return None


def request_for(
    incident: Incident,
    mapping: Mapping,
    config: Config,
    registry: Registry,
    *,
    trigger_id: str | None = None,
    source_event: str | None = None,
    requested_by: str | None = None,
) -> RunRequest | None:
    """The focused run an open incident asks for; None when no automation handles breaches."""
    rule = config.thresholds[mapping.rule_name or ""]
    event = BreachEvent(
        rule=mapping.rule_name or "",
        metric=rule.metric,
        focus=rule.focus,
        environment=mapping.environment,
        service=mapping.service,
        trigger_id=trigger_id or incident.dedupe_key,
        requested_by=requested_by or f"alert:{incident.policy_name or 'unnamed-policy'}",
        source_event=source_event or incident.incident_id,
    )
    return breach_request(registry, config, event, mode=Mode.apply)


def opened_run_id(task: str, incident_id: str) -> str:
    return run_id_for(task, f"{incident_id}:open")


def notification_from_delivery(delivery: PubSubDelivery) -> IncidentNotification:
    return parse_notification(delivery.json_payload())


def handle_alert(event: CloudEventLike, app: App) -> Handled:
    """Turn a Monitoring notification into a focused run (or record why not)."""
    events = EventLog(app)
    try:
        delivery = parse_pubsub_event(event)
    except InputError as exc:
        return events.reject_cloud_event(SOURCE, KIND, event, exc)
    reused = claim_message(app, SOURCE, KIND, delivery)
    if reused is not None:
        return reused
    payload = delivery.summary()
    try:
        notification = notification_from_delivery(delivery)
    except InputError as exc:
        return events.reject(SOURCE, delivery.message_id, KIND, exc, payload)
    incident = notification.incident
    key = incident.dedupe_key
    payload = {**payload, "incident": incident.summary_fields(), "version": notification.version}
    if incident.state == "closed":
        return _closed(app, events, incident, payload)
    mapping = map_incident(incident, app.config)
    if not mapping.ignored and events.primary_exists(SOURCE, f"{incident.incident_id}:closed"):
        # Notifications can arrive out of order: nothing to optimize once the incident is over.
        mapping.ignored = f"incident {incident.incident_id} was already closed when its opening arrived"
    if mapping.ignored:
        return events.ignore(SOURCE, key, KIND, mapping.ignored, payload)
    request = request_for(incident, mapping, app.config, app.registry)
    if request is None:
        return events.ignore(SOURCE, key, KIND, f"{NO_BREACH_HANDLER}; nothing to run", payload)
    return submit_for_event(app, request, source=SOURCE, key=key, kind=KIND, payload=payload)


def _closed(app: App, events: EventLog, incident: Incident, payload: dict[str, Any]) -> Handled:
    key = incident.dedupe_key
    handler = app.registry.handler(EventKind.breach)
    run = app.store.get_run(opened_run_id(handler.name, incident.incident_id)) if handler else None
    run_ids = [run.id] if run else []
    if events.primary_exists(SOURCE, key):
        record = events.duplicate(
            SOURCE, key, KIND, reason="closed notification received again", run_ids=run_ids, payload=payload
        )
        return Handled(EventStatus.duplicate, record, [run] if run else [])
    if run is None:
        return events.ignore(
            SOURCE,
            key,
            KIND,
            f"incident {incident.incident_id} closed; no run was opened for it "
            f"(see the record of {incident.incident_id}:open)",
            payload,
        )
    record = events.save(
        SOURCE,
        key,
        KIND,
        EventStatus.accepted,
        reason=f"incident closed; recorded against run {run.id} ({run.status.value})",
        run_ids=run_ids,
        payload=payload,
    )
    return Handled(EventStatus.accepted, record, [run])
