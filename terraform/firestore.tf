# Run state: a named Firestore database in native mode, with TTL on the collections that expire.

resource "google_firestore_database" "state" {
  name        = var.firestore_database
  location_id = coalesce(var.firestore_location, var.region)
  type        = "FIRESTORE_NATIVE"

  # The server SDK's transactions are pessimistic; the store's compare-and-set relies on them.
  concurrency_mode                  = "PESSIMISTIC"
  app_engine_integration_mode       = "DISABLED"
  point_in_time_recovery_enablement = "POINT_IN_TIME_RECOVERY_ENABLED"
  delete_protection_state           = "DELETE_PROTECTION_ENABLED"
  deletion_policy                   = "ABANDON"

  dynamic "cmek_config" {
    for_each = var.kms_key_name == null ? [] : [var.kms_key_name]
    content {
      kms_key_name = cmek_config.value
    }
  }

  depends_on = [google_project_service.apis]
}

# Documents carry `expires_at` (runner.retention in the configuration sets it); Firestore deletes
# them within about a day of that time. Collections: orchestra.store.base.TTL_COLLECTIONS and those
# the automations declare (Automation.collections: test_results).
resource "google_firestore_field" "ttl" {
  for_each = toset(["runs", "events", "dead_letters", "test_results"])

  project    = var.project
  database   = google_firestore_database.state.name
  collection = each.value
  field      = "expires_at"

  ttl_config {}
}

# Composite indexes for the store's filtered, ordered queries (equality filters, then the sort
# field). Firestore answers such queries only with a matching index.
locals {
  firestore_indexes = {
    runs-task = {
      collection = "runs"
      fields     = [["task", "ASCENDING"], ["created_at", "DESCENDING"]]
    }
    runs-status = {
      collection = "runs"
      fields     = [["status", "ASCENDING"], ["created_at", "DESCENDING"]]
    }
    runs-task-status = {
      collection = "runs"
      fields     = [["task", "ASCENDING"], ["status", "ASCENDING"], ["created_at", "DESCENDING"]]
    }
    runs-trigger = {
      collection = "runs"
      fields     = [["trigger_id", "ASCENDING"], ["created_at", "DESCENDING"]]
    }
    runs-source-event = {
      collection = "runs"
      fields     = [["source_event", "ASCENDING"], ["created_at", "DESCENDING"]]
    }
    events-status = {
      collection = "events"
      fields     = [["status", "ASCENDING"], ["received_at", "DESCENDING"]]
    }
    events-source = {
      collection = "events"
      fields     = [["source", "ASCENDING"], ["received_at", "DESCENDING"]]
    }
    events-status-source = {
      collection = "events"
      fields     = [["status", "ASCENDING"], ["source", "ASCENDING"], ["received_at", "DESCENDING"]]
    }
    deployments-env-state-new = {
      collection = "deployments"
      fields     = [["environment", "ASCENDING"], ["state", "ASCENDING"], ["created_at", "DESCENDING"]]
    }
    deployments-env-state-old = {
      collection = "deployments"
      fields     = [["environment", "ASCENDING"], ["state", "ASCENDING"], ["created_at", "ASCENDING"]]
    }
    deployments-state-new = {
      collection = "deployments"
      fields     = [["state", "ASCENDING"], ["created_at", "DESCENDING"]]
    }
    deployments-state-old = {
      collection = "deployments"
      fields     = [["state", "ASCENDING"], ["created_at", "ASCENDING"]]
    }
    deployments-env = {
      collection = "deployments"
      fields     = [["environment", "ASCENDING"], ["created_at", "DESCENDING"]]
    }
    test-results-suite = {
      collection = "test_results"
      fields     = [["suite", "ASCENDING"], ["started_at", "DESCENDING"]]
    }
  }
}

resource "google_firestore_index" "query" {
  for_each = local.firestore_indexes

  project    = var.project
  database   = google_firestore_database.state.name
  collection = each.value.collection

  dynamic "fields" {
    for_each = each.value.fields
    content {
      field_path = fields.value[0]
      order      = fields.value[1]
    }
  }
}
