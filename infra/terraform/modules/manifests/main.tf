# Reads the repository's manifests and shapes them for the ticketing module. No providers, no
# resources: `terraform console` can evaluate everything here offline (tests/unit/test_infra.py does).

locals {
  routes = jsondecode(file(var.routes_file))

  # Every function except the local-only ones (the development identity provider) is deployed.
  deployed = [for f in local.routes.functions : f if !try(f.local_only, false)]

  # name => normalised entry. A function is internal (not on the load balancer, callable only with
  # the internal invoker's OIDC token) when it says so, has a Pub/Sub topic, or serves no paths.
  # `topic` (optional): Pub/Sub pushes that topic's messages to the function at `push_path`.
  functions = {
    for f in local.deployed : f.name => {
      name       = f.name
      module     = trimsuffix(f.source, ".py")
      cloud_name = replace(f.name, "_", "-")
      paths      = tolist(try(f.paths, []))
      topic      = try(f.topic, null)
      push_path  = try(f.push_path, "/")
      internal   = try(f.internal, false) || try(f.topic, null) != null || length(try(f.paths, [])) == 0
    }
  }

  # One load-balancer route per public path, in file order (first match wins, as in dev/gateway.py).
  # routes.json writes `{id}` for one segment and `**` for any rest; URL-map path templates spell
  # them `{id=*}` and `{rest=**}`.
  lb_routes = flatten([
    for f in local.deployed : [
      for p in local.functions[f.name].paths : {
        function = f.name
        path     = p
        template = replace(replace(p, "**", "{rest=**}"), "/\\{(\\w+)\\}/", "{$1=*}")
      }
    ] if !local.functions[f.name].internal
  ])

  indexes = jsondecode(file(var.indexes_file))

  # Composite indexes keyed by their collection group and fields, e.g.
  # "bookings:COLLECTION:event_id=ASCENDING,booking_time=DESCENDING".
  firestore_indexes = {
    for i in local.indexes.indexes :
    "${i.collectionGroup}:${i.queryScope}:${join(",", [for f in i.fields : "${f.fieldPath}=${try(f.order, f.arrayConfig)}"])}" => i
  }

  firestore_field_overrides = {
    for o in try(local.indexes.fieldOverrides, []) : "${o.collectionGroup}.${o.fieldPath}" => o
  }
}
