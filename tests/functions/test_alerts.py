"""``monitoring_alert``: Cloud Monitoring incidents (schema 1.2) -> focused performance runs."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from orchestra.events.alerts import map_incident, parse_notification
from orchestra.models import Mode, RunStatus, TriggerKind, run_id_for

from tests.functions.conftest import post_pubsub

FUNCTION = "alerts"

CLOUD_RUN_CPU = {
    "incident": {
        "incident_id": "0.nxb4kzp1mq2a",
        "scoping_project_id": "orchestra-prod",
        "scoping_project_number": 123456789012,
        "url": "https://console.cloud.google.com/monitoring/alerting/incidents/0.nxb4kzp1mq2a?project=orchestra-prod",
        "severity": "Warning",
        "state": "open",
        "started_at": 1767614400,
        "ended_at": None,
        "policy_name": "checkout CPU above 70%",
        "policy_user_labels": {"environment": "production"},
        "condition_name": "Cloud Run Revision - Container CPU Utilization",
        "condition": {
            "name": "projects/orchestra-prod/alertPolicies/1234/conditions/5678",
            "displayName": "Cloud Run Revision - Container CPU Utilization",
            "conditionThreshold": {
                "filter": 'resource.type = "cloud_run_revision" AND metric.type = '
                '"run.googleapis.com/container/cpu/utilizations"',
                "aggregations": [{"alignmentPeriod": "60s", "perSeriesAligner": "ALIGN_PERCENTILE_99"}],
                "comparison": "COMPARISON_GT",
                "thresholdValue": 0.7,
                "duration": "900s",
                "trigger": {"count": 1},
            },
        },
        "metric": {
            "type": "run.googleapis.com/container/cpu/utilizations",
            "displayName": "Container CPU Utilization",
            "labels": {},
        },
        "resource": {
            "type": "cloud_run_revision",
            "labels": {
                "project_id": "orchestra-prod",
                "service_name": "checkout",
                "revision_name": "checkout-00042-abc",
                "location": "europe-west1",
                "configuration_name": "checkout",
            },
        },
        "resource_type_display_name": "Cloud Run Revision",
        "metadata": {"system_labels": {}, "user_labels": {}},
        "observed_value": "0.853",
        "threshold_value": "0.7",
        "documentation": {"content": "CPU is high", "mime_type": "text/markdown", "subject": "CPU"},
        "summary": "Container CPU Utilization for checkout is above the threshold of 0.700 with a value of 0.853.",
    },
    "version": "1.2",
}

# What "Send test notification" in the console sends.
CONSOLE_TEST = {
    "incident": {
        "incident_id": "12345",
        "scoping_project_id": "12345",
        "scoping_project_number": 12345,
        "url": "http://www.example.com",
        "started_at": 0,
        "ended_at": 0,
        "state": "OPEN",
        "summary": "Test Incident",
        "apigee_url": "http://www.example.com",
        "observed_value": "1.0",
        "resource": {"type": "example_resource", "labels": {"example": "label"}},
        "resource_type_display_name": "Example Resource Type",
        "resource_id": "12345",
        "resource_display_name": "Example Resource",
        "resource_name": "projects/12345/example_resources/12345",
        "metric": {
            "type": "test.googleapis.com/metric",
            "displayName": "Test Metric",
            "labels": {"example": "label"},
        },
        "metadata": {"system_labels": {"example": "label"}, "user_labels": {"example": "label"}},
        "policy_name": "projects/12345/alertPolicies/12345",
        "policy_user_labels": {"example": "label"},
        "documentation": "Test documentation",
        "condition": {
            "name": "projects/12345/alertPolicies/12345/conditions/12345",
            "displayName": "Example condition",
            "conditionThreshold": {
                "filter": 'metric.type="test.googleapis.com/metric" resource.type="example_resource"',
                "comparison": "COMPARISON_GT",
                "thresholdValue": 0.5,
                "duration": "500s",
                "trigger": {"count": 1},
            },
        },
        "condition_name": "Example condition",
        "threshold_value": "0.5",
    },
    "version": "test",
}


def incident(**changes: Any) -> dict[str, Any]:
    payload = copy.deepcopy(CLOUD_RUN_CPU)
    for dotted, value in changes.items():
        target = payload["incident"]
        *path, last = dotted.split("__")
        for part in path:
            target = target[part]
        target[last] = value
    return payload


def records(fn_app, status=None):
    return fn_app.store.list_events(source="alerts", status=status, limit=None)


def test_cpu_incident_starts_one_focused_run(client, fn_app):
    response = post_pubsub(client, CLOUD_RUN_CPU, message_id="m-1", topic="monitoring-incidents")
    assert response.status_code == 200, response.data
    run = fn_app.store.get_run(run_id_for("performance", "0.nxb4kzp1mq2a:open"))
    assert run.status == RunStatus.succeeded
    assert run.params == {"focus": "cpu", "service": "checkout"}
    assert (run.environment, run.mode, run.trigger_kind) == ("production", Mode.apply, TriggerKind.alert)
    assert run.source_event == "0.nxb4kzp1mq2a"
    assert run.requested_by == "alert:checkout CPU above 70%"
    [record] = records(fn_app)
    assert (record.status, record.event_id, record.run_ids) == ("accepted", "0.nxb4kzp1mq2a:open", [run.id])
    assert record.payload["message_id"] == "m-1"


def test_same_incident_notified_twice_runs_once(client, fn_app):
    post_pubsub(client, CLOUD_RUN_CPU, message_id="m-1")
    post_pubsub(client, CLOUD_RUN_CPU, message_id="m-2")  # Monitoring's second notification
    assert len(fn_app.store.list_runs(task="performance")) == 1
    assert sorted(r.status for r in records(fn_app)) == ["accepted", "duplicate"]


def test_closed_incident_is_recorded_against_the_run_it_opened(client, fn_app):
    post_pubsub(client, CLOUD_RUN_CPU, message_id="m-1")
    closed = incident(state="closed", ended_at=1767616200)
    assert post_pubsub(client, closed, message_id="m-3").status_code == 200
    opened = run_id_for("performance", "0.nxb4kzp1mq2a:open")
    [record] = [r for r in records(fn_app) if r.event_id == "0.nxb4kzp1mq2a:closed"]
    assert record.status == "accepted" and record.run_ids == [opened]
    assert len(fn_app.store.list_runs(task="performance")) == 1


def test_closed_incident_without_a_run_is_ignored(client, fn_app):
    post_pubsub(client, incident(state="closed"), message_id="m-4")
    [record] = records(fn_app)
    assert record.status == "ignored" and "no run was opened" in record.reason


def test_console_test_notification_is_ignored_with_the_reason(client, fn_app):
    assert post_pubsub(client, CONSOLE_TEST, message_id="m-5").status_code == 200
    [record] = records(fn_app)
    assert record.status == "ignored"
    assert record.event_id == "12345:open"  # upper-case OPEN understood
    assert "test.googleapis.com/metric" in record.reason
    assert not fn_app.store.list_runs(limit=None)


def test_ignored_incident_notified_again_keeps_the_first_record(client, fn_app):
    post_pubsub(client, CONSOLE_TEST, message_id="m-5")
    post_pubsub(client, CONSOLE_TEST, message_id="m-6")
    first, again = sorted(records(fn_app), key=lambda r: r.status, reverse=True)
    assert (first.status, first.payload["message_id"]) == ("ignored", "m-5")
    assert (again.status, again.payload["message_id"]) == ("duplicate", "m-6")
    assert again.reason.startswith("ignored again: ")


def latency(environment: str) -> dict[str, Any]:
    return incident(
        policy_user_labels={"environment": environment},
        metric__type="run.googleapis.com/request_latencies",
        condition__conditionThreshold__filter='metric.type="run.googleapis.com/request_latencies"',
        condition__conditionThreshold__thresholdValue=500,
        condition__conditionThreshold__duration="300s",
    )


def test_latency_rule_is_production_only(client, fn_app):
    post_pubsub(client, latency("staging"), message_id="m-6")
    [record] = records(fn_app)
    assert record.status == "ignored" and "production only" in record.reason and "staging" in record.reason


def test_latency_in_production_focuses_on_latency(client, fn_app):
    post_pubsub(client, latency("production"), message_id="m-7")
    [run] = fn_app.store.list_runs(task="performance")
    assert run.params["focus"] == "latency"


def test_policy_below_the_configured_rule_is_ignored(client, fn_app):
    post_pubsub(client, incident(condition__conditionThreshold__thresholdValue=0.5), message_id="m-8")
    [record] = records(fn_app)
    assert record.status == "ignored" and "below rule cpu" in record.reason


def test_policy_shorter_than_the_rule_is_ignored(client, fn_app):
    post_pubsub(client, incident(condition__conditionThreshold__duration="300s"), message_id="m-9")
    [record] = records(fn_app)
    assert record.status == "ignored" and "5 min" in record.reason


def test_error_ratio_policy_focuses_on_errors(client, fn_app):
    payload = incident(
        metric__type="run.googleapis.com/request_count",
        metric__labels={"response_code_class": "5xx"},
        condition__conditionThreshold__filter='metric.type="run.googleapis.com/request_count" '
        'AND metric.labels.response_code_class="5xx"',
        condition__conditionThreshold__denominatorFilter='metric.type="run.googleapis.com/request_count"',
        condition__conditionThreshold__thresholdValue=0.01,
        condition__conditionThreshold__duration="300s",
    )
    post_pubsub(client, payload, message_id="m-10")
    [run] = fn_app.store.list_runs(task="performance")
    assert run.params["focus"] == "errors"


def test_policy_label_names_the_metric(client, fn_app):
    payload = incident(
        policy_user_labels={"environment": "staging", "orchestra_metric": "memory"},
        metric=None,
        condition={
            "name": "c",
            "displayName": "PromQL memory",
            "conditionPrometheusQueryLanguage": {"query": "x"},
        },
    )
    post_pubsub(client, payload, message_id="m-11")
    [run] = fn_app.store.list_runs(task="performance")
    assert run.params["focus"] == "memory" and run.environment == "staging"


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"not json", "message.data"),
        ({"incident": {"state": "open"}, "version": "1.2"}, "incident.incident_id"),
        ({"incident": CLOUD_RUN_CPU["incident"], "version": "2.0"}, "unsupported notification schema"),
        (
            {"incident": {**CLOUD_RUN_CPU["incident"], "state": "acknowledged"}, "version": "1.2"},
            "incident.state",
        ),
        ({"version": "1.2"}, "incident"),
    ],
)
def test_malformed_notifications_are_rejected_and_acknowledged(client, fn_app, data, needle):
    assert post_pubsub(client, data, message_id="m-bad").status_code == 200
    [record] = records(fn_app)
    assert record.status == "rejected" and record.event_id == "m-bad"
    assert needle in record.reason
    assert not fn_app.store.list_runs(limit=None)


def test_unknown_environment_label_is_rejected(client, fn_app):
    post_pubsub(client, incident(policy_user_labels={"environment": "qa"}), message_id="m-12")
    [record] = records(fn_app)
    assert record.status == "rejected" and "qa" in record.reason


def test_mapping_defaults_to_the_default_environment(config):
    payload = incident(policy_user_labels={})
    mapping = map_incident(parse_notification(payload).incident, config)
    assert mapping.environment == "development" and mapping.rule_name == "cpu" and mapping.ignored is None


def test_opening_that_arrives_after_the_closing_starts_nothing(client, fn_app):
    post_pubsub(client, incident(state="closed"), message_id="m-13")
    post_pubsub(client, CLOUD_RUN_CPU, message_id="m-14")
    assert not fn_app.store.list_runs(limit=None)
    opened = [r for r in records(fn_app) if r.event_id.endswith(":open")]
    assert opened[0].status == "ignored" and "already closed" in opened[0].reason


def test_alert_params_are_accepted_by_the_real_performance_automation(config):
    from orchestra.events.alerts import request_for
    from orchestra.registry import registry

    for payload, focus in ((CLOUD_RUN_CPU, "cpu"), (latency("production"), "latency")):
        parsed = parse_notification(payload).incident
        request = request_for(parsed, map_incident(parsed, config), config, registry)
        assert request is not None and request.task == "performance"
        params = registry.get_class("performance").Params.model_validate(request.params)
        assert params.focus == focus and params.service == "checkout"


def test_a_message_id_is_one_trigger_whatever_incident_it_carries(client, fn_app):
    assert post_pubsub(client, CLOUD_RUN_CPU, message_id="m-20").status_code == 200
    runs_before = [r.model_dump(mode="json") for r in fn_app.store.list_runs(limit=None)]
    other = incident(incident_id="0.other-incident")
    response = post_pubsub(client, other, message_id="m-20")
    assert response.status_code == 200 and "Traceback" not in response.get_data(as_text=True)
    assert [r.model_dump(mode="json") for r in fn_app.store.list_runs(limit=None)] == runs_before
    duplicate = records(fn_app, "duplicate")[0]
    assert duplicate.event_id == "m-20" and "already delivered with other content" in duplicate.reason
    assert not [r for r in records(fn_app) if r.event_id.startswith("0.other-incident")]
    # The other incident, in a message of its own, is a trigger of its own.
    post_pubsub(client, other, message_id="m-21")
    assert len(fn_app.store.list_runs(limit=None)) == 2
