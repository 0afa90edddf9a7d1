"""Static checks of terraform/: formatting, the wiring every production deployment needs, and
that schedules and alert thresholds come from the configuration file the code reads."""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from orchestra.config import parse_config
from orchestra.events.alerts import ENVIRONMENT_LABEL, METRIC_LABEL, Incident, map_incident
from orchestra.metrics.cloud_monitoring import ERRORS_5XX, QUERIES
from orchestra.registry import registry
from orchestra.scheduling import configured_schedules
from orchestra.store.base import TTL_COLLECTIONS
from orchestra.store.firestore import TTL_FIELD

from .conftest import DEFAULT_CONFIG, ROOT, TERRAFORM_DIR, Terraform, terraform_env

# The functions' fixed contracts: directory -> entry point, and how each is triggered.
CONTRACTS = {
    "scheduled": ("scheduled_task", "push"),
    "alerts": ("monitoring_alert", "push"),
    "controller": ("controller", "http"),
    "webhooks": ("repo_webhook", "http"),
    "dead_letter": ("dead_letter", "eventarc"),
}
EVENT_TIMEOUT_LIMIT = 540  # gen2 event-driven functions
PUBLIC_MEMBERS = ("allUsers", "allAuthenticatedUsers")


def one(block: Any) -> dict[str, Any]:
    """A nested block parsed by hcl2 is a list of one dict."""
    assert isinstance(block, list) and len(block) == 1, block
    return block[0]


def dynamic(body: dict[str, Any], name: str) -> dict[str, Any]:
    for entry in body.get("dynamic", []):
        if name in entry:
            return entry[name]
    raise AssertionError(f"no dynamic {name!r} block")


# ----- formatting -----------------------------------------------------------------------------


def test_terraform_fmt_check(terraform_bin: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [terraform_bin, "fmt", "-check", "-recursive", "-diff", "-no-color", str(TERRAFORM_DIR)],
        env=terraform_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, f"terraform fmt would change files:\n{result.stdout}{result.stderr}"


def test_config_module_validates(terraform_bin: str, tmp_path: Path) -> None:
    """The provider-free module can be fully validated offline (the root needs providers)."""
    module = TERRAFORM_DIR / "modules" / "orchestra-config"
    env = terraform_env(tmp_path) | {"TF_DATA_DIR": str(tmp_path / "data")}
    init = subprocess.run(
        [terraform_bin, f"-chdir={module}", "init", "-backend=false", "-input=false", "-no-color"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert init.returncode == 0, init.stdout + init.stderr
    validate = subprocess.run(
        [terraform_bin, f"-chdir={module}", "validate", "-no-color"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert validate.returncode == 0, validate.stdout + validate.stderr


# ----- references: a cheap stand-in for `terraform validate` (providers cannot be fetched) -----

_REF = re.compile(
    r"\b(var|local|module|data|google_[a-z0-9_]+|random_[a-z0-9_]+)\.([a-z0-9_-]+)(?:\.([a-z0-9_-]+))?"
)


def _expressions(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if "${" in value else []
    if isinstance(value, dict):
        return [e for k, v in value.items() for e in _expressions(k) + _expressions(v)]
    if isinstance(value, list):
        return [e for v in value for e in _expressions(v)]
    return []


def test_every_reference_is_declared(tf: Terraform) -> None:
    variables = set(tf.variables())
    locals_ = set(tf.locals())
    modules = set(tf.modules())
    data = set(tf.data())
    resources = set(tf.all_resources())
    problems = []
    for path, doc in tf.files.items():
        if path.parent != TERRAFORM_DIR:
            continue
        for expr in _expressions(doc):
            for kind, name, attr in _REF.findall(expr):
                if kind == "var" and name not in variables:
                    problems.append(f"{path.name}: var.{name}")
                elif kind == "local" and name not in locals_:
                    problems.append(f"{path.name}: local.{name}")
                elif kind == "module" and name not in modules:
                    problems.append(f"{path.name}: module.{name}")
                elif kind == "data" and f"{name}.{attr}" not in data:
                    problems.append(f"{path.name}: data.{name}.{attr}")
                elif kind.startswith(("google_", "random_")) and f"{kind}.{name}" not in resources:
                    problems.append(f"{path.name}: {kind}.{name}")
    assert not problems, "undeclared references:\n" + "\n".join(sorted(set(problems)))


# ----- the five functions ---------------------------------------------------------------------


def test_functions_match_their_contracts(tf: Terraform) -> None:
    functions = tf.locals()["functions"]
    assert set(functions) == set(CONTRACTS)
    for name, (entry, trigger) in CONTRACTS.items():
        assert functions[name]["entry_point"] == entry
        assert functions[name]["trigger"] == trigger
        main = ROOT / "functions" / name / "main.py"
        assert main.is_file(), f"{main} missing"
        defined = {n.name for n in ast.parse(main.read_text()).body if isinstance(n, ast.FunctionDef)}
        assert entry in defined, f"{main} defines no {entry}()"


def test_functions_are_gen2_python311_from_the_packaged_archives(tf: Terraform) -> None:
    fn = tf.resources("google_cloudfunctions2_function")["fn"]
    assert fn["for_each"] == "${local.functions}"
    build = one(fn["build_config"])
    assert build["runtime"] == "python311"
    assert build["entry_point"] == "${each.value.entry_point}"
    storage = one(one(build["source"])["storage_source"])
    assert storage["object"] == "${google_storage_bucket_object.source[each.key].name}"
    obj = tf.resources("google_storage_bucket_object")["source"]
    assert obj["source"] == "${local.build_dir}/${each.key}.zip"
    # Content-addressed object name: a code change redeploys.
    assert "filemd5(" in obj["name"]
    # `make package` writes build/functions/NAME.zip at the repository root.
    assert "${path.module}/../build/functions" in tf.locals()["build_dir"]


def test_every_function_has_a_trigger_with_retries(tf: Terraform) -> None:
    functions = tf.locals()["functions"]
    fn = tf.resources("google_cloudfunctions2_function")["fn"]
    subscriptions = tf.resources("google_pubsub_subscription")
    jobs = tf.resources("google_cloud_scheduler_job")
    invokers = tf.resources("google_cloud_run_service_iam_member")

    # Eventarc: the dead-letter function, with the platform's exponential retries.
    trigger = dynamic(fn, "event_trigger")
    assert trigger["for_each"] == '${each.value.trigger == "eventarc" ? [each.value.topic] : []}'
    content = one(trigger["content"])
    assert content["retry_policy"] == "RETRY_POLICY_RETRY"
    assert content["event_type"] == "google.cloud.pubsub.topic.v1.messagePublished"
    assert content["service_account_email"] == "${google_service_account.trigger.email}"
    assert (
        invokers["trigger_invoker"]["service"] == '${google_cloudfunctions2_function.fn["dead_letter"].name}'
    )

    # Push: one subscription per push function, to that function's URL, with exponential retry.
    push = subscriptions["push"]
    assert (
        tf.locals()["push_functions"]
        == '${{for name, fn in local.functions : name => fn if fn.trigger == "push"}}'
    )
    assert push["for_each"] == "${local.push_functions}"
    config = one(push["push_config"])
    assert config["push_endpoint"].startswith("${local.function_urls[each.key]}/")
    assert (
        one(config["oidc_token"])["service_account_email"] == "${google_service_account.push[each.key].email}"
    )
    retry = one(push["retry_policy"])
    assert retry["minimum_backoff"] == "10s" and retry["maximum_backoff"] == "600s"
    assert invokers["push_invoker"]["for_each"] == "${local.push_functions}"
    # The ack deadline covers the whole function run.
    assert push["ack_deadline_seconds"] >= EVENT_TIMEOUT_LIMIT

    # HTTP: the controller is what the scheduler's HTTP jobs call; the webhook is invoked by
    # the members the operator names (validated: never public).
    http_job = jobs["http"]
    target = one(http_job["http_target"])
    assert target["uri"] == '${local.function_urls["controller"]}/tasks/${each.value.task}'
    assert (
        invokers["scheduler_invoker"]["service"] == '${google_cloudfunctions2_function.fn["controller"].name}'
    )
    assert invokers["webhook_invokers"]["service"] == '${google_cloudfunctions2_function.fn["webhooks"].name}'

    kinds = {name: f["trigger"] for name, f in functions.items()}
    assert {k for k, v in kinds.items() if v == "push"} == {"scheduled", "alerts"}
    assert {k for k, v in kinds.items() if v == "eventarc"} == {"dead_letter"}


def test_every_function_has_its_own_service_account(tf: Terraform) -> None:
    accounts = tf.resources("google_service_account")
    assert accounts["fn"]["for_each"] == "${local.functions}"
    service = one(tf.resources("google_cloudfunctions2_function")["fn"]["service_config"])
    assert service["service_account_email"] == "${google_service_account.fn[each.key].email}"
    assert accounts["fn"]["account_id"] == '${local.sa_prefix}-fn-${replace(each.key, "_", "-")}'
    # Distinct identities for delivery, scheduling and builds.
    assert accounts["push"]["for_each"] == "${local.push_functions}"
    assert {"trigger", "scheduler", "build"} <= set(accounts)
    assert one(tf.resources("google_cloudfunctions2_function")["fn"]["build_config"])["service_account"] == (
        "${google_service_account.build.id}"
    )


def test_service_account_ids_fit_for_the_longest_environment(tf: Terraform) -> None:
    variables = tf.variables()
    condition = one(variables["environment"]["validation"])["condition"]
    longest = re.search(r"\{0,(\d+)\}", condition)
    assert longest, condition
    env = "e" * (int(longest.group(1)) + 1)
    roles = (
        [f"fn-{n.replace('_', '-')}" for n in CONTRACTS]
        + [f"push-{n}" for n in ("scheduled", "alerts")]
        + ["trigger", "scheduler", "build"]
    )
    for role in roles:
        account_id = f"o-{env}-{role}"
        assert 6 <= len(account_id) <= 30, f"{account_id} is {len(account_id)} characters (limit 30)"


def test_names_fit_their_limits_for_the_longest_inputs(tf: Terraform) -> None:
    """Bucket, function and repository names are built from the project id (30 characters at
    most) and the environment (12): the longest combination must still be accepted."""
    limits = {
        "google_storage_bucket": 63,
        "google_artifact_registry_repository": 63,
        "google_pubsub_topic": 255,
        "google_pubsub_subscription": 255,
        "google_secret_manager_secret": 255,
        "google_cloud_scheduler_job": 500,
    }
    longest_fn = max(len(n.replace("_", "-")) for n in CONTRACTS)
    substitutions = {
        "${var.project}": "p" * 30,
        "${local.name}": "orchestra-" + "e" * 12,
        '${replace(each.key, "_", "-")}': "f" * longest_fn,
        '${replace(name, "_", "-")}': "f" * longest_fn,
        "${each.key}": "t" * 20 + "-" + "e" * 12,  # scheduler jobs: task-environment
    }

    def worst(template: str) -> str:
        for placeholder, value in substitutions.items():
            template = template.replace(placeholder, value)
        assert "${" not in template, f"unknown placeholder in {template}"
        return template

    for rtype, limit in limits.items():
        for name, body in tf.resources(rtype).items():
            field = next(k for k in ("name", "repository_id", "secret_id") if k in body)
            length = len(worst(body[field]))
            assert length <= limit, f"{rtype}.{name}: {length} characters > {limit}"
    function_name = worst(tf.locals()["function_names"].split("=> ", 1)[1].rstrip("}").strip('"'))
    assert len(function_name) <= 63, function_name


def test_no_function_is_publicly_invokable(tf: Terraform) -> None:
    for address, body in tf.all_resources().items():
        if "_iam_" not in address:
            continue
        assert not address.endswith(("_iam_policy", "_iam_binding")), (
            f"{address}: authoritative IAM could drop other members; use _iam_member"
        )
        for key in ("member", "members"):
            value = str(body.get(key, ""))
            assert not any(p in value for p in PUBLIC_MEMBERS), f"{address}.{key} = {value}"
    # Members that come from variables are validated against the public principals.
    variables = tf.variables()
    for name in ("controller_invokers", "webhook_invokers"):
        condition = one(variables[name]["validation"])["condition"]
        assert all(p in condition for p in PUBLIC_MEMBERS), f"var.{name} does not refuse public members"
    # Ingress open to all only where GitHub must reach (and IAM still applies).
    for name, fn in tf.locals()["functions"].items():
        if name == "webhooks":
            continue
        assert fn["ingress"] in ("ALLOW_INTERNAL_ONLY", "${var.controller_ingress}"), name
    assert tf.variables()["controller_ingress"]["default"] == "ALLOW_INTERNAL_ONLY"


def test_resources_and_timeouts(tf: Terraform) -> None:
    variables = tf.variables()
    service = one(tf.resources("google_cloudfunctions2_function")["fn"]["service_config"])
    assert service["available_cpu"] == "${var.function_cpu}"
    assert service["available_memory"] == "${var.function_memory}"
    assert service["timeout_seconds"] == "${each.value.timeout}"
    assert variables["function_cpu"]["default"] == "2"  # 1 minimum, 2 recommended
    assert 'contains(["1", "2"]' in one(variables["function_cpu"]["validation"])["condition"]
    assert variables["function_memory"]["default"] == "2Gi"
    assert 'contains(["1Gi", "2Gi"]' in one(variables["function_memory"]["validation"])["condition"]
    assert variables["event_timeout_seconds"]["default"] == EVENT_TIMEOUT_LIMIT
    assert f"<= {EVENT_TIMEOUT_LIMIT}" in one(variables["event_timeout_seconds"]["validation"])["condition"]
    assert variables["controller_timeout_seconds"]["default"] == 900  # the source document's 15 minutes
    functions = tf.locals()["functions"]
    for name, fn in functions.items():
        expected = {
            "push": "${var.event_timeout_seconds}",
            "eventarc": "${var.event_timeout_seconds}",
        }.get(fn["trigger"])
        if expected:
            assert fn["timeout"] == expected, name
    assert functions["controller"]["timeout"] == "${var.controller_timeout_seconds}"
    # The HTTP scheduler job waits as long as the controller may run.
    assert tf.resources("google_cloud_scheduler_job")["http"]["attempt_deadline"] == (
        "${var.controller_timeout_seconds}s"
    )


def test_configuration_and_secrets_come_from_secret_manager(tf: Terraform) -> None:
    service = one(tf.resources("google_cloudfunctions2_function")["fn"]["service_config"])
    volume = one(service["secret_volumes"])
    assert volume["secret"] == "${google_secret_manager_secret.config.secret_id}"
    assert one(volume["versions"])["version"] == "${google_secret_manager_secret_version.config.version}"
    locals_ = tf.locals()
    assert locals_["config_dir"] == "/etc/automation"
    env = service["environment_variables"]
    assert "CONFIG_PATH = local.config_path" in env and "ORCHESTRA_STORE = local.store_url" in env
    assert locals_["config_path"] == "${local.config_dir}/config.yaml"
    assert locals_["store_url"].startswith("firestore://${var.project}/")
    # The deployed configuration is the very file the schedules and alerts were derived from.
    version = tf.resources("google_secret_manager_secret_version")["config"]
    assert version["secret_data"] == "${file(local.config_file)}"
    assert tf.modules()["config"]["config_file"] == "${local.config_file}"
    # The webhook secret reaches only the webhook function, as GITHUB_WEBHOOK_SECRET.
    secret_env = dynamic(service, "secret_environment_variables")
    assert secret_env["for_each"].startswith('${each.key == "webhooks" ?')
    content = one(secret_env["content"])
    assert content["key"] == "GITHUB_WEBHOOK_SECRET"
    assert content["secret"] == "${google_secret_manager_secret.webhook.secret_id}"
    grant = tf.resources("google_secret_manager_secret_iam_member")["webhook"]
    assert grant["member"] == '${google_service_account.fn["webhooks"].member}'


def test_default_configuration_is_the_library_one(tf: Terraform) -> None:
    expr = tf.locals()["config_file"]
    assert "${path.module}/../shared/orchestra/defaults/config.yaml" in expr
    assert (TERRAFORM_DIR / "../shared/orchestra/defaults/config.yaml").resolve() == DEFAULT_CONFIG


# ----- Pub/Sub ----------------------------------------------------------------------------------


def test_every_subscription_dead_letters(tf: Terraform) -> None:
    subscriptions = tf.resources("google_pubsub_subscription")
    assert subscriptions, "no subscriptions"
    for name, sub in subscriptions.items():
        policy = one(sub["dead_letter_policy"])
        assert policy["dead_letter_topic"] == "${google_pubsub_topic.dead_letter.id}", name
        assert policy["max_delivery_attempts"] == "${module.config.max_delivery_attempts}", name
        assert "retry_policy" in sub, f"{name}: no exponential retry policy"
        assert sub["topic"] != "${google_pubsub_topic.dead_letter.id}", (
            f"{name} would dead-letter into itself"
        )


def test_pubsub_service_agent_can_dead_letter(tf: Terraform) -> None:
    agent = tf.locals()["pubsub_agent"]
    assert agent.endswith("@gcp-sa-pubsub.iam.gserviceaccount.com")
    publisher = tf.resources("google_pubsub_topic_iam_member")["dead_letter_publisher"]
    assert publisher == publisher | {
        "topic": "${google_pubsub_topic.dead_letter.id}",
        "role": "roles/pubsub.publisher",
        "member": "${local.pubsub_agent}",
    }
    subscriber = tf.resources("google_pubsub_subscription_iam_member")["dead_letter_subscriber"]
    assert subscriber["for_each"] == "${google_pubsub_subscription.push}"
    assert subscriber["role"] == "roles/pubsub.subscriber" and subscriber["member"] == "${local.pubsub_agent}"


def test_topics(tf: Terraform) -> None:
    topics = tf.resources("google_pubsub_topic")
    assert set(topics) == {"schedule", "alerts", "dead_letter", "events"}
    outputs = tf.outputs()
    assert {"function_urls", "topic_names"} <= set(outputs)


# ----- schedules and alerts: derived from the configuration ----------------------------------


def test_scheduler_jobs_come_from_the_configuration(tf: Terraform) -> None:
    locals_ = tf.locals()
    assert locals_["pubsub_jobs"].startswith("${{for key, job in module.config.schedule_jobs")
    assert locals_["http_jobs"].startswith("${{for key, job in module.config.schedule_jobs")
    jobs = tf.resources("google_cloud_scheduler_job")
    assert set(jobs) == {"pubsub", "http"}
    for name, job in jobs.items():
        assert job["schedule"] == "${each.value.schedule}", name
        assert job["time_zone"] == "Etc/UTC", name
    assert jobs["pubsub"]["for_each"] == "${local.pubsub_jobs}"
    assert jobs["http"]["for_each"] == "${local.http_jobs}"
    topic = one(jobs["pubsub"]["pubsub_target"])
    assert topic["topic_name"] == "${google_pubsub_topic.schedule.id}"
    assert (
        "task = each.value.task" in topic["data"] and "environment = each.value.environment" in topic["data"]
    )
    # The source document's HTTP job: POST {controller}/tasks/performance, OIDC, mode and environment.
    target = one(jobs["http"]["http_target"])
    assert target["http_method"] == "POST"
    assert one(target["oidc_token"])["service_account_email"] == "${google_service_account.scheduler.email}"
    assert target["body"] == (
        "${base64encode(jsonencode({mode = var.scheduled_mode, environment = each.value.environment}))}"
    )
    assert tf.variables()["scheduled_mode"]["default"] == "apply"
    assert tf.variables()["http_scheduled_tasks"]["default"] == ["performance"]


def test_alert_policies_come_from_the_configuration(tf: Terraform) -> None:
    policy = tf.resources("google_monitoring_alert_policy")["threshold"]
    assert policy["for_each"] == "${module.config.alert_rules}"
    condition = one(one(policy["conditions"])["condition_threshold"])
    assert condition["threshold_value"] == "${each.value.threshold_value}"
    assert condition["duration"] == "${each.value.duration_seconds}s"
    assert condition["filter"] == "${each.value.filter}"
    assert condition["comparison"] == "COMPARISON_GT"
    aggregation = one(condition["aggregations"])
    assert aggregation["per_series_aligner"] == "${each.value.aligner}"
    assert aggregation["cross_series_reducer"] == "${each.value.reducer}"
    assert policy["notification_channels"] == ["${google_monitoring_notification_channel.alerts.id}"]
    channel = tf.resources("google_monitoring_notification_channel")["alerts"]
    assert channel["type"] == "pubsub"
    assert channel["labels"] == {"topic": "${google_pubsub_topic.alerts.id}"}
    publisher = tf.resources("google_pubsub_topic_iam_member")["alerts_publisher"]
    assert (
        publisher["member"] == "${local.monitoring_agent}" and publisher["role"] == "roles/pubsub.publisher"
    )
    assert tf.locals()["monitoring_agent"].endswith("@gcp-sa-monitoring-notification.iam.gserviceaccount.com")
    # The labels the alerts function reads to map an incident back to its rule and environment.
    labels = policy["user_labels"]
    assert labels[METRIC_LABEL] == "${each.value.metric}"
    assert labels[ENVIRONMENT_LABEL] == "${var.environment}"
    # No number in the policy is typed in: every figure comes from module.config.
    assert not re.search(r"threshold_value\s*=\s*[0-9]", (TERRAFORM_DIR / "monitoring.tf").read_text())


def _expected_jobs(config_path: Path, environment: str, http_tasks: set[str]) -> dict[str, dict[str, str]]:
    config = parse_config(config_path.read_text(), str(config_path))
    expected = {}
    for schedule in configured_schedules(config, environment, registry=registry, target="cloud").schedules:
        expected[f"{schedule.task}-{schedule.environment}"] = {
            "task": schedule.task,
            "environment": schedule.environment,
            "schedule": schedule.cron,
            "target": "http" if schedule.task in http_tasks else "pubsub",
        }
    return expected


@pytest.mark.parametrize("environment", ["development", "production"])
def test_terraform_derives_exactly_the_configured_schedules(evaluate_config_module, environment: str) -> None:
    run = evaluate_config_module(DEFAULT_CONFIG, environment)
    assert run.returncode == 0, run.stderr
    # The library's own reading of the same file (what the controller in continuous mode runs).
    assert run.outputs["schedule_jobs"] == _expected_jobs(DEFAULT_CONFIG, environment, {"performance"})
    config = parse_config(DEFAULT_CONFIG.read_text())
    performance = config.automations["performance"].schedule
    assert run.outputs["schedule_jobs"][f"performance-{environment}"]["schedule"] == performance
    assert run.outputs["schedule_jobs"][f"performance-{environment}"]["target"] == "http"


@pytest.mark.parametrize("environment", ["development", "staging", "production"])
def test_terraform_alert_rules_equal_the_configured_thresholds(
    evaluate_config_module, environment: str
) -> None:
    run = evaluate_config_module(DEFAULT_CONFIG, environment)
    assert run.returncode == 0, run.stderr
    config = parse_config(DEFAULT_CONFIG.read_text())
    applicable = {
        name: rule
        for name, rule in config.thresholds.items()
        if rule.environments is None or environment in rule.environments
    }
    rules = run.outputs["alert_rules"]
    assert set(rules) == set(applicable)
    for name, rule in applicable.items():
        got = rules[name]
        query = ERRORS_5XX if rule.metric == "error_rate" else QUERIES[rule.metric]
        # Percent in the configuration, fractions in Cloud Monitoring (the library scales x100).
        scale = 0.01 if rule.metric in ("cpu", "memory", "error_rate") else 1.0
        assert got["above"] == rule.above and got["for_minutes"] == rule.for_minutes
        assert got["threshold_value"] == pytest.approx(rule.above * scale)
        assert got["duration_seconds"] == int(rule.for_minutes * 60)
        assert got["focus"] == rule.focus
        # The alert watches exactly what the performance automation measures.
        assert got["aligner"] == query.aligner and got["reducer"] == query.reducer
        assert f'metric.type="{query.metric_type}"' in got["filter"]
        assert 'resource.type="cloud_run_revision"' in got["filter"]
        if query.extra_filter:
            assert query.extra_filter in got["filter"]
        if rule.metric == "error_rate":
            assert got["denominator_filter"] and "5xx" not in got["denominator_filter"]
        else:
            assert got["denominator_filter"] is None


@pytest.mark.parametrize("environment", ["development", "production"])
def test_incidents_of_these_policies_start_the_rules_runs(evaluate_config_module, environment: str) -> None:
    """Round trip: an incident raised by each Terraform-derived policy, as Cloud Monitoring would
    send it, is mapped by the alerts function to that very rule (not ignored as a weaker alert)."""
    run = evaluate_config_module(DEFAULT_CONFIG, environment)
    config = parse_config(DEFAULT_CONFIG.read_text())
    assert run.outputs["alert_rules"], "no alert policies"
    for name, rule in run.outputs["alert_rules"].items():
        metric_type = re.search(r'metric\.type="([^"]+)"', rule["filter"]).group(1)
        incident = Incident.model_validate(
            {
                "incident_id": f"0.{name}",
                "state": "open",
                "policy_user_labels": {METRIC_LABEL: rule["metric"], ENVIRONMENT_LABEL: environment},
                "condition": {
                    "conditionThreshold": {
                        "filter": rule["filter"],
                        "denominatorFilter": rule["denominator_filter"],
                        "comparison": "COMPARISON_GT",
                        "thresholdValue": rule["threshold_value"],
                        "duration": f"{rule['duration_seconds']}s",
                    }
                },
                "metric": {"type": metric_type, "labels": {}},
                "resource": {"type": "cloud_run_revision", "labels": {"service_name": "api"}},
            }
        )
        mapping = map_incident(incident, config)
        assert mapping.ignored is None, f"{name}: {mapping.ignored}"
        assert (mapping.rule_name, mapping.metric, mapping.environment) == (name, rule["metric"], environment)


def test_terraform_follows_a_changed_configuration(evaluate_config_module, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        """
environments:
  development: {}
  staging: {}
  production: {}
default_environment: development
thresholds:
  cpu: {metric: cpu, above: 55, for_minutes: 3, focus: cpu}
  slow: {metric: latency_p95, above: 250, for_minutes: 2.5, environments: [staging], focus: latency}
automations:
  performance: {schedule: "15 1 * * *"}
  cost: {schedule: "0 7 * * 1", environments: [staging, production]}
  workspace: {}
  testing: {schedule: "0 4 * * *", enabled: false}
runner:
  retry: {max_deliveries: 3}
"""
    )
    parse_config(config.read_text())  # the library accepts it too
    run = evaluate_config_module(config, "staging", monitored_services=["api", "web"])
    assert run.returncode == 0, run.stderr
    jobs = run.outputs["schedule_jobs"]
    assert jobs == _expected_jobs(config, "staging", {"performance"})
    assert set(jobs) == {"performance-staging", "cost-staging", "cost-production"}
    assert jobs["cost-production"]["schedule"] == "0 7 * * 1"
    rules = run.outputs["alert_rules"]
    assert rules["cpu"]["threshold_value"] == pytest.approx(0.55)
    assert rules["cpu"]["duration_seconds"] == 180
    assert rules["slow"]["duration_seconds"] == 150
    assert 'resource.labels.service_name=one_of("api","web")' in rules["cpu"]["filter"]
    # Pub/Sub needs at least 5 delivery attempts (the library caps the setting at 100, Pub/Sub's maximum).
    assert run.outputs["max_delivery_attempts"] == 5
    # Same file, another environment: the staging-only rule and the defaulted job move.
    prod = evaluate_config_module(config, "production")
    assert set(prod.outputs["alert_rules"]) == {"cpu"}
    assert set(prod.outputs["schedule_jobs"]) == {"performance-production", "cost-staging", "cost-production"}


def test_terraform_refuses_an_environment_the_configuration_lacks(evaluate_config_module) -> None:
    run = evaluate_config_module(DEFAULT_CONFIG, "qa")
    assert run.returncode != 0
    assert "environment qa is not defined" in run.stderr


def test_terraform_refuses_http_tasks_that_are_not_configured(evaluate_config_module) -> None:
    run = evaluate_config_module(DEFAULT_CONFIG, "development", http_tasks=["performence"])
    assert run.returncode != 0
    assert "http_tasks names automations" in run.stderr


def test_delivery_attempts_and_retention_follow_the_runner_section(evaluate_config_module) -> None:
    run = evaluate_config_module(DEFAULT_CONFIG, "development")
    config = parse_config(DEFAULT_CONFIG.read_text())
    assert run.outputs["max_delivery_attempts"] == max(5, min(100, config.runner.retry.max_deliveries))
    retention = config.runner.retention
    assert run.outputs["retention_days"] == {
        "runs": retention.runs_days,
        "events": retention.events_days,
        "dead_letters": retention.dead_letters_days,
    }


# ----- Firestore ------------------------------------------------------------------------------


def test_firestore_database_and_ttl_policies(tf: Terraform) -> None:
    database = tf.resources("google_firestore_database")["state"]
    assert database["type"] == "FIRESTORE_NATIVE"
    assert database["delete_protection_state"] == "DELETE_PROTECTION_ENABLED"
    assert database["point_in_time_recovery_enablement"] == "POINT_IN_TIME_RECOVERY_ENABLED"
    ttl = tf.resources("google_firestore_field")["ttl"]
    collections = set(re.findall(r'"([a-z_]+)"', ttl["for_each"]))
    # The core's collections and those the registered automations declare (the testing
    # automation's test_results).
    declared = {c.name for c in registry.collections()}
    assert "test_results" in declared
    assert collections == set(TTL_COLLECTIONS) | declared
    assert ttl["field"] == TTL_FIELD == "expires_at"
    assert ttl["collection"] == "${each.value}"
    assert "ttl_config" in ttl
    assert ttl["database"] == "${google_firestore_database.state.name}"


def test_functions_reach_only_their_database(tf: Terraform) -> None:
    grant = tf.resources("google_project_iam_member")["fn_firestore"]
    assert grant["role"] == "roles/datastore.user"
    assert "google_firestore_database.state.name" in one(grant["condition"])["expression"]


def test_cloud_build_suites_get_their_grants(evaluate_config_module, tf: Terraform, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        """
environments: {development: {}}
automations:
  testing:
    settings:
      suites:
        unit: {command: [pytest, -q], triggers: {push: [main]}}
        e2e:
          command: [make, e2e]
          runner: cloud-build
          cloud_build: {project: ci-project, image: python:3.11, service_account: e2e@ci-project.iam.gserviceaccount.com}
        lint:
          command: [make, lint]
          runner: cloud-build
          cloud_build: {project: ci-project, image: python:3.11}
"""
    )
    parse_config(config.read_text())  # the library accepts it too
    run = evaluate_config_module(config, "development", http_tasks=[])
    assert run.returncode == 0, run.stderr
    assert run.outputs["cloud_build_suites"] == {
        "e2e": {"project": "ci-project", "service_account": "e2e@ci-project.iam.gserviceaccount.com"},
        "lint": {"project": "ci-project", "service_account": None},
    }
    assert evaluate_config_module(DEFAULT_CONFIG, "development").outputs["cloud_build_suites"] == {}
    builds = tf.resources("google_project_iam_member")["suite_builds"]
    assert builds["role"] == "roles/cloudbuild.builds.editor"
    acting = tf.resources("google_service_account_iam_member")["suite_build_account"]
    assert acting["role"] == "roles/iam.serviceAccountUser"
    iam = (TERRAFORM_DIR / "iam.tf").read_text()
    assert "module.config.cloud_build_suites" in iam
    # The grants reach the functions that start suites: a push (webhooks) and every runner of automations.
    assert 'fn.runs || name == "webhooks"' in iam
