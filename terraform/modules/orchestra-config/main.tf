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
  # Suites of the testing automation that run on Cloud Build (settings.suites.<name>.runner):
  # the functions that start them create builds in that project, as the build's service account
  # when one is named.
  cloud_build_suites = try({
    for name, suite in local.automations.testing.settings.suites :
    name => {
      project         = suite.cloud_build.project
      service_account = try(suite.cloud_build.service_account, null)
    }
    if try(suite.runner, "command") == "cloud-build"
  }, {})
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

output "cloud_build_suites" {
  description = "Testing suites that run on Cloud Build: name -> {project, service_account}."
  value       = local.cloud_build_suites
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

# ----- Observability (terraform/observability.tf) ---------------------------------------------
# Log-based metrics over the announcement lines the functions write (orchestra.announcements:
# one JSON line per announcement, `jsonPayload.announcement` = its type, `jsonPayload.data` =
# its data), the dashboard that charts them and the alerts on them. Derived here, without a
# provider, so the filters, the dashboard and the alert durations can be evaluated offline.

variable "log_services" {
  description = "Cloud Run services of this deployment's functions: the log-based metrics count only their log lines (empty: every Cloud Run service of the project)."
  type        = list(string)
  default     = []
}

variable "metric_prefix" {
  description = "Prefix of the log-based metric names, unique per deployment in a project (default: orchestra-ENVIRONMENT)."
  type        = string
  default     = null
}

locals {
  metric_prefix = coalesce(var.metric_prefix, "orchestra-${var.environment}")

  # Every metric counts lines of this deployment's functions only.
  log_scope = join(" AND ", concat(
    ["resource.type=\"cloud_run_revision\""],
    length(var.log_services) == 0 ? [] : [format(
      "resource.labels.service_name=(%s)",
      join(" OR ", [for s in var.log_services : "\"${s}\""]),
    )],
  ))

  # kind: counter (one per line) or distribution (the value the extractor reads from the line).
  log_metric_specs = {
    runs = {
      description   = "Runs finished, by task, environment and status."
      announcements = ["dev.orchestra.run.finished.v1"]
      extra         = ""
      value         = null
      labels = {
        task        = { extractor = "EXTRACT(jsonPayload.data.task)", description = "automation" }
        environment = { extractor = "EXTRACT(jsonPayload.data.environment)", description = "target environment" }
        status      = { extractor = "EXTRACT(jsonPayload.data.status)", description = "succeeded, failed, rolled_back, skipped or awaiting_approval" }
      }
    }
    actions_applied = {
      description   = "Actions applied per finished run."
      announcements = ["dev.orchestra.run.finished.v1"]
      extra         = ""
      value         = "EXTRACT(jsonPayload.data.counts.applied)"
      labels = {
        task        = { extractor = "EXTRACT(jsonPayload.data.task)", description = "automation" }
        environment = { extractor = "EXTRACT(jsonPayload.data.environment)", description = "target environment" }
      }
    }
    actions_rolled_back = {
      description   = "Actions rolled back per finished run."
      announcements = ["dev.orchestra.run.finished.v1"]
      extra         = ""
      value         = "EXTRACT(jsonPayload.data.counts.rolled_back)"
      labels = {
        task        = { extractor = "EXTRACT(jsonPayload.data.task)", description = "automation" }
        environment = { extractor = "EXTRACT(jsonPayload.data.environment)", description = "target environment" }
      }
    }
    breaker_transitions = {
      description   = "Circuit breakers opened and closed."
      announcements = ["dev.orchestra.breaker.opened.v1", "dev.orchestra.breaker.closed.v1"]
      extra         = ""
      value         = null
      labels = {
        transition = { extractor = "REGEXP_EXTRACT(jsonPayload.announcement, \"^dev[.]orchestra[.]breaker[.](opened|closed)[.]v1$\")", description = "opened or closed" }
        key        = { extractor = "EXTRACT(jsonPayload.data.key)", description = "automation:TASK:ENVIRONMENT or dependency:NAME" }
        scope      = { extractor = "EXTRACT(jsonPayload.data.scope)", description = "automation, dependency or other" }
      }
    }
    dead_letters = {
      description   = "Dead letters stored (messages that exhausted their deliveries)."
      announcements = ["dev.orchestra.deadletter.stored.v1"]
      extra         = ""
      value         = null
      labels = {
        origin = { extractor = "EXTRACT(jsonPayload.data.origin)", description = "subscription or topic the message came from" }
      }
    }
    # Only cost runs that found anomalies (finding_kinds.anomaly is present from one anomaly on).
    cost_anomalies = {
      description   = "Cost anomalies found per cost run."
      announcements = ["dev.orchestra.run.finished.v1"]
      extra         = " AND jsonPayload.data.task=\"cost\" AND jsonPayload.data.finding_kinds.anomaly:*"
      value         = "EXTRACT(jsonPayload.data.finding_kinds.anomaly)"
      labels = {
        environment = { extractor = "EXTRACT(jsonPayload.data.environment)", description = "target environment" }
      }
    }
    deployment_outcomes = {
      description   = "Deployment state changes, by the state reached."
      announcements = ["dev.orchestra.deployment.changed.v1"]
      extra         = ""
      value         = null
      labels = {
        to_state    = { extractor = "EXTRACT(jsonPayload.data.to_state)", description = "state the deployment reached" }
        environment = { extractor = "EXTRACT(jsonPayload.data.environment)", description = "target environment" }
        service     = { extractor = "EXTRACT(jsonPayload.data.service)", description = "deployed service" }
      }
    }
  }

  log_metrics = {
    for key, spec in local.log_metric_specs : key => {
      name        = "${local.metric_prefix}/${key}"
      type        = "logging.googleapis.com/user/${local.metric_prefix}/${key}"
      promql      = "logging_googleapis_com:user_${replace("${local.metric_prefix}/${key}", "/[^a-zA-Z0-9_]/", "_")}"
      description = spec.description
      kind        = spec.value == null ? "counter" : "distribution"
      filter = format(
        "%s AND jsonPayload.announcement=%s%s",
        local.log_scope,
        length(spec.announcements) == 1 ? "\"${spec.announcements[0]}\"" : format("(%s)", join(" OR ", [for a in spec.announcements : "\"${a}\""])),
        spec.extra,
      )
      value_extractor = spec.value
      labels          = spec.labels
    }
  }

  # Expected interval between two firings of a schedule, for the cron shapes with one fixed gap:
  # every minute, */N minutes, hourly (M * * * *), every N hours (M */N * * *), daily (M H * * *),
  # weekly (M H * * D) and monthly on days 1-28 (M H D * *). Anything else is null, and its
  # automation must set alert_after_minutes.
  cron_fields = {
    for job in values(local.schedule_jobs) : job.schedule => regexall("[^ \t]+", lower(job.schedule))...
  }
  schedule_interval_minutes = {
    for cron, all in local.cron_fields : cron => try(
      all[0][1] == "*" && all[0][2] == "*" && all[0][3] == "*" && all[0][4] == "*" ? (
        all[0][0] == "*" ? 1 :
        can(regex("^[*]/[0-9]+$", all[0][0])) ? min(60, tonumber(trimprefix(all[0][0], "*/"))) :
        can(regex("^[0-9]+$", all[0][0])) ? 60 : null
      ) :
      !can(regex("^[0-9]+$", all[0][0])) || all[0][3] != "*" ? null :
      all[0][2] == "*" && all[0][4] == "*" ? (
        can(regex("^[0-9]+$", all[0][1])) ? 1440 :
        can(regex("^[*]/[0-9]+$", all[0][1])) ? 60 * min(24, tonumber(trimprefix(all[0][1], "*/"))) : null
      ) :
      !can(regex("^[0-9]+$", all[0][1])) ? null :
      all[0][2] == "*" && can(regex("^([0-7]|sun|mon|tue|wed|thu|fri|sat)$", all[0][4])) ? 10080 :
      all[0][4] == "*" && can(regex("^([1-9]|1[0-9]|2[0-8])$", all[0][2])) ? 44640 : null,
      null,
    )
  }

  # Cloud Monitoring's metric-absence condition watches at most 23.5 hours; longer windows use
  # PromQL's absent_over_time, which reads back as far as the window (up to two years).
  max_absence_minutes = 1410

  no_success_alerts = {
    for key, job in local.schedule_jobs : key => {
      task             = job.task
      environment      = job.environment
      schedule         = job.schedule
      interval_minutes = local.schedule_interval_minutes[job.schedule]
      after_minutes = (
        try(local.automations[job.task].alert_after_minutes, null) != null
        ? local.automations[job.task].alert_after_minutes
        : try(2 * local.schedule_interval_minutes[job.schedule], null)
      )
      filter = format(
        "metric.type=\"%s\" AND resource.type=\"cloud_run_revision\" AND metric.labels.task=\"%s\" AND metric.labels.environment=\"%s\" AND metric.labels.status=\"succeeded\"",
        local.log_metrics.runs.type, job.task, job.environment,
      )
    }
  }

  no_success_conditions = {
    for key, alert in local.no_success_alerts : key => merge(alert, {
      duration_seconds = alert.after_minutes == null ? null : alert.after_minutes * 60
      condition        = alert.after_minutes == null ? null : (alert.after_minutes <= local.max_absence_minutes ? "absent" : "promql")
      promql = alert.after_minutes == null ? null : format(
        "absent_over_time(%s{monitored_resource=\"cloud_run_revision\",task=\"%s\",environment=\"%s\",status=\"succeeded\"}[%dm])",
        local.log_metrics.runs.promql, alert.task, alert.environment, alert.after_minutes,
      )
    })
  }
  underivable = [for key, alert in local.no_success_alerts : "${alert.task} (\"${alert.schedule}\")" if alert.after_minutes == null]

  # A breaker open for more than an hour, from its opened/closed transitions (a log-based
  # counter has no state to read back). Two windows, either fires:
  # - opened between 2 h and 1 h ago and not closed since: every breaker open for an hour is
  #   caught, whatever happened to it before;
  # - opened between 25 h and 1 h ago and not closed in the last 25 h: keeps the incident open
  #   while the breaker stays open, up to a day.
  breaker_open_query = format(
    join(" ", [
      "(sum by (key) (increase(%[1]s{monitored_resource=\"cloud_run_revision\",transition=\"opened\"}[1h] offset 1h)) > 0",
      "unless on (key) sum by (key) (increase(%[1]s{monitored_resource=\"cloud_run_revision\",transition=\"closed\"}[2h])) > 0)",
      "or (sum by (key) (increase(%[1]s{monitored_resource=\"cloud_run_revision\",transition=\"opened\"}[1d] offset 1h)) > 0",
      "unless on (key) sum by (key) (increase(%[1]s{monitored_resource=\"cloud_run_revision\",transition=\"closed\"}[25h])) > 0)",
    ]),
    local.log_metrics.breaker_transitions.promql,
  )

  dead_letter_filter = format("metric.type=\"%s\" AND resource.type=\"cloud_run_revision\"", local.log_metrics.dead_letters.type)

  # Dashboard: a 48-column mosaic, two tiles per row.
  dashboard_tiles = [
    {
      title = "Runs by status"
      data_sets = [{
        timeSeriesQuery = {
          timeSeriesFilter = {
            filter = "metric.type=\"${local.log_metrics.runs.type}\" AND resource.type=\"cloud_run_revision\""
            aggregation = {
              alignmentPeriod    = "3600s"
              perSeriesAligner   = "ALIGN_SUM"
              crossSeriesReducer = "REDUCE_SUM"
              groupByFields      = ["metric.label.status"]
            }
          }
        }
        plotType = "STACKED_BAR"
      }]
    },
    {
      title = "Failed and rolled-back runs by task"
      data_sets = [{
        timeSeriesQuery = {
          timeSeriesFilter = {
            filter = "metric.type=\"${local.log_metrics.runs.type}\" AND resource.type=\"cloud_run_revision\" AND metric.label.status=one_of(\"failed\",\"rolled_back\")"
            aggregation = {
              alignmentPeriod    = "3600s"
              perSeriesAligner   = "ALIGN_SUM"
              crossSeriesReducer = "REDUCE_SUM"
              groupByFields      = ["metric.label.task"]
            }
          }
        }
        plotType = "STACKED_BAR"
      }]
    },
    {
      title = "Breakers opened and closed (by key)"
      data_sets = [{
        timeSeriesQuery = {
          timeSeriesFilter = {
            filter = "metric.type=\"${local.log_metrics.breaker_transitions.type}\" AND resource.type=\"cloud_run_revision\""
            aggregation = {
              alignmentPeriod    = "3600s"
              perSeriesAligner   = "ALIGN_SUM"
              crossSeriesReducer = "REDUCE_SUM"
              groupByFields      = ["metric.label.transition", "metric.label.key"]
            }
          }
        }
        plotType = "STACKED_BAR"
      }]
    },
    {
      title = "Breakers still open (opened in the last day, not closed since)"
      data_sets = [{
        timeSeriesQuery = {
          prometheusQuery = format(
            "sum by (key) (increase(%[1]s{monitored_resource=\"cloud_run_revision\",transition=\"opened\"}[1d])) unless on (key) sum by (key) (increase(%[1]s{monitored_resource=\"cloud_run_revision\",transition=\"closed\"}[1d])) > 0",
            local.log_metrics.breaker_transitions.promql,
          )
        }
        plotType = "LINE"
      }]
    },
    {
      title = "Dead letters stored"
      data_sets = [{
        timeSeriesQuery = {
          timeSeriesFilter = {
            filter = "metric.type=\"${local.log_metrics.dead_letters.type}\" AND resource.type=\"cloud_run_revision\""
            aggregation = {
              alignmentPeriod    = "3600s"
              perSeriesAligner   = "ALIGN_SUM"
              crossSeriesReducer = "REDUCE_SUM"
              groupByFields      = ["metric.label.origin"]
            }
          }
        }
        plotType = "STACKED_BAR"
      }]
    },
    {
      title = "Cost anomalies found (per day)"
      data_sets = [{
        timeSeriesQuery = {
          prometheusQuery = "sum by (environment) (increase(${local.log_metrics.cost_anomalies.promql}_sum{monitored_resource=\"cloud_run_revision\"}[1d]))"
        }
        plotType = "STACKED_BAR"
      }]
    },
    {
      title = "Deployment outcomes"
      data_sets = [{
        timeSeriesQuery = {
          timeSeriesFilter = {
            filter = "metric.type=\"${local.log_metrics.deployment_outcomes.type}\" AND resource.type=\"cloud_run_revision\""
            aggregation = {
              alignmentPeriod    = "3600s"
              perSeriesAligner   = "ALIGN_SUM"
              crossSeriesReducer = "REDUCE_SUM"
              groupByFields      = ["metric.label.to_state"]
            }
          }
        }
        plotType = "STACKED_BAR"
      }]
    },
    {
      title = "Actions applied and rolled back (per hour)"
      data_sets = [
        {
          timeSeriesQuery = {
            prometheusQuery = "sum by (task) (increase(${local.log_metrics.actions_applied.promql}_sum{monitored_resource=\"cloud_run_revision\"}[1h]))"
          }
          plotType = "STACKED_BAR"
        },
        {
          timeSeriesQuery = {
            prometheusQuery = "sum by (task) (increase(${local.log_metrics.actions_rolled_back.promql}_sum{monitored_resource=\"cloud_run_revision\"}[1h]))"
          }
          plotType = "LINE"
        },
      ]
    },
  ]

  dashboard_json = jsonencode({
    displayName = "Orchestra (${var.environment})"
    mosaicLayout = {
      columns = 48
      tiles = [
        for index, tile in local.dashboard_tiles : {
          xPos   = (index % 2) * 24
          yPos   = floor(index / 2) * 16
          width  = 24
          height = 16
          widget = {
            title   = tile.title
            xyChart = { dataSets = tile.data_sets }
          }
        }
      ]
    }
  })
}

output "log_metrics" {
  description = "Log-based metrics over the functions' announcement lines: name, metric type, PromQL name, filter, kind (counter or distribution), value and label extractors."
  value       = local.log_metrics
}

output "no_success_alerts" {
  description = "Per scheduled automation and environment: how long without a succeeded run raises an alert (alert_after_minutes, else twice the schedule's interval) and the condition that watches it (absent: metric absence; promql: absent_over_time, past Cloud Monitoring's 23.5-hour absence limit)."
  value       = local.no_success_conditions

  precondition {
    condition     = length(local.underivable) == 0
    error_message = "cannot derive the interval of the schedule of ${join(", ", local.underivable)} in ${var.config_file}: set automations.<name>.alert_after_minutes (minutes without a succeeded run before Cloud Monitoring alerts), or use a schedule of one of the shapes '* * * * *', '*/N * * * *', 'M * * * *', 'M */N * * *', 'M H * * *', 'M H * * D', 'M H D * *' (D of month 1-28)."
  }
}

output "observability_alerts" {
  description = "Dead letters (Cloud Monitoring filter of the dead-letter metric) and breakers open for more than an hour (PromQL)."
  value = {
    dead_letter_filter = local.dead_letter_filter
    breaker_open_query = local.breaker_open_query
  }
}

output "dashboard_json" {
  description = "The orchestra dashboard (mosaic layout, Cloud Monitoring dashboard JSON)."
  value       = local.dashboard_json
}
