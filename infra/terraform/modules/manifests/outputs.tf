output "functions" {
  description = "Deployed functions by name: module, cloud_name, paths, topic, internal."
  value       = local.functions
}

output "lb_routes" {
  description = "Load-balancer routes in priority order: function, path, URL-map path template."
  value       = local.lb_routes
}

output "firestore_indexes" {
  description = "Composite indexes from firestore.indexes.json, keyed by collection group and fields."
  value       = local.firestore_indexes
}

output "firestore_field_overrides" {
  description = "Single-field index overrides from firestore.indexes.json, keyed by collection.field."
  value       = local.firestore_field_overrides
}
