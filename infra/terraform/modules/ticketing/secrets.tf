# The secrets of local.secret_env (Stripe's two, the ticket-signing keys, the key that encrypts the
# webhook endpoints' signing secrets) exist here; their values are added out of band
# (docs/deployment.md), so they never appear in Terraform configuration or state. Each function reads
# them as environment variables (functions.tf) and may access these secrets only (iam.tf). The
# resource keeps its first name, "stripe", so that existing state needs no move.

resource "google_secret_manager_secret" "stripe" {
  for_each  = toset(values(local.secret_env))
  project   = var.project_id
  secret_id = each.value
  labels    = local.labels

  replication {
    auto {}
  }

  depends_on = [google_project_service.apis]
}
