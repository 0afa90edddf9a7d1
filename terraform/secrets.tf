# Configuration and the GitHub webhook secret live in Secret Manager.

# The configuration file this apply derived the schedules and alert policies from: the functions
# mount exactly this version.
resource "google_secret_manager_secret" "config" {
  secret_id = "${local.name}-config"

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

resource "google_secret_manager_secret_version" "config" {
  secret      = google_secret_manager_secret.config.id
  secret_data = file(local.config_file)
}

# HMAC key of the GitHub webhook. Generated here so the first apply deploys a working function;
# read it with `gcloud secrets versions access latest --secret=SECRET_ID` to configure the
# webhook on GitHub. To rotate: `terraform apply -replace=random_password.webhook`.
resource "random_password" "webhook" {
  length  = 48
  special = false
}

resource "google_secret_manager_secret" "webhook" {
  secret_id = "${local.name}-github-webhook"

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

resource "google_secret_manager_secret_version" "webhook" {
  secret      = google_secret_manager_secret.webhook.id
  secret_data = random_password.webhook.result
}

# Access tokens the scheduled runs read to clone a repository
# (automations.workspace.settings.source.token_secret, derived by module.config): the operator
# creates the secret and its versions; the functions that run automations may read it, nothing more.
resource "google_secret_manager_secret_iam_member" "source_token" {
  for_each = {
    for pair in setproduct(tolist(module.config.source_token_secrets), [for name, fn in local.functions : name if fn.runs]) :
    "${pair[1]}:${pair[0]}" => { secret = pair[0], function = pair[1] }
  }

  project   = split("/", each.value.secret)[1]
  secret_id = each.value.secret
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.fn[each.value.function].member
}
