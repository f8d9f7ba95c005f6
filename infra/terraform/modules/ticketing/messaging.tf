# Pub/Sub topics with push subscriptions to the functions that consume them, each with a retry policy
# and a dead-letter topic; the Cloud Tasks queues (hold expiry, waitlist serving, outbound webhook
# deliveries), and the Scheduler job that sweeps overdue bookings as a backstop. Deliveries are at
# least once: the consumers are idempotent.

locals {
  subscribers = { for name, f in local.functions : name => f if f.topic != null }
  has_sweep   = contains(keys(local.functions), var.sweep_function)
}

resource "google_pubsub_topic" "topic" {
  # checkov:skip=CKV_GCP_83: Google-managed encryption at rest, as for Firestore which holds the same data in full; a message carries ids and event types, and a customer-managed key for topics alone would protect nothing more
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

  # A message the function refused var.max_delivery_attempts times (a bug, or data it cannot handle)
  # moves to its dead-letter topic instead of being retried forever; the dead-letters alert fires and
  # docs/runbook.md says how to replay it.
  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter[each.key].id
    max_delivery_attempts = var.max_delivery_attempts
  }

  # Never expire for inactivity (the default is 31 days): a quiet week must not drop confirmations.
  expiration_policy {
    ttl = ""
  }

  # A message forwarded to a topic with no subscription is lost: the dead-letter subscription and the
  # service agent's rights exist before the first message can be dead-lettered.
  depends_on = [
    google_pubsub_subscription.dead_letter,
    google_pubsub_topic_iam_member.dead_letter_publisher,
  ]
}

# One dead-letter topic per push subscription, so a dead letter says which consumer refused it.
resource "google_pubsub_topic" "dead_letter" {
  # checkov:skip=CKV_GCP_83: Google-managed encryption at rest, as for Firestore which holds the same data in full; a message carries ids and event types, and a customer-managed key for topics alone would protect nothing more
  for_each = local.subscribers
  project  = var.project_id
  name     = "${each.value.topic}-to-${each.value.cloud_name}-dead-letter"
  labels   = merge(local.labels, { role = "dead-letter" })

  depends_on = [google_project_service.apis]
}

# Nobody consumes dead letters automatically: they wait here to be inspected and replayed
# (docs/runbook.md). Acked messages are kept too, so a replay can seek back over them.
resource "google_pubsub_subscription" "dead_letter" {
  for_each                   = local.subscribers
  project                    = var.project_id
  name                       = "${each.value.topic}-to-${each.value.cloud_name}-dead-letter"
  topic                      = google_pubsub_topic.dead_letter[each.key].id
  ack_deadline_seconds       = 60
  message_retention_duration = "604800s"
  retain_acked_messages      = true
  labels                     = merge(local.labels, { role = "dead-letter" })

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

# Outbound webhooks: one named task per delivery attempt, calling the sender with the webhook
# invoker's token. The application schedules the next attempt itself on the Standard Webhooks
# schedule (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h), so this retry_config covers only a task call
# that failed on the way (the sender down or answering 5xx), briefly. Rates are sized for fan-out:
# one domain event becomes a task per subscribed endpoint.
resource "google_cloud_tasks_queue" "webhook" {
  project  = var.project_id
  location = var.region
  name     = var.webhook_queue

  rate_limits {
    max_dispatches_per_second = 100
    max_concurrent_dispatches = 50
  }

  retry_config {
    max_attempts       = 5
    min_backoff        = "1s"
    max_backoff        = "30s"
    max_doublings      = 4
    max_retry_duration = "300s"
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
