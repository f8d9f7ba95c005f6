# Pub/Sub topics with push subscriptions to the functions that consume them, the Cloud Tasks queue
# that expires holds, and the Scheduler job that sweeps overdue bookings as a backstop. Deliveries
# are at least once: the consumers are idempotent.

locals {
  subscribers = { for name, f in local.functions : name => f if f.topic != null }
  has_sweep   = contains(keys(local.functions), var.sweep_function)
}

resource "google_pubsub_topic" "topic" {
  for_each = toset(var.topics)
  project  = var.project_id
  name     = each.value
  labels   = local.labels

  depends_on = [google_project_service.apis]
}

resource "google_pubsub_subscription" "push" {
  for_each             = local.subscribers
  project              = var.project_id
  name                 = "${each.value.topic}-to-${each.value.cloud_name}"
  topic                = google_pubsub_topic.topic[each.value.topic].id
  ack_deadline_seconds = var.timeout_seconds
  labels               = local.labels

  push_config {
    push_endpoint = "${google_cloudfunctions2_function.fn[each.key].service_config[0].uri}${each.value.push_path}"

    oidc_token {
      service_account_email = google_service_account.invoker.email
      audience              = google_cloudfunctions2_function.fn[each.key].service_config[0].uri
    }
  }

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  # Never expire for inactivity (the default is 31 days): a quiet week must not drop confirmations.
  expiration_policy {
    ttl = ""
  }
}

resource "google_cloud_tasks_queue" "expiry" {
  project  = var.project_id
  location = var.region
  name     = var.expiry_queue

  rate_limits {
    max_dispatches_per_second = 100
    max_concurrent_dispatches = 100
  }

  retry_config {
    max_attempts       = 20
    min_backoff        = "1s"
    max_backoff        = "60s"
    max_retry_duration = "3600s"
  }

  depends_on = [google_project_service.apis]
}

# Serving the waitlists: a task right after tickets come free, so its own queue, never behind the
# expiries scheduled for later; a lost task is served by the sweep.
resource "google_cloud_tasks_queue" "waitlist" {
  project  = var.project_id
  location = var.region
  name     = var.waitlist_queue

  rate_limits {
    max_dispatches_per_second = 50
    max_concurrent_dispatches = 20
  }

  retry_config {
    max_attempts       = 5
    min_backoff        = "1s"
    max_backoff        = "10s"
    max_retry_duration = "120s"
  }

  depends_on = [google_project_service.apis]
}

resource "google_cloud_scheduler_job" "sweep" {
  count            = local.has_sweep ? 1 : 0
  project          = var.project_id
  region           = var.region
  name             = "booking-sweep"
  description      = "Expires overdue pending bookings; backstop for the booking-expiry tasks."
  schedule         = var.sweep_schedule
  time_zone        = "Etc/UTC"
  attempt_deadline = "${var.timeout_seconds}s"

  # The next run comes within a minute: no retries.
  retry_config {
    retry_count = 0
  }

  http_target {
    http_method = "POST"
    uri         = "${google_cloudfunctions2_function.fn[var.sweep_function].service_config[0].uri}${var.sweep_path}"

    oidc_token {
      service_account_email = google_service_account.invoker.email
      audience              = google_cloudfunctions2_function.fn[var.sweep_function].service_config[0].uri
    }
  }

  depends_on = [google_cloud_run_service_iam_member.internal]
}
