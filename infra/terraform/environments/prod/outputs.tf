output "load_balancer_ip" {
  description = "Point the DNS A records of the domains here."
  value       = module.ticketing.load_balancer_ip
}

output "api_base_url" {
  description = "Public base URL of the API."
  value       = module.ticketing.api_base_url
}

output "function_urls" {
  description = "Direct URL of every function."
  value       = module.ticketing.function_urls
}

output "secrets_to_fill" {
  description = "Secret Manager secrets that need a version (docs/deployment.md)."
  value       = module.ticketing.secrets_to_fill
}
