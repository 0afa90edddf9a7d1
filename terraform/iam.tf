# Identities, one per job, each holding only what that job needs.
#
#   o-ENV-fn-NAME     runtime of function NAME
#   o-ENV-push-NAME   signs the push deliveries to function NAME (invoker of that function only)
#   o-ENV-trigger     signs the Eventarc deliveries to dead_letter (invoker of it only)
#   o-ENV-scheduler   signs the scheduler's HTTP calls to the controller (invoker of it only)
#   o-ENV-build       builds the function images

resource "google_service_account" "fn" {
  for_each = local.functions

  account_id   = "${local.sa_prefix}-fn-${replace(each.key, "_", "-")}"
  display_name = "orchestra ${each.key} function (${var.environment})"
}

resource "google_service_account" "push" {
  for_each = local.push_functions

  account_id   = "${local.sa_prefix}-push-${replace(each.key, "_", "-")}"
  display_name = "orchestra push deliveries to ${each.key} (${var.environment})"
}

resource "google_service_account" "trigger" {
  account_id   = "${local.sa_prefix}-trigger"
  display_name = "orchestra Eventarc deliveries to dead_letter (${var.environment})"
}

resource "google_service_account" "scheduler" {
  account_id   = "${local.sa_prefix}-scheduler"
  display_name = "orchestra scheduler calls to the controller (${var.environment})"
}

resource "google_service_account" "build" {
  account_id   = "${local.sa_prefix}-build"
  display_name = "orchestra function builds (${var.environment})"
}

# --- runtime: state store and configuration -------------------------------------------------

# Read/write documents in the orchestra database only.
resource "google_project_iam_member" "fn_firestore" {
  for_each = local.functions

  project = var.project
  role    = "roles/datastore.user"
  member  = google_service_account.fn[each.key].member

  condition {
    title       = "orchestra-database-only"
    description = "Only the ${google_firestore_database.state.name} Firestore database."
    expression  = "resource.name == \"projects/${var.project}/databases/${google_firestore_database.state.name}\" || resource.name.startsWith(\"projects/${var.project}/databases/${google_firestore_database.state.name}/\")"
  }
}

resource "google_secret_manager_secret_iam_member" "config" {
  for_each = local.functions

  secret_id = google_secret_manager_secret.config.id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.fn[each.key].member
}

resource "google_secret_manager_secret_iam_member" "webhook" {
  secret_id = google_secret_manager_secret.webhook.id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.fn["webhooks"].member
}

# Functions that execute automations read metrics and change Cloud Run services.
resource "google_project_iam_member" "fn_automation" {
  for_each = {
    for pair in setproduct([for name, fn in local.functions : name if fn.runs], var.automation_roles) :
    "${pair[0]}/${pair[1]}" => { function = pair[0], role = pair[1] }
  }

  project = var.project
  role    = each.value.role
  member  = google_service_account.fn[each.value.function].member
}

# --- invokers: each function can be called only by its own delivery identity ----------------

resource "google_cloud_run_service_iam_member" "push_invoker" {
  for_each = local.push_functions

  project  = var.project
  location = var.region
  service  = google_cloudfunctions2_function.fn[each.key].name
  role     = "roles/run.invoker"
  member   = google_service_account.push[each.key].member
}

resource "google_cloud_run_service_iam_member" "trigger_invoker" {
  project  = var.project
  location = var.region
  service  = google_cloudfunctions2_function.fn["dead_letter"].name
  role     = "roles/run.invoker"
  member   = google_service_account.trigger.member
}

resource "google_cloud_run_service_iam_member" "scheduler_invoker" {
  project  = var.project
  location = var.region
  service  = google_cloudfunctions2_function.fn["controller"].name
  role     = "roles/run.invoker"
  member   = google_service_account.scheduler.member
}

resource "google_cloud_run_service_iam_member" "controller_invokers" {
  for_each = var.controller_invokers

  project  = var.project
  location = var.region
  service  = google_cloudfunctions2_function.fn["controller"].name
  role     = "roles/run.invoker"
  member   = each.value
}

resource "google_cloud_run_service_iam_member" "webhook_invokers" {
  for_each = var.webhook_invokers

  project  = var.project
  location = var.region
  service  = google_cloudfunctions2_function.fn["webhooks"].name
  role     = "roles/run.invoker"
  member   = each.value
}

# --- build: read the sources, push the image, write build logs ------------------------------

resource "google_project_iam_member" "build" {
  for_each = toset(["roles/logging.logWriter"])

  project = var.project
  role    = each.value
  member  = google_service_account.build.member
}

resource "google_artifact_registry_repository_iam_member" "build" {
  project    = var.project
  location   = var.region
  repository = google_artifact_registry_repository.functions.name
  role       = "roles/artifactregistry.writer"
  member     = google_service_account.build.member
}

resource "google_storage_bucket_iam_member" "build_source" {
  bucket = google_storage_bucket.source.name
  role   = "roles/storage.objectViewer"
  member = google_service_account.build.member
}

# Every function announces what happened (runs, approvals, deployments, breakers, dead letters)
# on the events topic: publisher on that topic only.
resource "google_pubsub_topic_iam_member" "events_publisher" {
  for_each = google_service_account.fn

  topic  = google_pubsub_topic.events.id
  role   = "roles/pubsub.publisher"
  member = each.value.member
}

# Pub/Sub signs push deliveries (ours and Eventarc's) as the delivery identities: needed
# explicitly in projects created before April 2021, harmless elsewhere.
resource "google_service_account_iam_member" "push_token_creator" {
  for_each = merge(
    { for name, sa in google_service_account.push : "push-${name}" => sa.name },
    { trigger = google_service_account.trigger.name },
  )

  service_account_id = each.value
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_agent
}

# --- test suites on Cloud Build ---------------------------------------------------------------

# A push (webhooks), a schedule or a manual run may start a `runner: cloud-build` suite
# (module.config.cloud_build_suites): those functions create builds in the suite's project and,
# when the suite names a build service account, act as it. No suite on Cloud Build, no grant.
locals {
  suite_starters       = [for name, fn in local.functions : name if fn.runs || name == "webhooks"]
  suite_build_projects = toset([for suite in module.config.cloud_build_suites : suite.project])
  suite_build_accounts = toset(compact([for suite in module.config.cloud_build_suites : suite.service_account]))
}

resource "google_project_iam_member" "suite_builds" {
  #checkov:skip=CKV_GCP_49:Starting a build is what a cloud-build suite is; the grant exists only for projects the configuration names for suites, and cloud_build.service_account makes builds run as a dedicated least-privilege account instead of Cloud Build's default one.
  for_each = {
    for pair in setproduct(tolist(local.suite_build_projects), local.suite_starters) :
    "${pair[1]}:${pair[0]}" => { project = pair[0], function = pair[1] }
  }

  project = each.value.project
  role    = "roles/cloudbuild.builds.editor"
  member  = google_service_account.fn[each.value.function].member
}

resource "google_service_account_iam_member" "suite_build_account" {
  for_each = {
    for pair in setproduct(tolist(local.suite_build_accounts), local.suite_starters) :
    "${pair[1]}:${pair[0]}" => { account = pair[0], function = pair[1] }
  }

  # NAME@PROJECT.iam.gserviceaccount.com lives in PROJECT (the settings accept only that form).
  service_account_id = "projects/${regex("@([a-z0-9-]+)\\.iam\\.gserviceaccount\\.com$", each.value.account)[0]}/serviceAccounts/${each.value.account}"
  role               = "roles/iam.serviceAccountUser"
  member             = google_service_account.fn[each.value.function].member
}
