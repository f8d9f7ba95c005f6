# One service account per function, each with only what that function needs (var.function_access),
# plus one for builds and one that Scheduler, Cloud Tasks and Pub/Sub use to call internal functions.

locals {
  access = {
    for name in keys(local.functions) : name => {
      firestore = try(var.function_access[name].firestore, true)
      publish   = try(var.function_access[name].publish, [])
      enqueue   = try(var.function_access[name].enqueue, false)
    }
  }

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
  member             = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"

  depends_on = [google_project_service.apis]
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
