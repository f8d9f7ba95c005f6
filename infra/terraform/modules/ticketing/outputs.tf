output "load_balancer_ip" {
  description = "Address to point the DNS A records of var.domains at."
  value       = google_compute_global_address.api.address
}

output "api_base_url" {
  description = "Public base URL of the API."
  value       = "https://${var.domains[0]}"
}

output "function_urls" {
  description = "Direct URL of every function (public ones accept only load-balancer traffic)."
  value       = { for name, fn in google_cloudfunctions2_function.fn : name => fn.service_config[0].uri }
}

output "function_service_accounts" {
  description = "Service account of every function."
  value       = { for name, sa in google_service_account.fn : name => sa.email }
}

output "internal_invoker" {
  description = "Service account whose OIDC tokens Scheduler, Cloud Tasks and Pub/Sub push present."
  value       = google_service_account.invoker.email
}

output "source_bucket" {
  description = "Bucket holding the uploaded function bundles."
  value       = google_storage_bucket.sources.name
}

output "secrets_to_fill" {
  description = "Secret Manager secrets that need a version before the functions can start."
  value       = { for env, secret in local.secret_env : env => google_secret_manager_secret.stripe[secret].id }
}
