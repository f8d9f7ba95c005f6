# One Cloud Function (gen2) per entry of functions/routes.json that is not local_only. Source
# bundles are build/<name>.zip from `make package`; the object name carries the bundle's hash, so
# a changed bundle redeploys its function and an unchanged one does not.

resource "google_storage_bucket" "sources" {
  # checkov:skip=CKV_GCP_62: holds only the bundles Terraform uploads; who reads or writes them is in Cloud Audit Logs, and legacy usage logs would need a second bucket with nothing to add
  project                     = var.project_id
  name                        = "${var.project_id}-function-sources"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  labels                      = local.labels

  # A bundle replaced or deleted by mistake can be restored for a rollback; old versions go after 30 days.
  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 30
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.apis]
}

resource "google_storage_bucket_object" "source" {
  for_each = local.functions
  bucket   = google_storage_bucket.sources.name
  name     = "${each.key}/${filemd5("${local.repo_root}/build/${each.key}.zip")}.zip"
  source   = "${local.repo_root}/build/${each.key}.zip"
}

resource "google_cloudfunctions2_function" "fn" {
  # checkov:skip=CKV_GCP_124: ingress is ALLOW_INTERNAL_ONLY or ALLOW_INTERNAL_AND_GCLB (never ALLOW_ALL), chosen per function by a conditional that checkov cannot evaluate; tests/unit/test_infra.py checks both values
  for_each    = local.functions
  project     = var.project_id
  location    = var.region
  name        = each.value.cloud_name
  description = each.value.internal ? "internal: ${each.key}" : join(" ", each.value.paths)
  labels      = local.labels

  build_config {
    runtime         = "python311"
    entry_point     = each.key
    service_account = google_service_account.build.id

    source {
      storage_source {
        bucket = google_storage_bucket.sources.name
        object = google_storage_bucket_object.source[each.key].name
      }
    }
  }

  service_config {
    service_account_email            = google_service_account.fn[each.key].email
    available_cpu                    = var.cpu
    available_memory                 = var.memory
    max_instance_request_concurrency = var.concurrency
    min_instance_count               = each.value.internal ? 0 : var.min_instances
    max_instance_count               = var.max_instances
    timeout_seconds                  = var.timeout_seconds
    all_traffic_on_latest_revision   = true
    # Public functions only through the load balancer; internal ones only from Scheduler,
    # Cloud Tasks and Pub/Sub of this project.
    ingress_settings      = each.value.internal ? "ALLOW_INTERNAL_ONLY" : "ALLOW_INTERNAL_AND_GCLB"
    environment_variables = local.function_env

    # Egress. A gen2 function reaches the internet directly unless it has a VPC connector; the
    # webhook sender needs that (it POSTs to integrators' URLs). It still cannot call an internal
    # function: their invokers are accounts its own cannot act as, whichever way its traffic leaves.
    # With var.webhook_sender_vpc_connector set, the sender alone sends all its traffic through that
    # VPC: fixed Cloud NAT addresses for integrators' allow-lists, firewall rules against private ranges.
    vpc_connector                 = each.key == var.webhook_sender_function ? local.sender_vpc_connector : null
    vpc_connector_egress_settings = each.key == var.webhook_sender_function && local.sender_vpc_connector != null ? "ALL_TRAFFIC" : null

    dynamic "secret_environment_variables" {
      for_each = local.secret_env
      content {
        key        = secret_environment_variables.key
        project_id = var.project_id
        secret     = google_secret_manager_secret.stripe[secret_environment_variables.value].secret_id
        version    = var.secret_version
      }
    }
  }

  depends_on = [
    google_project_iam_member.build,
    google_storage_bucket_iam_member.build_source,
    google_secret_manager_secret_iam_member.access,
  ]
}

# Public functions answer anyone the load balancer forwards (they check bearer tokens themselves);
# internal functions only the internal invoker, except the webhook sender: only the webhook invoker.
resource "google_cloud_run_service_iam_member" "public" {
  # checkov:skip=CKV_GCP_102: public API functions must accept the load balancer's unauthenticated requests (a serverless NEG has no identity to grant); ingress admits only the load balancer and every handler verifies the bearer token itself
  for_each = local.public_functions
  project  = var.project_id
  location = var.region
  service  = google_cloudfunctions2_function.fn[each.key].name
  role     = "roles/run.invoker"
  member   = "allUsers"
}

resource "google_cloud_run_service_iam_member" "internal" {
  for_each = { for name, f in local.internal_functions : name => f if name != var.webhook_sender_function }
  project  = var.project_id
  location = var.region
  service  = google_cloudfunctions2_function.fn[each.key].name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.invoker.email}"
}

# Delivery tasks call the sender with the webhook invoker's token: that account can invoke the
# sender and nothing else, so a task forged through the webhook queue reaches no other function.
resource "google_cloud_run_service_iam_member" "webhook_sender" {
  for_each = { for name, f in local.internal_functions : name => f if name == var.webhook_sender_function }
  project  = var.project_id
  location = var.region
  service  = google_cloudfunctions2_function.fn[each.key].name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.webhook_invoker.email}"
}
