"""Cloud Monitoring for the deployment (terraform/observability.tf and the observability outputs
of modules/orchestra-config): the log-based metrics match the announcement lines the code
writes, the dashboard and the alert policies chart and watch only metrics that exist, and every
scheduled automation has its no-success alert with a window of twice its schedule's interval.

The configuration module is evaluated by Terraform itself (it has no provider); the log lines
come from real runs of the runner and the real announcer, formatted by the JSON formatter the
functions use on Google Cloud, and are put into a Cloud Logging entry as Cloud Run does."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import os
import re
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from croniter import croniter
from orchestra.announcements import Announcer
from orchestra.breaker import automation_breaker_name
from orchestra.clock import UTC, FakeClock, RandomIds
from orchestra.config import parse_config
from orchestra.logs import JsonFormatter
from orchestra.models import DeadLetter, Mode, Run, RunStatus, TriggerKind
from orchestra.registry import registry as default_registry
from orchestra.runner import Runner, RunRequest
from orchestra.store.sqlite import SqliteStateStore

from tests.runner.automations import build_registry

from .conftest import CONFIG_MODULE, DEFAULT_CONFIG, ROOT, TERRAFORM_DIR, Terraform, terraform_env

ENVIRONMENT = "production"
DEPLOYMENT = f"orchestra-{ENVIRONMENT}"
START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ABSENCE_LIMIT_MINUTES = 1410  # Cloud Monitoring: a metric-absence window is at most 23.5 hours
EXPECTED_METRICS = {
    "runs",
    "actions_applied",
    "actions_rolled_back",
    "breaker_transitions",
    "dead_letters",
    "cost_anomalies",
    "deployment_outcomes",
}


def function_services(tf: Terraform) -> list[str]:
    """The Cloud Run service of each function, named as terraform/main.tf names them."""
    return [f"{DEPLOYMENT}-{name.replace('_', '-')}" for name in tf.locals()["functions"]]


# ----- evaluating the module ----------------------------------------------------------------


@dataclass
class ModuleRun:
    returncode: int
    outputs: dict[str, Any]
    stderr: str


@pytest.fixture(scope="module")
def evaluate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., ModuleRun]]:
    """terraform apply of a root that calls the configuration module as observability.tf does."""
    work = tmp_path_factory.mktemp("tf-observability")
    env = terraform_env(work)
    (work / "main.tf").write_text(
        f"""
variable "config_file" {{ type = string }}
variable "environment" {{ type = string }}
variable "log_services" {{ type = list(string) }}
variable "metric_prefix" {{ type = string }}
module "observability" {{
  source        = "{os.path.relpath(CONFIG_MODULE, work)}"
  config_file   = var.config_file
  environment   = var.environment
  log_services  = var.log_services
  metric_prefix = var.metric_prefix
}}
output "log_metrics" {{ value = module.observability.log_metrics }}
output "no_success_alerts" {{ value = module.observability.no_success_alerts }}
output "observability_alerts" {{ value = module.observability.observability_alerts }}
output "dashboard_json" {{ value = module.observability.dashboard_json }}
output "schedule_jobs" {{ value = module.observability.schedule_jobs }}
"""
    )
    init = subprocess.run(
        ["terraform", "init", "-backend=false", "-input=false", "-no-color"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert init.returncode == 0, init.stdout + init.stderr
    counter = iter(range(1_000_000))

    def run(config_file: Path, services: list[str], environment: str = ENVIRONMENT) -> ModuleRun:
        state = work / f"run-{next(counter)}.tfstate"
        applied = subprocess.run(
            [
                "terraform",
                "apply",
                "-auto-approve",
                "-input=false",
                "-no-color",
                f"-state={state}",
                f"-var=config_file={config_file}",
                f"-var=environment={environment}",
                f"-var=log_services={json.dumps(services)}",
                f"-var=metric_prefix=orchestra-{environment}",
            ],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        if applied.returncode != 0:
            return ModuleRun(applied.returncode, {}, applied.stdout + applied.stderr)
        shown = subprocess.run(
            ["terraform", "output", "-json", f"-state={state}"],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert shown.returncode == 0, shown.stderr
        outputs = {name: item["value"] for name, item in json.loads(shown.stdout).items()}
        return ModuleRun(0, outputs, applied.stderr)

    yield run


@pytest.fixture(scope="module")
def derived(evaluate: Callable[..., ModuleRun], tf: Terraform) -> dict[str, Any]:
    run = evaluate(DEFAULT_CONFIG, function_services(tf))
    assert run.returncode == 0, run.stderr
    return run.outputs


# ----- a Cloud Logging filter evaluator (the subset the metrics use) --------------------------

_TOKEN = re.compile(
    r'\s*(?:(?P<string>"(?:[^"\\]|\\.)*")|(?P<word>AND|OR)\b|(?P<path>[A-Za-z_][\w.]*)|(?P<op>:\*|[=:()]))'
)
_PATH = re.compile(r"^(resource\.type|resource\.labels\.[a-z_]+|jsonPayload(\.[A-Za-z_][A-Za-z0-9_]*)+)$")


@dataclass(frozen=True)
class Comparison:
    path: str
    op: str  # "=" (one of the values) or "has" (the field is present)
    values: tuple[str, ...]


class FilterSyntaxError(ValueError):
    pass


def parse_logging_filter(text: str) -> list[Comparison]:
    """A conjunction of comparisons: ``PATH="v"``, ``PATH=("a" OR "b")`` and ``PATH:*``, on
    ``resource.type``, ``resource.labels.*`` and ``jsonPayload.*``. Anything else is refused
    (with where it stopped), so a filter outside the subset cannot pass unnoticed."""
    tokens: list[tuple[str, str, int]] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            raise FilterSyntaxError(
                f"unexpected text at column {position}: {text[position : position + 20]!r}"
            )
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind), position))
        position = match.end()
    comparisons: list[Comparison] = []
    index = 0

    def take(kind: str, value: str | None = None) -> str:
        nonlocal index
        if index >= len(tokens):
            raise FilterSyntaxError(f"filter ends where a {value or kind} was expected")
        got_kind, got, column = tokens[index]
        if got_kind != kind or (value is not None and got != value):
            raise FilterSyntaxError(f"column {column}: expected {value or kind}, found {got!r}")
        index += 1
        return got

    while True:
        path = take("path")
        if not _PATH.match(path):
            raise FilterSyntaxError(
                f"field {path!r} is outside resource.type, resource.labels.*, jsonPayload.*"
            )
        op = take("op")
        if op == ":*":
            comparisons.append(Comparison(path, "has", ()))
        elif op == "=":
            if tokens[index][0] == "string":
                comparisons.append(Comparison(path, "=", (json.loads(take("string")),)))
            else:
                take("op", "(")
                values = [json.loads(take("string"))]
                while tokens[index][1] == "OR":
                    take("word", "OR")
                    values.append(json.loads(take("string")))
                take("op", ")")
                comparisons.append(Comparison(path, "=", tuple(values)))
        else:
            raise FilterSyntaxError(f"operator {op!r} after {path} is not one of =, :*")
        if index == len(tokens):
            return comparisons
        take("word", "AND")


_MISSING = object()


def field(entry: dict[str, Any], path: str) -> Any:
    value: Any = entry
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def matches(comparisons: list[Comparison], entry: dict[str, Any]) -> bool:
    for comparison in comparisons:
        value = field(entry, comparison.path)
        if comparison.op == "has":
            if value is _MISSING or value is None:
                return False
        elif value is _MISSING or str(value) not in comparison.values:
            return False
    return True


_EXTRACT = re.compile(r"^EXTRACT\((?P<path>[\w.]+)\)$")
_REGEXP_EXTRACT = re.compile(r'^REGEXP_EXTRACT\((?P<path>[\w.]+), (?P<regex>"(?:[^"\\]|\\.)*")\)$')


def extract(extractor: str, entry: dict[str, Any]) -> Any:
    """EXTRACT(path) and REGEXP_EXTRACT(path, "regex") (the first group), as Cloud Logging reads
    a label or value from an entry; _MISSING when the field or the match is absent."""
    simple = _EXTRACT.match(extractor)
    if simple:
        return field(entry, simple.group("path"))
    regexp = _REGEXP_EXTRACT.match(extractor)
    assert regexp, f'extractor {extractor!r} is neither EXTRACT(field) nor REGEXP_EXTRACT(field, "re")'
    value = field(entry, regexp.group("path"))
    pattern = re.compile(json.loads(regexp.group("regex")))
    assert pattern.groups == 1, f"{extractor}: REGEXP_EXTRACT needs exactly one capture group"
    found = pattern.search(str(value)) if value is not _MISSING else None
    return found.group(1) if found else _MISSING


# ----- real announcement lines ----------------------------------------------------------------

# Fields Cloud Run's logging agent lifts out of a JSON line into the LogEntry itself.
_LIFTED = ("severity", "time", "logging.googleapis.com/trace")


def log_entry(line: str, service: str) -> dict[str, Any]:
    """One JSON line of a function's stderr as the Cloud Logging entry Cloud Run makes of it."""
    payload = json.loads(line)
    return {
        "severity": payload.get("severity"),
        "resource": {
            "type": "cloud_run_revision",
            "labels": {
                "service_name": service,
                "revision_name": f"{service}-00001-abc",
                "location": "europe-west1",
            },
        },
        "logName": "projects/p/logs/run.googleapis.com%2Fstderr",
        "jsonPayload": {k: v for k, v in payload.items() if k not in _LIFTED},
    }


@pytest.fixture(scope="module")
def announcement_lines(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Runs through the real runner (a cost analysis of the bundled billing export that finds
    anomalies, a failing run, a rolled-back and an applied change), which announce themselves
    through the runner's announcer; then a breaker opening and closing, a deployment changing state and a dead
    letter stored. Every line as the JSON formatter writes it."""
    tmp = tmp_path_factory.mktemp("announcements")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("tests.observability.announcements")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    clock = FakeClock(START)
    announcer = Announcer(source="//orchestra/test-project", clock=clock, ids=RandomIds(5), logger=logger)
    runs: list[Run] = []

    config = parse_config(DEFAULT_CONFIG.read_text(), str(DEFAULT_CONFIG))
    store = SqliteStateStore(tmp / "cost.db")
    try:
        runner = Runner(
            config,
            store,
            clock=clock,
            ids=RandomIds(1),
            registry=default_registry,
            heartbeat_in_background=False,
            announcer=announcer,
        )
        request = RunRequest(
            task="cost",
            trigger_kind=TriggerKind.scheduled,
            trigger_id="schedule:cost:production:2026-03-02T06:00:00Z",
            environment=ENVIRONMENT,
            mode=Mode.analyze,
        )
        runs.append(runner.submit(request).run)
    finally:
        store.close()

    test_config = parse_config(
        "default_environment: development\nenvironments:\n  development: {automation_level: 3}\n", "test"
    )
    target = {"target": str(tmp / "service.json"), "counter": str(tmp / "calls.log")}
    store = SqliteStateStore(tmp / "runner.db")
    try:
        runner = Runner(
            test_config,
            store,
            clock=clock,
            ids=RandomIds(2),
            registry=build_registry(),
            heartbeat_in_background=False,
            announcer=announcer,
        )
        for trigger, task, params in (
            ("broken", "noop", {"permanent_failure": True}),
            ("bad-change", "tuner", {**target, "verify_ok": False}),
            ("good-change", "tuner", {**target, "value": 3, "risks": ["low", "low"]}),
        ):
            runs.append(
                runner.submit(
                    RunRequest(
                        task=task,
                        params=params,
                        mode=Mode.apply,
                        automation_level=3,
                        trigger_kind=TriggerKind.event,
                        trigger_id=trigger,
                        requested_by="alice",
                    )
                ).run
            )
    finally:
        store.close()
    assert [run.status for run in runs] == [
        RunStatus.succeeded,
        RunStatus.failed,
        RunStatus.rolled_back,
        RunStatus.succeeded,
    ]
    key = automation_breaker_name("cost", ENVIRONMENT)
    announcer.breaker_changed(key, opened=True, failures=3, open_until=START + dt.timedelta(minutes=5))
    announcer.breaker_changed(key, opened=False, failures=0, open_until=None)
    announcer.breaker_changed("dependency:bigquery", opened=True, failures=5, open_until=None)
    announcer.deployment_changed(
        "dep-1",
        environment=ENVIRONMENT,
        revision="abc123",
        from_state=None,
        to_state="pending",
        service="api",
    )
    announcer.deployment_changed(
        "dep-1",
        environment=ENVIRONMENT,
        revision="abc123",
        from_state="pending",
        to_state="deployed",
        service="api",
    )
    announcer.dead_letter_stored(
        DeadLetter(
            id="dl-1",
            message_id="m-1",
            origin=f"projects/p/subscriptions/{DEPLOYMENT}-scheduled",
            delivery_attempt=5,
            received_at=START,
        )
    )
    logger.removeHandler(handler)
    lines = [line for line in stream.getvalue().splitlines() if line]
    assert len(lines) == 10, lines
    return lines


def entries(lines: list[str], service: str) -> list[dict[str, Any]]:
    return [log_entry(line, service) for line in lines]


def announced(entry: dict[str, Any]) -> str:
    return str(entry["jsonPayload"]["announcement"])


# ----- log-based metrics ----------------------------------------------------------------------


def test_the_evaluator_refuses_what_it_does_not_understand() -> None:
    assert parse_logging_filter('jsonPayload.a="x" AND resource.type=("a" OR "b") AND jsonPayload.b:*') == [
        Comparison("jsonPayload.a", "=", ("x",)),
        Comparison("resource.type", "=", ("a", "b")),
        Comparison("jsonPayload.b", "has", ()),
    ]
    for bad in (
        'jsonPayload.a="x" OR jsonPayload.b="y"',
        'jsonPayload.a!="x"',
        'textPayload="x"',
        'jsonPayload.a="x" AND',
        'jsonPayload.a=("x" AND "y")',
    ):
        with pytest.raises(FilterSyntaxError):
            parse_logging_filter(bad)
    entry = {"jsonPayload": {"a": "x", "n": {"k": 2}}}
    assert extract("EXTRACT(jsonPayload.n.k)", entry) == 2
    assert extract('REGEXP_EXTRACT(jsonPayload.a, "(x)")', entry) == "x"
    assert extract("EXTRACT(jsonPayload.n.missing)", entry) is _MISSING


def test_every_metric_is_defined_with_a_valid_filter_shape(derived: dict[str, Any], tf: Terraform) -> None:
    metrics = derived["log_metrics"]
    assert set(metrics) == EXPECTED_METRICS
    services = function_services(tf)
    for key, metric in metrics.items():
        comparisons = parse_logging_filter(metric["filter"])
        by_path = {c.path: c for c in comparisons}
        # Restricted to this deployment's functions and to announcement lines.
        assert by_path["resource.type"].values == ("cloud_run_revision",), key
        assert set(by_path["resource.labels.service_name"].values) == set(services), key
        assert all(v.startswith("dev.orchestra.") for v in by_path["jsonPayload.announcement"].values), key
        # Names: unique per deployment, a valid log-based metric name, its Monitoring type and
        # its PromQL name (first "/" -> ":", other special characters -> "_").
        assert metric["name"] == f"{DEPLOYMENT}/{key}"
        assert re.fullmatch(r"[A-Za-z0-9_\-./]{1,100}", metric["name"])
        assert metric["type"] == f"logging.googleapis.com/user/{metric['name']}"
        head, rest = metric["type"].split("/", 1)
        assert metric["promql"] == re.sub(r"[^A-Za-z0-9_:]", "_", f"{head}:{rest}")
        assert len(metric["labels"]) <= 10 and all(
            re.fullmatch(r"[a-z][a-z0-9_]{0,99}", k) for k in metric["labels"]
        )
        assert (metric["kind"] == "distribution") == (metric["value_extractor"] is not None), key


def test_metric_filters_match_the_lines_the_code_writes(
    derived: dict[str, Any], tf: Terraform, announcement_lines: list[str]
) -> None:
    metrics = derived["log_metrics"]
    service = f"{DEPLOYMENT}-scheduled"
    written = entries(announcement_lines, service)
    matched = {
        key: [e for e in written if matches(parse_logging_filter(m["filter"]), e)]
        for key, m in metrics.items()
    }
    run_lines = [e for e in written if announced(e) == "dev.orchestra.run.finished.v1"]
    assert len(matched["runs"]) == len(run_lines) == 4
    assert matched["actions_applied"] == matched["actions_rolled_back"] == run_lines
    # Only the cost run that found anomalies.
    assert [e["jsonPayload"]["data"]["task"] for e in matched["cost_anomalies"]] == ["cost"]
    assert [announced(e) for e in matched["breaker_transitions"]] == [
        "dev.orchestra.breaker.opened.v1",
        "dev.orchestra.breaker.closed.v1",
        "dev.orchestra.breaker.opened.v1",
    ]
    assert len(matched["deployment_outcomes"]) == 2
    assert len(matched["dead_letters"]) == 1
    # Every line the metrics count, and nothing else (the approval line is not charted).
    counted = {id(e) for found in matched.values() for e in found}
    assert {announced(e) for e in written if id(e) not in counted} <= {"dev.orchestra.approval.awaiting.v1"}
    # Another deployment's functions, or another service of the project, are not counted.
    for foreign in ("orchestra-staging-scheduled", "api"):
        for key, metric in metrics.items():
            assert not any(
                matches(parse_logging_filter(metric["filter"]), e)
                for e in entries(announcement_lines, foreign)
            ), f"{key} counts lines of {foreign}"
    # Every function of the deployment is counted (the breaker and dead letters come from any).
    for name in function_services(tf):
        assert any(
            matches(parse_logging_filter(metrics["runs"]["filter"]), e)
            for e in entries(announcement_lines, name)
        )


def test_label_and_value_extractors_read_fields_that_exist(
    derived: dict[str, Any], announcement_lines: list[str]
) -> None:
    written = entries(announcement_lines, f"{DEPLOYMENT}-controller")
    statuses = set()
    for key, metric in derived["log_metrics"].items():
        for entry in [e for e in written if matches(parse_logging_filter(metric["filter"]), e)]:
            labels = {name: extract(label["extractor"], entry) for name, label in metric["labels"].items()}
            assert all(v is not _MISSING and v is not None for v in labels.values()), (key, labels)
            data = entry["jsonPayload"]["data"]
            if key == "runs":
                assert labels == {
                    "task": data["task"],
                    "environment": data["environment"],
                    "status": data["status"],
                }
                statuses.add(labels["status"])
            if key == "breaker_transitions":
                assert labels["transition"] == announced(entry).split(".")[3]
                assert labels["key"] == data["key"] and labels["scope"] == data["scope"]
            if key == "deployment_outcomes":
                assert labels["to_state"] == data["to_state"]
            if metric["value_extractor"] is not None:
                value = extract(metric["value_extractor"], entry)
                assert isinstance(value, int) and value >= 0, (key, value)
                if key == "cost_anomalies":
                    assert value == data["finding_kinds"]["anomaly"] > 0
                if key == "actions_applied":
                    assert value == data["counts"]["applied"]
    assert statuses == {"succeeded", "failed", "rolled_back"}
    applied = [extract(derived["log_metrics"]["actions_applied"]["value_extractor"], e) for e in written]
    rolled_back = [
        extract(derived["log_metrics"]["actions_rolled_back"]["value_extractor"], e) for e in written
    ]
    assert 2 in applied and 1 in rolled_back


def test_logging_metric_resources_take_the_derived_definitions(tf: Terraform) -> None:
    metric = tf.resources("google_logging_metric")["orchestra"]
    assert metric["for_each"] == "${module.observability.log_metrics}"
    assert metric["filter"] == "${each.value.filter}" and metric["name"] == "${each.value.name}"
    assert metric["value_extractor"] == "${each.value.value_extractor}"
    assert "label.extractor" in metric["label_extractors"]
    descriptor = metric["metric_descriptor"][0]
    assert descriptor["metric_kind"] == "DELTA"
    assert "DISTRIBUTION" in descriptor["value_type"] and "INT64" in descriptor["value_type"]
    module = tf.modules()["observability"]
    assert module["log_services"] == "${values(local.function_names)}"
    assert (
        module["metric_prefix"] == "${local.name}" and tf.locals()["name"] == "orchestra-${var.environment}"
    )
    assert module["config_file"] == "${local.config_file}"


# ----- dashboard and alert policies -----------------------------------------------------------

_MONITORING_TYPE = re.compile(r'metric\.type="([^"]+)"')
_MONITORING_LABEL = re.compile(r"metric\.labels?\.([a-z_]+)")
_PROMQL_METRIC = re.compile(r"(logging_googleapis_com:user_[A-Za-z0-9_]+)(\{[^}]*\})?")
_PROMQL_BY = re.compile(r"by \(([^)]*)\)")


def check_monitoring_filter(text: str, metrics: dict[str, Any], where: str) -> str:
    types = _MONITORING_TYPE.findall(text)
    by_type = {m["type"]: key for key, m in metrics.items()}
    assert len(types) == 1 and types[0] in by_type, f"{where}: {text} names no defined metric"
    key = by_type[types[0]]
    for label in _MONITORING_LABEL.findall(text):
        assert label in metrics[key]["labels"], f"{where}: label {label} is not a label of {key}"
    return key


def check_promql(query: str, metrics: dict[str, Any], where: str) -> set[str]:
    by_name = {m["promql"]: key for key, m in metrics.items()}
    used: set[str] = set()
    found = _PROMQL_METRIC.findall(query)
    assert found, f"{where}: {query} reads no log-based metric"
    for name, selector in found:
        key = by_name.get(name)
        if key is None:
            base, _, suffix = name.rpartition("_")
            key = by_name.get(base)
            assert (
                key is not None
                and metrics[key]["kind"] == "distribution"
                and suffix in ("sum", "count", "bucket")
            ), f"{where}: {name} is not a defined metric"
        used.add(key)
        labels = set(re.findall(r'([a-z_]+)="', selector)) - {"monitored_resource"}
        assert labels <= set(metrics[key]["labels"]), f"{where}: {labels} not labels of {key}"
        assert 'monitored_resource="cloud_run_revision"' in selector, (
            f"{where}: {name} without its resource type"
        )
    for grouped in _PROMQL_BY.findall(query):
        for label in (g.strip() for g in grouped.split(",")):
            assert any(label in metrics[k]["labels"] for k in used), f"{where}: groups by unknown {label}"
    return used


def test_every_dashboard_tile_charts_a_defined_metric(derived: dict[str, Any], tf: Terraform) -> None:
    metrics = derived["log_metrics"]
    dashboard = json.loads(derived["dashboard_json"])
    tiles = dashboard["mosaicLayout"]["tiles"]
    charted: set[str] = set()
    for tile in tiles:
        widget = tile["widget"]
        assert 0 <= tile["xPos"] and tile["xPos"] + tile["width"] <= dashboard["mosaicLayout"]["columns"]
        for data_set in widget["xyChart"]["dataSets"]:
            query = data_set["timeSeriesQuery"]
            if "timeSeriesFilter" in query:
                series = query["timeSeriesFilter"]
                key = check_monitoring_filter(series["filter"], metrics, widget["title"])
                for group in series["aggregation"]["groupByFields"]:
                    assert group.removeprefix("metric.label.") in metrics[key]["labels"], (
                        widget["title"],
                        group,
                    )
                charted.add(key)
            else:
                charted |= check_promql(query["prometheusQuery"], metrics, widget["title"])
    # Tiles do not overlap.
    cells = [(t["xPos"], t["yPos"]) for t in tiles]
    assert len(cells) == len(set(cells))
    titles = " | ".join(t["widget"]["title"] for t in tiles).lower()
    for wanted in ("runs by status", "by task", "breakers", "dead letters", "cost anomalies", "deployment"):
        assert wanted in titles
    assert charted == EXPECTED_METRICS
    resource = tf.resources("google_monitoring_dashboard")["orchestra"]
    assert resource["dashboard_json"] == "${module.observability.dashboard_json}"


def test_alert_policies_watch_defined_metrics(derived: dict[str, Any], tf: Terraform) -> None:
    metrics = derived["log_metrics"]
    alerts = derived["observability_alerts"]
    assert check_monitoring_filter(alerts["dead_letter_filter"], metrics, "dead letters") == "dead_letters"
    assert check_promql(alerts["breaker_open_query"], metrics, "breaker open") == {"breaker_transitions"}
    assert (
        'transition="opened"' in alerts["breaker_open_query"]
        and 'transition="closed"' in alerts["breaker_open_query"]
    )
    for alert in derived["no_success_alerts"].values():
        assert check_monitoring_filter(alert["filter"], metrics, alert["task"]) == "runs"
        assert check_promql(alert["promql"], metrics, alert["task"]) == {"runs"}
    policies = tf.resources("google_monitoring_alert_policy")
    dead = policies["dead_letters"]["conditions"][0]["condition_threshold"][0]
    assert dead["filter"] == "${module.observability.observability_alerts.dead_letter_filter}"
    assert dead["comparison"] == "COMPARISON_GT" and dead["threshold_value"] == 0
    assert dead["aggregations"][0]["group_by_fields"] == ["metric.label.origin"]
    breaker = policies["breaker_open"]["conditions"][0]["condition_prometheus_query_language"][0]
    assert breaker["query"] == "${module.observability.observability_alerts.breaker_open_query}"
    # Only the operator's channels: the alerts topic starts performance runs.
    for name in ("dead_letters", "breaker_open", "no_success"):
        assert policies[name]["notification_channels"] == "${var.notification_channels}", name
    assert tf.variables()["notification_channels"]["default"] == []


def _interval_minutes(cron: str) -> int:
    """The longest gap between two firings over a year (what the module must derive)."""
    it = croniter(cron, dt.datetime(2026, 1, 1, tzinfo=UTC))
    previous = it.get_next(dt.datetime)
    gap = dt.timedelta(0)
    for _ in range(600):
        current = it.get_next(dt.datetime)
        gap = max(gap, current - previous)
        previous = current
    return int(gap.total_seconds() // 60)


def test_every_scheduled_automation_has_its_no_success_alert(derived: dict[str, Any], tf: Terraform) -> None:
    jobs = derived["schedule_jobs"]
    alerts = derived["no_success_alerts"]
    assert jobs and set(alerts) == set(jobs)
    shapes = set()
    for key, job in jobs.items():
        alert = alerts[key]
        interval = _interval_minutes(job["schedule"])
        shapes.add(interval)
        assert alert["interval_minutes"] == interval, (key, job["schedule"])
        assert alert["after_minutes"] == 2 * interval and alert["duration_seconds"] == 120 * interval
        assert (alert["task"], alert["environment"]) == (job["task"], job["environment"])
        assert f'metric.labels.task="{job["task"]}"' in alert["filter"]
        assert f'metric.labels.environment="{job["environment"]}"' in alert["filter"]
        assert 'metric.labels.status="succeeded"' in alert["filter"]
        assert alert["condition"] == ("absent" if 2 * interval <= ABSENCE_LIMIT_MINUTES else "promql")
        assert alert["promql"].startswith("absent_over_time(") and alert["promql"].endswith(
            f"[{2 * interval}m])"
        )
    # The default configuration's shapes: every 30 minutes, hourly, daily.
    assert {30, 60, 1440} <= shapes
    policy = tf.resources("google_monitoring_alert_policy")["no_success"]
    assert policy["for_each"] == "${module.observability.no_success_alerts}"
    conditions = policy["conditions"][0]["dynamic"]
    absent = next(d["condition_absent"] for d in conditions if "condition_absent" in d)
    promql = next(
        d["condition_prometheus_query_language"]
        for d in conditions
        if "condition_prometheus_query_language" in d
    )
    assert absent["content"][0]["duration"] == "${condition_absent.value.duration_seconds}s"
    assert absent["content"][0]["filter"] == "${condition_absent.value.filter}"
    # Summed across revisions, so a new revision's series is not an absence.
    assert absent["content"][0]["aggregations"][0]["cross_series_reducer"] == "REDUCE_SUM"
    assert promql["content"][0]["query"] == "${condition_prometheus_query_language.value.promql}"


CUSTOM = """
environments: {development: {}, production: {}}
default_environment: development
automations:
  cost: {schedule: "0 7 * * 1", environments: [production]}
  performance: {schedule: "15 */6 * * *"}
  testing: {schedule: "*/5 * * * *"}
  infrastructure: {schedule: "30 4 12 * *"}
  ai-services: {schedule: "0 9,17 * * *", alert_after_minutes: 960}
"""


def test_intervals_follow_the_configured_schedules(
    evaluate: Callable[..., ModuleRun], tmp_path: Path
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(CUSTOM)
    parse_config(CUSTOM)  # the library accepts it too
    run = evaluate(config, ["orchestra-production-scheduled"])
    assert run.returncode == 0, run.stderr
    alerts = run.outputs["no_success_alerts"]
    got = {key: (a["interval_minutes"], a["after_minutes"], a["condition"]) for key, a in alerts.items()}
    assert got == {
        "cost-production": (10080, 20160, "promql"),
        "performance-production": (360, 720, "absent"),
        "testing-production": (5, 10, "absent"),
        "infrastructure-production": (_interval_minutes("30 4 12 * *"), 2 * 44640, "promql"),
        # Two firings a day: no single interval; the configured window is used as given.
        "ai-services-production": (None, 960, "absent"),
    }
    assert _interval_minutes("30 4 12 * *") <= 44640
    assert alerts["cost-production"]["promql"].endswith("[20160m])")


def test_a_schedule_without_a_derivable_interval_needs_alert_after_minutes(
    evaluate: Callable[..., ModuleRun], tmp_path: Path
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(CUSTOM.replace(", alert_after_minutes: 960", ""))
    run = evaluate(config, ["orchestra-production-scheduled"])
    assert run.returncode != 0
    assert 'cannot derive the interval of the schedule of ai-services ("0 9,17 * * *")' in run.stderr
    assert "alert_after_minutes" in run.stderr


def test_alert_after_minutes_is_validated_by_the_library() -> None:
    base = "environments: {development: {}}\nautomations:\n  cost: {schedule: '0 6 * * *', alert_after_minutes: %s}\n"
    assert parse_config(base % 90).automations["cost"].alert_after_minutes == 90
    for bad in ("1", "0", "600000", "soon"):
        with pytest.raises(Exception, match="alert_after_minutes"):
            parse_config(base % bad)


# ----- documentation --------------------------------------------------------------------------


def test_readme_documents_the_monitoring(derived: dict[str, Any]) -> None:
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"^## Monitoring\n(.*?)(?=^## )", readme, re.S | re.M)
    assert match, "README.md has no '## Monitoring' section"
    section = match.group(1)
    for key, metric in derived["log_metrics"].items():
        assert f"`{key}`" in section, f"README Monitoring does not list the metric {key}"
        for label in metric["labels"]:
            assert f"`{label}`" in section, f"README Monitoring does not name the label {label} of {key}"
    assert "notification_channels" in section and "alert_after_minutes" in section
    assert (TERRAFORM_DIR / "observability.tf").is_file()
