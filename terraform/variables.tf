variable "project" {
  description = "Google Cloud project id to deploy into."
  type        = string

  validation {
    condition     = can(regex("^[a-z][-a-z0-9]{4,28}[a-z0-9]$", var.project))
    error_message = "project must be a project id: 6-30 lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "region" {
  description = "Region of the functions, scheduler jobs, source bucket and image repository."
  type        = string
  default     = "us-central1"

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must be a Google Cloud region such as us-central1 or europe-west1."
  }
}

variable "environment" {
  description = "Environment this deployment serves (an `environments` key of the configuration). Target of schedules that name none."
  type        = string

  validation {
    # Service account ids are at most 30 characters: o-<environment>-<role> must fit.
    condition     = can(regex("^[a-z][a-z0-9-]{0,11}$", var.environment))
    error_message = "environment must be 1-12 lower-case letters, digits or hyphens, starting with a letter."
  }
}

variable "config_file" {
  description = "The orchestra configuration YAML. Schedules and alert thresholds are derived from it and the functions load the same file (Secret Manager), so they cannot drift. Default: the library's bundled configuration."
  type        = string
  default     = null
}

variable "functions_dir" {
  description = "Directory holding the function archives built by `make package` (NAME.zip). Default: build/functions at the repository root."
  type        = string
  default     = null
}

variable "firestore_database" {
  description = "Name of the Firestore (native mode) database holding run state. A named database, so an existing (default) database is never touched."
  type        = string
  default     = "orchestra"
}

variable "firestore_location" {
  description = "Firestore location (region such as us-central1, or multi-region such as nam5). Default: var.region."
  type        = string
  default     = null
}

variable "function_cpu" {
  description = "vCPUs per function instance. The source document asks for 1 minimum, 2 recommended."
  type        = string
  default     = "2"

  validation {
    condition     = contains(["1", "2"], var.function_cpu)
    error_message = "function_cpu must be \"1\" or \"2\"."
  }
}

variable "function_memory" {
  description = "Memory per function instance: 1Gi minimum for analyses, 2Gi with 2 vCPUs."
  type        = string
  default     = "2Gi"

  validation {
    condition     = contains(["1Gi", "2Gi"], var.function_memory)
    error_message = "function_memory must be \"1Gi\" or \"2Gi\"."
  }
}

variable "event_timeout_seconds" {
  description = "Timeout of the event-driven functions (scheduled, alerts, dead_letter). The platform's limit for event-driven functions is 540 s."
  type        = number
  default     = 540

  validation {
    condition     = var.event_timeout_seconds >= 60 && var.event_timeout_seconds <= 540
    error_message = "event_timeout_seconds must be between 60 and 540 (event-driven functions cannot run longer)."
  }
}

variable "controller_timeout_seconds" {
  description = "Timeout of the HTTP controller, which runs the long analyses: the source document's 15 minutes."
  type        = number
  default     = 900

  validation {
    condition     = var.controller_timeout_seconds >= 60 && var.controller_timeout_seconds <= 1800
    error_message = "controller_timeout_seconds must be between 60 and 1800 (Cloud Scheduler waits at most 30 minutes for an HTTP target)."
  }
}

variable "webhook_timeout_seconds" {
  description = "Timeout of the GitHub webhook function (GitHub gives up after 10 s; the function only records the push)."
  type        = number
  default     = 60

  validation {
    condition     = var.webhook_timeout_seconds >= 10 && var.webhook_timeout_seconds <= 540
    error_message = "webhook_timeout_seconds must be between 10 and 540."
  }
}

variable "max_instances" {
  description = "Upper bound of instances per function."
  type        = number
  default     = 5

  validation {
    condition     = var.max_instances >= 1 && var.max_instances <= 100
    error_message = "max_instances must be between 1 and 100."
  }
}

variable "http_scheduled_tasks" {
  description = "Automations whose schedule calls the HTTP controller (POST /tasks/NAME with an OIDC token) rather than the schedule topic: long analyses that need more than the 540 s of an event-driven function."
  type        = set(string)
  default     = ["performance"]
}

variable "scheduled_mode" {
  description = "Mode of scheduled runs (the automation level and approval gates still decide what is applied)."
  type        = string
  default     = "apply"

  validation {
    condition     = contains(["analyze", "apply"], var.scheduled_mode)
    error_message = "scheduled_mode must be analyze or apply."
  }
}

variable "monitored_services" {
  description = "Cloud Run services the alert policies watch (empty: every Cloud Run service in the project)."
  type        = list(string)
  default     = []
}

variable "automation_roles" {
  description = "Project roles of the functions that execute automations (scheduled, alerts, controller): read metrics, and change Cloud Run services at automation level 2 and above."
  type        = set(string)
  default     = ["roles/monitoring.viewer", "roles/run.developer"]
}

variable "controller_ingress" {
  description = "Ingress of the HTTP controller. Internal only admits Cloud Scheduler, Pub/Sub and callers inside the project's VPC; ALLOW_ALL still requires IAM (roles/run.invoker)."
  type        = string
  default     = "ALLOW_INTERNAL_ONLY"

  validation {
    condition     = contains(["ALLOW_INTERNAL_ONLY", "ALLOW_INTERNAL_AND_GCLB", "ALLOW_ALL"], var.controller_ingress)
    error_message = "controller_ingress must be ALLOW_INTERNAL_ONLY, ALLOW_INTERNAL_AND_GCLB or ALLOW_ALL."
  }
}

variable "controller_invokers" {
  description = "Members allowed to call the controller besides the scheduler (e.g. group:sre@example.com, serviceAccount:ci@P.iam.gserviceaccount.com)."
  type        = set(string)
  default     = []

  validation {
    condition     = alltrue([for m in var.controller_invokers : !contains(["allUsers", "allAuthenticatedUsers"], m)])
    error_message = "the controller is never public: allUsers and allAuthenticatedUsers are refused."
  }
}

variable "webhook_invokers" {
  description = "Members allowed to invoke the webhook function, e.g. the service account of an API Gateway that receives GitHub deliveries. GitHub cannot present a Google identity, so something authenticated must relay to it."
  type        = set(string)
  default     = []

  validation {
    condition     = alltrue([for m in var.webhook_invokers : !contains(["allUsers", "allAuthenticatedUsers"], m)])
    error_message = "the webhook function is never public: allUsers and allAuthenticatedUsers are refused."
  }
}

variable "kms_key_name" {
  description = "Cloud KMS key (projects/P/locations/L/keyRings/R/cryptoKeys/K) encrypting the Pub/Sub topics, source bucket, image repository and secrets. Null: Google-managed keys."
  type        = string
  default     = null
}

variable "notification_channels" {
  description = "Cloud Monitoring notification channels (projects/P/notificationChannels/ID) the observability alert policies notify: dead letters, breakers open for over an hour, automations without a succeeded run. Empty: incidents are only listed in the console."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.notification_channels : can(regex("^projects/[^/]+/notificationChannels/[^/]+$", c))])
    error_message = "notification_channels must be channel ids of the form projects/PROJECT/notificationChannels/ID (gcloud beta monitoring channels list --format='value(name)')."
  }
}
