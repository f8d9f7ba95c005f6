# One Cloud Function (gen2) per entry of functions/routes.json that is not local_only. Source
# bundles are build/<name>.zip from `make package`; the object name carries the bundle's hash, so
# a changed bundle redeploys its function and an unchanged one does not.

resource "google_storage_bucket" "sources" {
  project                     = var.project_id
  name                        = "${var.project_id}-function-sources"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  labels                      = local.labels

  depends_on = [google_project_service.apis]
}

resource "google_storage_bucket_object" "source" {
  for_each = local.functions
  bucket   = google_storage_bucket.sources.name
  name     = "${each.key}/${filemd5("${local.repo_root}/build/${each.key}.zip")}.zip"
  source   = "${local.repo_root}/build/${each.key}.zip"
}

resource "google_cloudfunctions2_function" "fn" {
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
# internal functions only the internal invoker.
resource "google_cloud_run_service_iam_member" "public" {
  for_each = local.public_functions
  project  = var.project_id
  location = var.region
  service  = google_cloudfunctions2_function.fn[each.key].name
  role     = "roles/run.invoker"
  member   = "allUsers"
}

resource "google_cloud_run_service_iam_member" "internal" {
  for_each = local.internal_functions
  project  = var.project_id
  location = var.region
  service  = google_cloudfunctions2_function.fn[each.key].name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.invoker.email}"
}
