# What operators see in Cloud Monitoring, from the announcement lines the functions write
# (orchestra.announcements: one JSON line per run finished, deployment change, breaker opened or
# closed and dead letter stored): log-based metrics, a dashboard, and alert policies for dead
# letters, breakers open for more than an hour and scheduled automations without a succeeded run.
#
# Filters, the dashboard and the alert durations are derived by the configuration module (from
# the same YAML as the schedules), where they can be evaluated without a provider; this file only
# creates the resources. The policies here notify var.notification_channels (none by default:
# incidents are listed in the console); they never go to the alerts topic, which starts
# performance runs.

module "observability" {
  source = "./modules/orchestra-config"

  config_file        = local.config_file
  environment        = var.environment
  http_tasks         = var.http_scheduled_tasks
  monitored_services = var.monitored_services
  # Only the lines of this deployment's five functions are counted.
  log_services  = values(local.function_names)
  metric_prefix = local.name
}

locals {
  log_metric_buckets = [1, 2, 3, 5, 10, 20, 50, 100]
}

resource "google_logging_metric" "orchestra" {
  for_each = module.observability.log_metrics

  name        = each.value.name
  description = each.value.description
  filter      = each.value.filter

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = each.value.kind == "counter" ? "INT64" : "DISTRIBUTION"
    unit         = "1"
    display_name = "orchestra ${var.environment}: ${replace(each.key, "_", " ")}"

    dynamic "labels" {
      for_each = each.value.labels
      content {
        key         = labels.key
        value_type  = "STRING"
        description = labels.value.description
      }
    }
  }

  label_extractors = { for key, label in each.value.labels : key => label.extractor }
  value_extractor  = each.value.value_extractor

  # Distributions count things per run (0, 1, 2, ...): a bucket per small count.
  dynamic "bucket_options" {
    for_each = each.value.kind == "distribution" ? [1] : []
    content {
      explicit_buckets {
        bounds = local.log_metric_buckets
      }
    }
  }
}

resource "google_monitoring_dashboard" "orchestra" {
  dashboard_json = module.observability.dashboard_json

  depends_on = [google_logging_metric.orchestra, google_project_service.apis]
}

# Any dead letter is worth a look: a message exhausted its deliveries and was stored for replay.
resource "google_monitoring_alert_policy" "dead_letters" {
  display_name = "orchestra ${var.environment}: dead letter stored"
  combiner     = "OR"
  severity     = "ERROR"

  user_labels = {
    environment     = var.environment
    orchestra_alert = "dead_letters"
  }

  conditions {
    display_name = "dead letters stored > 0"

    condition_threshold {
      filter          = module.observability.observability_alerts.dead_letter_filter
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"

      trigger {
        count = 1
      }

      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["metric.label.origin"]
      }
    }
  }

  alert_strategy {
    auto_close = "86400s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = "A message to the ${local.name} functions exhausted its deliveries and was stored as a dead letter. List them with `orchestra dlq list`; replay one with `orchestra dlq replay ID` once the cause is fixed."
  }

  notification_channels = var.notification_channels

  depends_on = [google_logging_metric.orchestra]
}

# A breaker open for more than an hour. A log-based counter keeps no state, so the condition
# reads the transitions (PromQL, which Cloud Monitoring evaluates over any window): a key that
# opened between one and two hours ago with no close since has been open for over an hour; a
# second term (opened in the last day, no close in 25 hours) keeps the incident open while it
# stays open. The query is derived in modules/orchestra-config (breaker_open_query).
resource "google_monitoring_alert_policy" "breaker_open" {
  display_name = "orchestra ${var.environment}: breaker open for more than an hour"
  combiner     = "OR"
  severity     = "WARNING"

  user_labels = {
    environment     = var.environment
    orchestra_alert = "breaker_open"
  }

  conditions {
    display_name = "breaker opened over an hour ago and not closed since"

    condition_prometheus_query_language {
      query               = module.observability.observability_alerts.breaker_open_query
      duration            = "0s"
      evaluation_interval = "300s"
    }
  }

  alert_strategy {
    auto_close = "86400s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = "A circuit breaker of ${local.name} (label `key`: automation:TASK:ENVIRONMENT or dependency:NAME) has been open for more than an hour: its runs are skipped. `orchestra breakers` shows its last error; it closes after a successful probe."
  }

  notification_channels = var.notification_channels

  depends_on = [google_logging_metric.orchestra]
}

# One policy per scheduled automation and environment: no succeeded run for twice the
# schedule's interval (or automations.<name>.alert_after_minutes). Up to Cloud Monitoring's
# 23.5-hour limit a metric-absence condition watches the succeeded runs; longer windows (daily
# and weekly schedules) use PromQL's absent_over_time over the same series.
resource "google_monitoring_alert_policy" "no_success" {
  for_each = module.observability.no_success_alerts

  display_name = "orchestra ${var.environment}: no succeeded ${each.value.task} run for ${each.value.environment} in ${each.value.after_minutes} min"
  combiner     = "OR"
  severity     = "WARNING"

  user_labels = {
    environment        = var.environment
    orchestra_alert    = "no_success"
    orchestra_task     = replace(lower(each.value.task), "/[^a-z0-9_-]/", "_")
    target_environment = replace(lower(each.value.environment), "/[^a-z0-9_-]/", "_")
  }

  conditions {
    display_name = "no succeeded ${each.value.task} run (${each.value.environment}) for ${each.value.after_minutes} min"

    dynamic "condition_absent" {
      for_each = each.value.condition == "absent" ? [each.value] : []
      content {
        filter   = condition_absent.value.filter
        duration = "${condition_absent.value.duration_seconds}s"

        trigger {
          count = 1
        }

        # Summed across revisions: a new revision starts new series, not an absence.
        aggregations {
          alignment_period     = "60s"
          per_series_aligner   = "ALIGN_SUM"
          cross_series_reducer = "REDUCE_SUM"
          group_by_fields      = ["metric.label.task", "metric.label.environment"]
        }
      }
    }

    dynamic "condition_prometheus_query_language" {
      for_each = each.value.condition == "promql" ? [each.value] : []
      content {
        query               = condition_prometheus_query_language.value.promql
        duration            = "0s"
        evaluation_interval = "300s"
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "No run of `${each.value.task}` for ${each.value.environment} succeeded in ${each.value.after_minutes} minutes (schedule `${each.value.schedule}` UTC). Check its scheduler job and `orchestra runs list --task ${each.value.task}`."
  }

  notification_channels = var.notification_channels

  depends_on = [google_logging_metric.orchestra]
}
