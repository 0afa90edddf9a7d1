output "function_urls" {
  description = "HTTPS endpoint of each function (all require IAM authentication)."
  value       = { for name, fn in google_cloudfunctions2_function.fn : name => fn.service_config[0].uri }
}

output "invoke_urls" {
  description = "The cloudfunctions.net URL of each function: the audience of the ID tokens the scheduler and push subscriptions send (and what `gcloud auth print-identity-token --audiences=URL` should name)."
  value       = local.function_urls
}

output "controller_url" {
  description = "The HTTP controller: POST /tasks/NAME, GET /health."
  value       = local.function_urls["controller"]
}

output "topic_names" {
  description = "Pub/Sub topics: schedule (Cloud Scheduler), alerts (Cloud Monitoring), dead_letter."
  value       = { for key, topic in local.topics : key => topic.name }
}

output "topic_ids" {
  description = "Full topic ids (projects/P/topics/T)."
  value       = { for key, topic in local.topics : key => topic.id }
}

output "scheduler_jobs" {
  description = "Scheduler job per automation and environment, with its cron schedule (UTC) and target."
  value       = { for key, job in module.config.schedule_jobs : key => "${job.schedule} -> ${job.target}" }
}

output "alert_policies" {
  description = "Alert policy per threshold rule of the configuration."
  value       = { for key, policy in google_monitoring_alert_policy.threshold : key => policy.name }
}

output "store_url" {
  description = "ORCHESTRA_STORE of the functions (and of `orchestra` CLI runs against this deployment)."
  value       = local.store_url
}

output "service_accounts" {
  description = "Runtime identity of each function."
  value       = { for name, sa in google_service_account.fn : name => sa.email }
}

output "webhook_secret_id" {
  description = "Secret Manager secret holding the GitHub webhook HMAC key."
  value       = google_secret_manager_secret.webhook.secret_id
}

output "config_secret_id" {
  description = "Secret Manager secret holding the deployed configuration."
  value       = google_secret_manager_secret.config.secret_id
}

output "log_metrics" {
  description = "Log-based metric type per metric of the observability dashboard and alerts."
  value       = { for key, metric in google_logging_metric.orchestra : key => "logging.googleapis.com/user/${metric.name}" }
}

output "dashboard_id" {
  description = "The orchestra Cloud Monitoring dashboard."
  value       = google_monitoring_dashboard.orchestra.id
}

output "observability_alert_policies" {
  description = "Observability alert policies: dead letters, breaker open, and one per scheduled automation and environment without a succeeded run."
  value = merge(
    {
      dead_letters = google_monitoring_alert_policy.dead_letters.name
      breaker_open = google_monitoring_alert_policy.breaker_open.name
    },
    { for key, policy in google_monitoring_alert_policy.no_success : "no_success:${key}" => policy.name },
  )
}
