# Alerts: Cloud Monitoring incidents are published to the alerts topic, which triggers focused
# performance runs. One policy per `thresholds.<rule>` of the configuration that applies to this
# environment, with the rule's threshold and duration (module.config.alert_rules).

resource "google_monitoring_notification_channel" "alerts" {
  display_name = "orchestra alerts (${var.environment})"
  type         = "pubsub"
  description  = "Delivers incidents to ${google_pubsub_topic.alerts.name}, which runs focused performance optimizations."

  labels = {
    topic = google_pubsub_topic.alerts.id
  }

  depends_on = [google_project_service.apis]
}

resource "google_monitoring_alert_policy" "threshold" {
  for_each = module.config.alert_rules

  display_name = "orchestra ${var.environment}: ${each.key} above ${each.value.above} for ${each.value.for_minutes} min"
  combiner     = "OR"
  severity     = "WARNING"

  # Read back by the alerts function (orchestra.events.alerts): the metric the incident is about
  # (needed for the 5xx ratio, whose metric type is plain request_count) and the environment
  # whose gates the focused run obeys. Rule and focus are for people reading the incident.
  user_labels = {
    orchestra_metric = each.value.metric
    environment      = var.environment
    orchestra_rule   = replace(lower(each.key), "/[^a-z0-9_-]/", "_")
    orchestra_focus  = replace(lower(each.value.focus), "/[^a-z0-9_-]/", "_")
  }

  conditions {
    display_name = "${each.value.metric} above ${each.value.above} for ${each.value.for_minutes} min"

    condition_threshold {
      filter          = each.value.filter
      comparison      = "COMPARISON_GT"
      threshold_value = each.value.threshold_value
      duration        = "${each.value.duration_seconds}s"

      trigger {
        count = 1
      }

      aggregations {
        alignment_period     = "60s"
        per_series_aligner   = each.value.aligner
        cross_series_reducer = each.value.reducer
        group_by_fields      = ["resource.labels.service_name"]
      }

      denominator_filter = each.value.denominator_filter

      dynamic "denominator_aggregations" {
        for_each = each.value.denominator_filter == null ? [] : [1]
        content {
          alignment_period     = "60s"
          per_series_aligner   = each.value.aligner
          cross_series_reducer = each.value.reducer
          group_by_fields      = ["resource.labels.service_name"]
        }
      }
    }
  }

  alert_strategy {
    auto_close = "1800s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = "Threshold `${each.key}` of the orchestra configuration (${each.value.metric} above ${each.value.above} for ${each.value.for_minutes} minutes). The incident is published to `${google_pubsub_topic.alerts.name}`; the alerts function starts a performance run focused on `${each.value.focus}` for the service in the incident."
  }

  notification_channels = [google_monitoring_notification_channel.alerts.id]

  depends_on = [google_pubsub_topic_iam_member.alerts_publisher]
}
