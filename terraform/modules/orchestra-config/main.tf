# Reads the operator's orchestra configuration (the same YAML file the library validates and the
# functions load) and derives what the deployment needs from it: one scheduler job per scheduled
# automation and target environment, one alert policy per threshold rule, retention and
# delivery limits. This module creates no resources and needs no provider, so the derivation can
# be evaluated on its own (`terraform apply` on a root that only calls this module).

terraform {
  required_version = ">= 1.5.0"
}

variable "config_file" {
  description = "Path of the orchestra configuration YAML (schema: shared/orchestra/config.py)."
  type        = string
}

variable "environment" {
  description = "Environment this deployment serves; target of schedules without their own environments."
  type        = string
}

variable "http_tasks" {
  description = "Automations whose schedule calls the HTTP controller (long analyses: up to the HTTP timeout) instead of publishing to the schedule topic."
  type        = set(string)
  default     = ["performance"]
}

variable "monitored_services" {
  description = "Cloud Run services the alert policies watch (empty: every service in the project)."
  type        = list(string)
  default     = []
}

locals {
  config       = yamldecode(file(var.config_file))
  environments = keys(local.config.environments)
  automations  = try({ for name, auto in local.config.automations : name => auto }, {})
  thresholds   = try({ for name, rule in local.config.thresholds : name => rule }, {})

  # Settings an automation's scheduled run needs to succeed in the cloud, where a function has no
  # working copy (the plugin's schedule_blocker for target "cloud"): the workspace automation
  # clones settings.source; without it, weekly maintenance runs in GitHub Actions
  # (.github/workflows/workspace.yml) and the cloud gets no workspace job.
  cloud_required_settings = {
    workspace = "source"
  }

  # Same rule as orchestra.scheduling.configured_schedules (target "cloud"): every enabled
  # automation with a schedule whose run can succeed here, once per target environment (its own
  # `environments`, else this deployment's).
  scheduled = {
    for name, auto in local.automations : name => auto
    if auto != null && try(auto.schedule, null) != null && try(auto.enabled, true) && (
      lookup(local.cloud_required_settings, name, null) == null ||
      try(auto.settings[local.cloud_required_settings[name]], null) != null
    )
  }
  blocked_schedules = {
    for name, auto in local.automations :
    name => "set automations.${name}.settings.${local.cloud_required_settings[name]}"
    if auto != null && try(auto.schedule, null) != null && try(auto.enabled, true) && !contains(keys(local.scheduled), name)
  }

  # Secret Manager secrets the scheduled runs read (the workspace source's access token), as
  # projects/P/secrets/S (the version stripped).
  source_token_secrets = toset(compact([
    for name, auto in local.scheduled :
    try(regex("^(projects/[^/]+/secrets/[^/]+)/versions/[^/]+$", auto.settings.source.token_secret)[0], null)
  ]))
  schedule_jobs = merge({}, [
    for name, auto in local.scheduled : {
      for env in(try(auto.environments, null) == null ? [var.environment] : auto.environments) :
      "${name}-${env}" => {
        task        = name
        environment = env
        schedule    = auto.schedule
        target      = contains(var.http_tasks, name) ? "http" : "pubsub"
      }
    }
  ]...)

  # The same queries the performance automation reads (orchestra.metrics.cloud_monitoring), so an
  # alert fires on exactly the figure the focused run then analyzes. `scale` turns the
  # configuration's unit (percent, ms, requests per minute) into the metric's unit.
  metric_queries = {
    cpu = {
      metric_type = "run.googleapis.com/container/cpu/utilizations"
      aligner     = "ALIGN_PERCENTILE_95"
      reducer     = "REDUCE_MAX"
      scale       = 0.01
      extra       = ""
      ratio       = false
    }
    memory = {
      metric_type = "run.googleapis.com/container/memory/utilizations"
      aligner     = "ALIGN_PERCENTILE_95"
      reducer     = "REDUCE_MAX"
      scale       = 0.01
      extra       = ""
      ratio       = false
    }
    latency_p95 = {
      metric_type = "run.googleapis.com/request_latencies"
      aligner     = "ALIGN_DELTA"
      reducer     = "REDUCE_PERCENTILE_95"
      scale       = 1
      extra       = ""
      ratio       = false
    }
    request_count = {
      metric_type = "run.googleapis.com/request_count"
      aligner     = "ALIGN_DELTA"
      reducer     = "REDUCE_SUM"
      scale       = 1
      extra       = ""
      ratio       = false
    }
    # 5xx responses over all responses, per service.
    error_rate = {
      metric_type = "run.googleapis.com/request_count"
      aligner     = "ALIGN_DELTA"
      reducer     = "REDUCE_SUM"
      scale       = 0.01
      extra       = " AND metric.labels.response_code_class=\"5xx\""
      ratio       = true
    }
  }

  service_filter = length(var.monitored_services) == 0 ? "" : format(
    " AND resource.labels.service_name=one_of(%s)",
    join(",", [for s in var.monitored_services : "\"${s}\""]),
  )

  # Rules limited to other environments (e.g. latency: production only) get no policy here.
  alert_rules = {
    for name, rule in local.thresholds : name => {
      metric           = rule.metric
      focus            = rule.focus
      above            = rule.above
      for_minutes      = rule.for_minutes
      threshold_value  = rule.above * local.metric_queries[rule.metric].scale
      duration_seconds = floor(rule.for_minutes * 60)
      aligner          = local.metric_queries[rule.metric].aligner
      reducer          = local.metric_queries[rule.metric].reducer
      filter = format(
        "metric.type=\"%s\" AND resource.type=\"cloud_run_revision\"%s%s",
        local.metric_queries[rule.metric].metric_type,
        local.metric_queries[rule.metric].extra,
        local.service_filter,
      )
      denominator_filter = local.metric_queries[rule.metric].ratio ? format(
        "metric.type=\"%s\" AND resource.type=\"cloud_run_revision\"%s",
        local.metric_queries[rule.metric].metric_type,
        local.service_filter,
      ) : null
    }
    if try(rule.environments, null) == null || contains(try(rule.environments, []), var.environment)
  }

  # Pub/Sub accepts 5..100 delivery attempts before dead-lettering.
  max_deliveries        = try(local.config.runner.retry.max_deliveries, 5)
  max_delivery_attempts = min(100, max(5, local.max_deliveries))

  retention_days = {
    runs         = try(local.config.runner.retention.runs_days, 30)
    events       = try(local.config.runner.retention.events_days, 14)
    dead_letters = try(local.config.runner.retention.dead_letters_days, 30)
  }
}

output "config" {
  description = "The decoded configuration."
  value       = local.config
}

output "schedule_jobs" {
  description = "One entry per scheduler job: task, environment, cron schedule, target (http or pubsub)."
  value       = local.schedule_jobs

  precondition {
    condition     = contains(local.environments, var.environment)
    error_message = "environment ${var.environment} is not defined in ${var.config_file} (environments: ${join(", ", local.environments)})."
  }
  precondition {
    condition = alltrue([
      for job in values(local.schedule_jobs) : contains(local.environments, job.environment)
    ])
    error_message = "an automation's environments name an environment that ${var.config_file} does not define."
  }
  precondition {
    condition     = length(setsubtract(var.http_tasks, keys(local.automations))) == 0
    error_message = "http_tasks names automations that ${var.config_file} does not configure."
  }
}

output "blocked_schedules" {
  description = "Scheduled automations that get no job in the cloud: name -> the setting they need."
  value       = local.blocked_schedules
}

output "source_token_secrets" {
  description = "Secrets (projects/P/secrets/S) holding tokens the scheduled runs read to clone their sources."
  value       = local.source_token_secrets
}

output "alert_rules" {
  description = "One entry per threshold rule that applies to this environment, in Cloud Monitoring units."
  value       = local.alert_rules

  precondition {
    condition     = alltrue([for rule in values(local.thresholds) : contains(keys(local.metric_queries), rule.metric)])
    error_message = "a threshold uses a metric with no Cloud Monitoring query (accepted: ${join(", ", keys(local.metric_queries))})."
  }
}

output "max_delivery_attempts" {
  description = "Pub/Sub deliveries before a message is dead-lettered (runner.retry.max_deliveries, clamped to 5..100)."
  value       = local.max_delivery_attempts
}

output "retention_days" {
  description = "Retention per expiring collection (runner.retention)."
  value       = local.retention_days
}
