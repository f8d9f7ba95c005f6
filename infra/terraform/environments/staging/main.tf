# The staging environment: its own project, state and settings; everything else is the module.
# terraform init -backend-config="bucket=<state bucket>" ; see ../../README.md.

terraform {
  required_version = ">= 1.5"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.0, < 8.0"
    }
  }

  backend "gcs" {
    prefix = "ticketing/staging"
  }
}

provider "google" {
  project = var.project_id
  region  = var.region
}

module "ticketing" {
  source = "../../modules/ticketing"

  project_id  = var.project_id
  environment = "staging"
  region      = var.region
  domains     = var.domains

  auth_provider = var.auth_provider
  auth_issuer   = var.auth_issuer
  auth_audience = var.auth_audience
  auth_jwks_url = var.auth_jwks_url

  cors_allowed_origins           = var.cors_allowed_origins
  hold_ttl_seconds               = var.hold_ttl_seconds
  max_pending_bookings_per_buyer = var.max_pending_bookings_per_buyer
  max_holds_per_buyer_per_minute = var.max_holds_per_buyer_per_minute
  log_level                      = "DEBUG"

  min_instances = var.min_instances
  max_instances = 20

  notification_channels = var.notification_channels
  runbook_url           = var.runbook_url

  firestore_location               = var.firestore_location
  firestore_delete_protection      = false
  firestore_point_in_time_recovery = false
}
