# The operator console: its own HTTP function (functions/console), reached only through
# Identity-Aware Proxy. The console reads the identity from IAP's signed assertion alone, with
# the audience below; its CSRF key is a random secret of this deployment.
#
# IAP is switched on for the function's Cloud Run service once, after the first apply:
#   terraform output -raw console_enable_iap | sh
# (the google provider exposes the switch only on google_cloud_run_v2_service, not on functions).

variable "console_members" {
  description = "Who may open the console through IAP (roles/iap.httpsResourceAccessor): user:, group: or domain: members."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for m in var.console_members : can(regex("^(user|group|domain):", m))])
    error_message = "console_members takes user:EMAIL, group:EMAIL or domain:DOMAIN members only (never allUsers or allAuthenticatedUsers)."
  }
}

locals {
  console_name = "${local.name}-console"
  # The audience of IAP's assertion for a Cloud Run service with IAP switched on.
  console_audience = "/projects/${data.google_project.this.number}/locations/${var.region}/services/${local.console_name}"
  iap_agent        = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-iap.iam.gserviceaccount.com"
}

resource "google_project_service" "iap" {
  project            = var.project
  service            = "iap.googleapis.com"
  disable_on_destroy = false
}

resource "google_service_account" "console" {
  account_id   = "${local.sa_prefix}-fn-console"
  display_name = "orchestra console function (${var.environment})"
}

resource "google_project_iam_member" "console_firestore" {
  project = var.project
  role    = "roles/datastore.user"
  member  = google_service_account.console.member

  condition {
    title       = "orchestra-database-only"
    description = "Only the ${google_firestore_database.state.name} Firestore database."
    expression  = "resource.name == \"projects/${var.project}/databases/${google_firestore_database.state.name}\" || resource.name.startsWith(\"projects/${var.project}/databases/${google_firestore_database.state.name}/\")"
  }
}

resource "google_secret_manager_secret_iam_member" "console_config" {
  secret_id = google_secret_manager_secret.config.id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.console.member
}

resource "random_password" "console_csrf" {
  length  = 64
  special = false
}

resource "google_secret_manager_secret" "console_csrf" {
  secret_id = "${local.name}-console-csrf"

  replication {
    dynamic "auto" {
      for_each = var.kms_key_name == null ? [1] : []
      content {}
    }
    dynamic "user_managed" {
      for_each = var.kms_key_name == null ? [] : [1]
      content {
        replicas {
          location = var.region
          customer_managed_encryption {
            kms_key_name = var.kms_key_name
          }
        }
      }
    }
  }

  depends_on = [google_project_service.apis]
}

resource "google_secret_manager_secret_version" "console_csrf" {
  secret      = google_secret_manager_secret.console_csrf.id
  secret_data = random_password.console_csrf.result
}

resource "google_secret_manager_secret_iam_member" "console_csrf" {
  secret_id = google_secret_manager_secret.console_csrf.id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.console.member
}

resource "google_storage_bucket_object" "console_source" {
  name   = "functions/console-${filemd5("${local.build_dir}/console.zip")}.zip"
  bucket = google_storage_bucket.source.name
  source = "${local.build_dir}/console.zip"
}

resource "google_cloudfunctions2_function" "console" {
  #checkov:skip=CKV_GCP_124:People reach the console from their browsers through Identity-Aware Proxy on the run.app URL; IAP and IAM (only IAP's service agent may invoke) guard every request.
  name        = local.console_name
  location    = var.region
  description = "orchestra operator console (${var.environment})"

  build_config {
    runtime           = "python311"
    entry_point       = "console"
    docker_repository = google_artifact_registry_repository.functions.id
    service_account   = google_service_account.build.id

    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.console_source.name
      }
    }
  }

  service_config {
    available_cpu                    = var.function_cpu
    available_memory                 = var.function_memory
    timeout_seconds                  = 60
    min_instance_count               = 0
    max_instance_count               = var.max_instances
    max_instance_request_concurrency = 1
    ingress_settings                 = "ALLOW_ALL"
    all_traffic_on_latest_revision   = true
    service_account_email            = google_service_account.console.email

    environment_variables = {
      ORCHESTRA_STORE            = local.store_url
      CONFIG_PATH                = local.config_path
      ORCHESTRA_CONSOLE_AUDIENCE = local.console_audience
      LOG_EXECUTION_ID           = "true"
    }

    secret_volumes {
      mount_path = local.config_dir
      project_id = data.google_project.this.number
      secret     = google_secret_manager_secret.config.secret_id
      versions {
        version = google_secret_manager_secret_version.config.version
        path    = "config.yaml"
      }
    }

    secret_environment_variables {
      key        = "ORCHESTRA_CONSOLE_CSRF_KEY"
      project_id = data.google_project.this.number
      secret     = google_secret_manager_secret.console_csrf.secret_id
      version    = google_secret_manager_secret_version.console_csrf.version
    }
  }

  depends_on = [
    google_project_service.apis,
    google_project_iam_member.build,
    google_artifact_registry_repository_iam_member.build,
    google_storage_bucket_iam_member.build_source,
    google_secret_manager_secret_iam_member.console_config,
    google_secret_manager_secret_iam_member.console_csrf,
  ]
}

# IAP reaches the service as its service agent: the only invoker (no allUsers).
resource "google_cloud_run_service_iam_member" "console_iap_invoker" {
  location = var.region
  service  = google_cloudfunctions2_function.console.name
  role     = "roles/run.invoker"
  member   = local.iap_agent

  depends_on = [google_project_service.iap]
}

# Who may pass IAP to the console.
resource "google_iap_web_cloud_run_service_iam_member" "console_access" {
  for_each = toset(var.console_members)

  project                = var.project
  location               = var.region
  cloud_run_service_name = google_cloudfunctions2_function.console.name
  role                   = "roles/iap.httpsResourceAccessor"
  member                 = each.value

  depends_on = [google_project_service.iap]
}

# The runs page filters by environment and by trigger kind (Firestore merges these with the
# other runs indexes for combined filters).
resource "google_firestore_index" "console" {
  for_each = {
    runs-environment  = [["environment", "ASCENDING"], ["created_at", "DESCENDING"]]
    runs-trigger-kind = [["trigger_kind", "ASCENDING"], ["created_at", "DESCENDING"]]
  }

  project    = var.project
  database   = google_firestore_database.state.name
  collection = "runs"

  dynamic "fields" {
    for_each = each.value
    content {
      field_path = fields.value[0]
      order      = fields.value[1]
    }
  }
}

output "console_url" {
  description = "The console (through Identity-Aware Proxy)."
  value       = google_cloudfunctions2_function.console.service_config[0].uri
}

output "console_enable_iap" {
  description = "The one command that switches IAP on for the console's Cloud Run service."
  value       = "gcloud beta run services update ${local.console_name} --project ${var.project} --region ${var.region} --iap"
}
