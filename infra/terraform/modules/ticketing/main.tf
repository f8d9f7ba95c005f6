# The ticketing backend in one project: per-endpoint Cloud Functions (gen2) from functions/routes.json
# behind one HTTPS load balancer, Firestore, Pub/Sub, Cloud Tasks, Cloud Scheduler, Secret Manager,
# and the alerts and dashboard that watch them (monitoring.tf).

locals {
  repo_root = "${path.module}/../../../.."

  functions          = module.manifests.functions
  public_functions   = { for name, f in local.functions : name => f if !f.internal }
  internal_functions = { for name, f in local.functions : name => f if f.internal }

  # The deterministic Cloud Run URL of the tasks function (a function cannot read another
  # instance's `uri` of the same resource). Expiry tasks are sent there with the invoker's token.
  tasks_target_base_url = try("https://${local.functions[var.tasks_function].cloud_name}-${data.google_project.this.number}.${var.region}.run.app", "")

  # The same for the webhook sender: delivery tasks POST to ${WEBHOOK_SENDER_URL}/deliveries/send
  # with the webhook invoker's token (iam.tf).
  webhook_sender_url   = try("https://${local.functions[var.webhook_sender_function].cloud_name}-${data.google_project.this.number}.${var.region}.run.app", "")
  sender_vpc_connector = var.webhook_sender_vpc_connector != "" ? var.webhook_sender_vpc_connector : null

  # What every function reads (shared/core/settings.py). Empty values are left unset so that the
  # settings' own defaults apply (e.g. the Firebase issuer and JWKS).
  env = {
    PROFILE                         = var.environment
    GOOGLE_CLOUD_PROJECT            = var.project_id
    REGION                          = var.region
    AUTH_PROVIDER                   = var.auth_provider
    AUTH_ISSUER                     = var.auth_issuer
    AUTH_AUDIENCE                   = var.auth_audience
    AUTH_JWKS_URL                   = var.auth_jwks_url
    HOLD_TTL_SECONDS                = tostring(var.hold_ttl_seconds)
    MAX_PENDING_BOOKINGS_PER_BUYER  = tostring(var.max_pending_bookings_per_buyer)
    MAX_HOLDS_PER_BUYER_PER_MINUTE  = tostring(var.max_holds_per_buyer_per_minute)
    CORS_ALLOWED_ORIGINS            = join(",", var.cors_allowed_origins)
    LOG_LEVEL                       = var.log_level
    PUBLIC_BASE_URL                 = "https://${var.domains[0]}"
    EXPIRY_QUEUE                    = var.expiry_queue
    WAITLIST_QUEUE                  = var.waitlist_queue
    TASKS_TARGET_BASE_URL           = local.tasks_target_base_url
    TASKS_INVOKER_SERVICE_ACCOUNT   = google_service_account.invoker.email
    WEBHOOK_QUEUE                   = var.webhook_queue
    WEBHOOK_SENDER_URL              = local.webhook_sender_url
    WEBHOOK_INVOKER_SERVICE_ACCOUNT = google_service_account.webhook_invoker.email
    THREADS                         = tostring(var.concurrency)
  }
  function_env = { for k, v in local.env : k => v if v != "" }

  # Environment variable => Secret Manager secret. Values never pass through Terraform.
  secret_env = {
    STRIPE_SECRET_KEY     = "stripe-secret-key"
    STRIPE_WEBHOOK_SECRET = "stripe-webhook-secret"
    TICKET_SIGNING_KEYS   = "ticket-signing-keys"
    # Encrypts the endpoints' webhook signing secrets at rest in Firestore.
    WEBHOOK_SECRET_KEY = "webhook-secret-key"
  }

  labels = {
    app         = "ticketing"
    environment = var.environment
  }
}

module "manifests" {
  source       = "../manifests"
  routes_file  = "${local.repo_root}/functions/routes.json"
  indexes_file = "${local.repo_root}/firestore.indexes.json"
}

data "google_project" "this" {
  project_id = var.project_id
}

resource "google_project_service" "apis" {
  for_each = toset([
    "artifactregistry.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "cloudscheduler.googleapis.com",
    "cloudtasks.googleapis.com",
    "compute.googleapis.com",
    "firebaserules.googleapis.com",
    "firestore.googleapis.com",
    "iam.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
  ])
  project            = var.project_id
  service            = each.value
  disable_on_destroy = false
}
