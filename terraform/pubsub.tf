# Topics, and the subscriptions that deliver them to the functions.
#
# The scheduled and alerts functions are invoked by push subscriptions that this configuration
# owns, because only those can carry a dead-letter policy: the subscription Eventarc creates for a
# gen2 event trigger cannot be given one from Terraform. functions-framework turns the push
# request into the same CloudEvent (google.cloud.pubsub.topic.v1.messagePublished, id = message
# id, source = the topic named in the push path). A message that still fails after
# max_delivery_attempts goes to the dead-letter topic, whose function is an Eventarc trigger with
# retries: there is nowhere further to dead-letter to.

resource "google_pubsub_topic" "schedule" {
  name         = "${local.name}-schedule"
  kms_key_name = var.kms_key_name

  message_retention_duration = "604800s"

  depends_on = [google_project_service.apis]
}

resource "google_pubsub_topic" "alerts" {
  name         = "${local.name}-alerts"
  kms_key_name = var.kms_key_name

  message_retention_duration = "604800s"

  depends_on = [google_project_service.apis]
}

resource "google_pubsub_topic" "dead_letter" {
  name         = "${local.name}-dead-letter"
  kms_key_name = var.kms_key_name

  message_retention_duration = "604800s"

  depends_on = [google_project_service.apis]
}

# Announcements (runs finished, approvals awaited, deployment state changes, breakers opened and
# closed, dead letters stored), published by every function as CloudEvents in structured JSON
# mode. Subscribers (a chat or e-mail relay, BigQuery, another system) attach their own
# subscriptions; nothing here depends on them.
resource "google_pubsub_topic" "events" {
  name         = "${local.name}-events"
  kms_key_name = var.kms_key_name

  message_retention_duration = "604800s"

  depends_on = [google_project_service.apis]
}

locals {
  topics = {
    schedule    = google_pubsub_topic.schedule
    alerts      = google_pubsub_topic.alerts
    dead_letter = google_pubsub_topic.dead_letter
    events      = google_pubsub_topic.events
  }
}

# One push subscription per event function, authenticated with an OIDC token of a service
# account that may invoke that function only.
resource "google_pubsub_subscription" "push" {
  for_each = local.push_functions

  name  = "${local.name}-${replace(each.key, "_", "-")}-push"
  topic = local.topics[each.value.topic].id

  # A push delivery is acked by a 2xx response; allow the whole function timeout.
  ack_deadline_seconds       = 600
  message_retention_duration = "604800s"
  retain_acked_messages      = false
  expiration_policy {
    ttl = ""
  }

  push_config {
    # The topic in the path lets functions-framework fill the CloudEvent source.
    push_endpoint = "${local.function_urls[each.key]}/${local.topics[each.value.topic].id}"

    oidc_token {
      service_account_email = google_service_account.push[each.key].email
      audience              = local.function_urls[each.key]
    }
  }

  # Exponential backoff between redeliveries of a failed (5xx or timed-out) push.
  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter.id
    max_delivery_attempts = module.config.max_delivery_attempts
  }

  depends_on = [
    google_pubsub_topic_iam_member.dead_letter_publisher,
    google_cloud_run_service_iam_member.push_invoker,
  ]
}

# Dead-lettering is done by the Pub/Sub service agent: it must publish to the dead-letter topic
# and acknowledge on the source subscriptions.
resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  topic  = google_pubsub_topic.dead_letter.id
  role   = "roles/pubsub.publisher"
  member = local.pubsub_agent
}

resource "google_pubsub_subscription_iam_member" "dead_letter_subscriber" {
  for_each = google_pubsub_subscription.push

  subscription = each.value.id
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_agent
}

# Cloud Monitoring publishes incidents to the alerts topic through its notification service agent.
# The agent exists once the project has a Pub/Sub notification channel.
resource "google_pubsub_topic_iam_member" "alerts_publisher" {
  topic  = google_pubsub_topic.alerts.id
  role   = "roles/pubsub.publisher"
  member = local.monitoring_agent

  depends_on = [google_monitoring_notification_channel.alerts]
}
