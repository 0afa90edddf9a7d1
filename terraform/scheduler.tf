# One Cloud Scheduler job per scheduled automation and target environment, straight from the
# configuration's `automations.<name>.schedule` / `.environments` (module.config), all in UTC.
# Only schedules that can succeed in the cloud get a job: the workspace automation needs a
# repository to clone (`automations.workspace.settings.source`); without one it gets none
# (module.config's blocked_schedules says so) and runs weekly in GitHub Actions instead.
#
# Most publish {"task", "environment", "mode"} to the schedule topic. Long analyses
# (var.http_scheduled_tasks, default: performance) call the HTTP controller instead, as in the
# source document: POST {controller}/tasks/NAME with an OIDC token, since an event-driven
# function stops at 540 s and the controller may take the full 15 minutes.
#
# Redeliveries and retries never run twice: the scheduled function keys its run on the Pub/Sub
# message id, the controller on the X-CloudScheduler-JobName and -ScheduleTime headers.

locals {
  pubsub_jobs = { for key, job in module.config.schedule_jobs : key => job if job.target == "pubsub" }
  http_jobs   = { for key, job in module.config.schedule_jobs : key => job if job.target == "http" }
}

resource "google_cloud_scheduler_job" "pubsub" {
  for_each = local.pubsub_jobs

  name        = "${local.name}-${each.key}"
  description = "orchestra ${each.value.task} for ${each.value.environment} (${each.value.schedule} UTC)"
  region      = var.region
  schedule    = each.value.schedule
  time_zone   = "Etc/UTC"

  retry_config {
    retry_count          = 3
    min_backoff_duration = "10s"
    max_backoff_duration = "300s"
    max_doublings        = 4
  }

  pubsub_target {
    topic_name = google_pubsub_topic.schedule.id
    data = base64encode(jsonencode({
      task        = each.value.task
      environment = each.value.environment
      mode        = var.scheduled_mode
    }))
    attributes = {
      task        = each.value.task
      environment = each.value.environment
      schedule    = each.value.schedule
      origin      = "cloud-scheduler"
    }
  }

  depends_on = [google_project_service.apis]
}

resource "google_cloud_scheduler_job" "http" {
  for_each = local.http_jobs

  name        = "${local.name}-${each.key}"
  description = "orchestra ${each.value.task} for ${each.value.environment} through the controller (${each.value.schedule} UTC)"
  region      = var.region
  schedule    = each.value.schedule
  time_zone   = "Etc/UTC"
  # Wait as long as the controller may run.
  attempt_deadline = "${var.controller_timeout_seconds}s"

  retry_config {
    retry_count          = 2
    min_backoff_duration = "60s"
    max_backoff_duration = "600s"
    max_doublings        = 3
  }

  http_target {
    uri         = "${local.function_urls["controller"]}/tasks/${each.value.task}"
    http_method = "POST"
    headers = {
      "Content-Type" = "application/json"
    }
    body = base64encode(jsonencode({
      mode        = var.scheduled_mode
      environment = each.value.environment
    }))

    oidc_token {
      service_account_email = google_service_account.scheduler.email
      audience              = local.function_urls["controller"]
    }
  }

  depends_on = [google_cloud_run_service_iam_member.scheduler_invoker]
}
