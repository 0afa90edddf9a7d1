# The five Cloud Functions (gen2), built from the archives `make package` writes to
# build/functions/NAME.zip (each: main.py, the orchestra package, requirements.txt).

resource "google_storage_bucket" "source" {
  name     = "${var.project}-${local.name}-source"
  location = var.region

  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  versioning {
    enabled = true
  }

  # Archives are content-addressed (one object per distinct build); old ones are dead weight.
  lifecycle_rule {
    condition {
      age                = 30
      with_state         = "ANY"
      num_newer_versions = 3
    }
    action {
      type = "Delete"
    }
  }

  dynamic "encryption" {
    for_each = var.kms_key_name == null ? [] : [var.kms_key_name]
    content {
      default_kms_key_name = encryption.value
    }
  }

  logging {
    log_bucket = google_storage_bucket.access_logs.name
  }

  depends_on = [google_project_service.apis]
}

# Access logs of the source bucket (who uploaded or read function code).
resource "google_storage_bucket" "access_logs" {
  #checkov:skip=CKV_GCP_62:This is the access-log bucket itself; logging it into itself would log its own log writes.
  name     = "${var.project}-${local.name}-logs"
  location = var.region

  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"

  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      age = 365
    }
    action {
      type = "Delete"
    }
  }

  dynamic "encryption" {
    for_each = var.kms_key_name == null ? [] : [var.kms_key_name]
    content {
      default_kms_key_name = encryption.value
    }
  }

  depends_on = [google_project_service.apis]
}

resource "google_storage_bucket_object" "source" {
  for_each = local.functions

  # The content hash in the name makes a code change a new object, hence a new function build.
  name   = "functions/${each.key}-${filemd5("${local.build_dir}/${each.key}.zip")}.zip"
  bucket = google_storage_bucket.source.name
  source = "${local.build_dir}/${each.key}.zip"
}

# Function images go to a repository of this deployment (not the shared gcf-artifacts), so the
# build service account can be limited to it.
resource "google_artifact_registry_repository" "functions" {
  repository_id = "${local.name}-functions"
  location      = var.region
  format        = "DOCKER"
  description   = "Images of the orchestra Cloud Functions (${var.environment})."
  kms_key_name  = var.kms_key_name

  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = 10
    }
  }

  depends_on = [google_project_service.apis]
}

resource "google_cloudfunctions2_function" "fn" {
  #checkov:skip=CKV_GCP_124:Only the webhooks function allows all ingress (GitHub deliveries arrive from the internet through an authenticated relay); every function still requires IAM to invoke, and tests/deploy asserts the other functions are internal-only or var.controller_ingress.
  for_each = local.functions

  name        = local.function_names[each.key]
  location    = var.region
  description = "orchestra ${each.key} (${var.environment})"

  build_config {
    runtime           = "python311"
    entry_point       = each.value.entry_point
    docker_repository = google_artifact_registry_repository.functions.id
    service_account   = google_service_account.build.id

    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.source[each.key].name
      }
    }
  }

  service_config {
    available_cpu      = var.function_cpu
    available_memory   = var.function_memory
    timeout_seconds    = each.value.timeout
    min_instance_count = 0
    max_instance_count = var.max_instances
    # One run per instance: analyses are CPU-bound and hold a lease on their run.
    max_instance_request_concurrency = 1
    ingress_settings                 = each.value.ingress
    all_traffic_on_latest_revision   = true
    service_account_email            = google_service_account.fn[each.key].email

    environment_variables = merge(
      {
        ORCHESTRA_STORE        = local.store_url
        CONFIG_PATH            = local.config_path
        LOG_EXECUTION_ID       = "true"
        ORCHESTRA_EVENTS_TOPIC = google_pubsub_topic.events.id
      },
      # HTTP functions verify the caller's Google ID token for their own URLs (who called is
      # what approvals record); without an audience the controller refuses every request.
      each.value.trigger == "http" ? { ORCHESTRA_AUDIENCE = "${local.function_urls[each.key]},${local.run_urls[each.key]}" } : {},
    )

    # The configuration file, pinned to the version this apply wrote: a configuration change
    # rolls out as a new revision, together with the schedules and alert policies derived from it.
    secret_volumes {
      mount_path = local.config_dir
      project_id = data.google_project.this.number
      secret     = google_secret_manager_secret.config.secret_id
      versions {
        version = google_secret_manager_secret_version.config.version
        path    = "config.yaml"
      }
    }

    dynamic "secret_environment_variables" {
      for_each = each.key == "webhooks" ? [google_secret_manager_secret_version.webhook] : []
      content {
        key        = "GITHUB_WEBHOOK_SECRET"
        project_id = data.google_project.this.number
        secret     = google_secret_manager_secret.webhook.secret_id
        version    = secret_environment_variables.value.version
      }
    }
  }

  dynamic "event_trigger" {
    for_each = each.value.trigger == "eventarc" ? [each.value.topic] : []
    content {
      trigger_region        = var.region
      event_type            = "google.cloud.pubsub.topic.v1.messagePublished"
      pubsub_topic          = local.topics[event_trigger.value].id
      retry_policy          = "RETRY_POLICY_RETRY"
      service_account_email = google_service_account.trigger.email
    }
  }

  depends_on = [
    google_project_service.apis,
    google_project_iam_member.build,
    google_artifact_registry_repository_iam_member.build,
    google_storage_bucket_iam_member.build_source,
    google_secret_manager_secret_iam_member.config,
    google_secret_manager_secret_iam_member.webhook,
  ]
}
