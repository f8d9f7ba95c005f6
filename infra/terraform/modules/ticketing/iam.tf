# One service account per function, each with only what that function needs (var.function_access),
# plus one for builds, one that Scheduler, Cloud Tasks and Pub/Sub use to call internal functions,
# and one that the webhook delivery tasks use to call the sender (and nothing else).
#
# The sender talks to integrators' URLs on the internet, so it is kept apart from everything
# internal: its own service account has Firestore, enqueue on the webhook queue and actAs on the
# webhook invoker only. It is not the internal invoker, cannot act as it, and may invoke no function;
# the webhook invoker may invoke the sender only (functions.tf).

locals {
  access = {
    for name in keys(local.functions) : name => {
      firestore = try(var.function_access[name].firestore, true)
      publish   = try(var.function_access[name].publish, [])
      enqueue   = try(var.function_access[name].enqueue, false)
      deliver   = try(var.function_access[name].deliver, false)
    }
  }

  pubsub_service_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"

  publishers = {
    for pair in flatten([
      for name, a in local.access : [for topic in a.publish : { function = name, topic = topic }]
    ]) : "${pair.function}:${pair.topic}" => pair
  }

  secret_readers = {
    for pair in setproduct(keys(local.functions), values(local.secret_env)) :
    "${pair[0]}:${pair[1]}" => { function = pair[0], secret = pair[1] }
  }
}

resource "google_service_account" "fn" {
  for_each     = local.functions
  project      = var.project_id
  account_id   = substr("fn-${each.value.cloud_name}", 0, 30)
  display_name = "Cloud Function ${each.key}"
  description  = "Runs the ${each.key} function (${var.environment})."
}

resource "google_service_account" "build" {
  project      = var.project_id
  account_id   = "functions-build"
  display_name = "Cloud Functions build"
  description  = "Builds the function containers from the source bundles."
}

resource "google_service_account" "invoker" {
  project      = var.project_id
  account_id   = "internal-invoker"
  display_name = "Internal invoker"
  description  = "OIDC identity of Cloud Scheduler, Cloud Tasks and Pub/Sub push calls to internal functions."
}

resource "google_service_account" "webhook_invoker" {
  project      = var.project_id
  account_id   = "webhook-invoker"
  display_name = "Webhook invoker"
  description  = "OIDC identity of the webhook delivery tasks; may invoke the sender function only."
}

resource "google_project_iam_member" "firestore" {
  for_each = { for name, a in local.access : name => a if a.firestore }
  project  = var.project_id
  role     = "roles/datastore.user"
  member   = "serviceAccount:${google_service_account.fn[each.key].email}"
}

resource "google_pubsub_topic_iam_member" "publisher" {
  for_each = local.publishers
  project  = var.project_id
  topic    = google_pubsub_topic.topic[each.value.topic].name
  role     = "roles/pubsub.publisher"
  member   = "serviceAccount:${google_service_account.fn[each.value.function].email}"
}

resource "google_cloud_tasks_queue_iam_member" "enqueuer" {
  for_each = { for name, a in local.access : name => a if a.enqueue }
  project  = var.project_id
  location = var.region
  name     = google_cloud_tasks_queue.expiry.name
  role     = "roles/cloudtasks.enqueuer"
  member   = "serviceAccount:${google_service_account.fn[each.key].email}"
}

resource "google_cloud_tasks_queue_iam_member" "waitlist_enqueuer" {
  for_each = { for name, a in local.access : name => a if a.enqueue }
  project  = var.project_id
  location = var.region
  name     = google_cloud_tasks_queue.waitlist.name
  role     = "roles/cloudtasks.enqueuer"
  member   = "serviceAccount:${google_service_account.fn[each.key].email}"
}

# A task carries an OIDC token of the internal invoker, so whoever enqueues must act as it.
resource "google_service_account_iam_member" "enqueuer_acts_as_invoker" {
  for_each           = { for name, a in local.access : name => a if a.enqueue }
  service_account_id = google_service_account.invoker.name
  role               = "roles/iam.serviceAccountUser"
  member             = "serviceAccount:${google_service_account.fn[each.key].email}"

  lifecycle {
    # Acting as the internal invoker would let the internet-facing sender call every internal function.
    precondition {
      condition     = each.key != var.webhook_sender_function
      error_message = "The webhook sender must not enqueue as the internal invoker: give it deliver, not enqueue, in function_access."
    }
  }
}

# Outbound webhooks: one named task per delivery attempt on the webhook queue, carrying the webhook
# invoker's token; whoever creates one must act as that account (and only as that one).
resource "google_cloud_tasks_queue_iam_member" "webhook_enqueuer" {
  for_each = { for name, a in local.access : name => a if a.deliver }
  project  = var.project_id
  location = var.region
  name     = google_cloud_tasks_queue.webhook.name
  role     = "roles/cloudtasks.enqueuer"
  member   = "serviceAccount:${google_service_account.fn[each.key].email}"
}

resource "google_service_account_iam_member" "deliverer_acts_as_webhook_invoker" {
  for_each           = { for name, a in local.access : name => a if a.deliver }
  service_account_id = google_service_account.webhook_invoker.name
  role               = "roles/iam.serviceAccountUser"
  member             = "serviceAccount:${google_service_account.fn[each.key].email}"
}

resource "google_secret_manager_secret_iam_member" "access" {
  for_each  = local.secret_readers
  project   = var.project_id
  secret_id = google_secret_manager_secret.stripe[each.value.secret].secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.fn[each.value.function].email}"
}

# Pub/Sub signs push requests with the invoker's OIDC token.
resource "google_service_account_iam_member" "pubsub_token_creator" {
  service_account_id = google_service_account.invoker.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_service_agent

  depends_on = [google_project_service.apis]
}

# Dead letters (messaging.tf): the Pub/Sub service agent forwards a message that failed
# var.max_delivery_attempts times, which needs publisher on the dead-letter topic and subscriber on
# the subscription it takes the message from. Without these the message is retried forever.
resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  for_each = local.subscribers
  project  = var.project_id
  topic    = google_pubsub_topic.dead_letter[each.key].name
  role     = "roles/pubsub.publisher"
  member   = local.pubsub_service_agent

  depends_on = [google_project_service.apis]
}

resource "google_pubsub_subscription_iam_member" "dead_letter_subscriber" {
  for_each     = local.subscribers
  project      = var.project_id
  subscription = google_pubsub_subscription.push[each.key].name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_service_agent
}

resource "google_project_iam_member" "build" {
  for_each = toset(["roles/logging.logWriter", "roles/artifactregistry.writer"])
  project  = var.project_id
  role     = each.value
  member   = "serviceAccount:${google_service_account.build.email}"
}

resource "google_storage_bucket_iam_member" "build_source" {
  bucket = google_storage_bucket.sources.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.build.email}"
}
