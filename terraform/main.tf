# Orchestra Automation on Google Cloud: five Cloud Functions (gen2) sharing one library, run
# state in Firestore, schedules in Cloud Scheduler, alerts from Cloud Monitoring.
#
#   Cloud Scheduler --(Pub/Sub)--> schedule topic --push--> scheduled   --+
#   Cloud Scheduler --(HTTP, OIDC)--------------------------> controller --+
#   Cloud Monitoring --> alerts topic ------------push--> alerts      --+--> orchestra runner
#   GitHub (via an authenticated relay) ------------------> webhooks    --+     (Firestore)
#   any push subscription, after N failed deliveries --> dead-letter topic --> dead_letter
#
# Everything that depends on the orchestra configuration (schedules, thresholds, retention,
# delivery attempts) is derived from the same YAML file the functions load.

data "google_project" "this" {
  project_id = var.project
}

locals {
  name        = "orchestra-${var.environment}"
  sa_prefix   = "o-${var.environment}"
  config_file = coalesce(var.config_file, "${path.module}/../shared/orchestra/defaults/config.yaml")
  build_dir   = coalesce(var.functions_dir, "${path.module}/../build/functions")

  # The five functions (functions/NAME/main.py, entry point, how they are triggered).
  functions = {
    scheduled = {
      entry_point = "scheduled_task"
      trigger     = "push"
      topic       = "schedule"
      timeout     = var.event_timeout_seconds
      ingress     = "ALLOW_INTERNAL_ONLY"
      runs        = true
    }
    alerts = {
      entry_point = "monitoring_alert"
      trigger     = "push"
      topic       = "alerts"
      timeout     = var.event_timeout_seconds
      ingress     = "ALLOW_INTERNAL_ONLY"
      runs        = true
    }
    controller = {
      entry_point = "controller"
      trigger     = "http"
      topic       = null
      timeout     = var.controller_timeout_seconds
      ingress     = var.controller_ingress
      runs        = true
    }
    webhooks = {
      entry_point = "repo_webhook"
      trigger     = "http"
      topic       = null
      timeout     = var.webhook_timeout_seconds
      ingress     = "ALLOW_ALL"
      runs        = false
    }
    dead_letter = {
      entry_point = "dead_letter"
      trigger     = "eventarc"
      topic       = "dead_letter"
      timeout     = var.event_timeout_seconds
      ingress     = "ALLOW_INTERNAL_ONLY"
      runs        = false
    }
  }

  push_functions = { for name, fn in local.functions : name => fn if fn.trigger == "push" }

  function_names = { for name, fn in local.functions : name => "${local.name}-${replace(name, "_", "-")}" }
  # Known before the functions exist, so a function can be told its own URL: the audience its
  # callers' ID tokens carry (ORCHESTRA_AUDIENCE), on both URLs a gen2 function answers on.
  function_urls = {
    for name, fn_name in local.function_names : name => "https://${var.region}-${var.project}.cloudfunctions.net/${fn_name}"
  }
  run_urls = {
    for name, fn_name in local.function_names : name => "https://${fn_name}-${data.google_project.this.number}.${var.region}.run.app"
  }

  store_url   = "firestore://${var.project}/${google_firestore_database.state.name}"
  config_dir  = "/etc/automation"
  config_path = "${local.config_dir}/config.yaml"

  pubsub_agent     = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
  monitoring_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-monitoring-notification.iam.gserviceaccount.com"

  apis = toset([
    "artifactregistry.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "cloudscheduler.googleapis.com",
    "eventarc.googleapis.com",
    "firestore.googleapis.com",
    "iam.googleapis.com",
    "monitoring.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "storage.googleapis.com",
  ])
}

module "config" {
  source = "./modules/orchestra-config"

  config_file        = local.config_file
  environment        = var.environment
  http_tasks         = var.http_scheduled_tasks
  monitored_services = var.monitored_services
}

resource "google_project_service" "apis" {
  for_each = local.apis

  project = var.project
  service = each.value
  # Other workloads in the project may use the same APIs.
  disable_on_destroy = false
}
