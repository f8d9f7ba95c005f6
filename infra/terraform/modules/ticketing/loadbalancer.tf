# One global external HTTPS load balancer: a serverless NEG and backend service per public function,
# and a URL map with one route per path of functions/routes.json, tried in file order.

resource "google_compute_region_network_endpoint_group" "fn" {
  for_each              = local.public_functions
  project               = var.project_id
  region                = var.region
  name                  = "${each.value.cloud_name}-neg"
  network_endpoint_type = "SERVERLESS"

  cloud_run {
    service = google_cloudfunctions2_function.fn[each.key].name
  }
}

resource "google_compute_backend_service" "fn" {
  for_each              = local.public_functions
  project               = var.project_id
  name                  = "${each.value.cloud_name}-backend"
  load_balancing_scheme = "EXTERNAL_MANAGED"
  protocol              = "HTTPS"
  security_policy       = var.security_policy

  backend {
    group = google_compute_region_network_endpoint_group.fn[each.key].id
  }

  log_config {
    enable      = true
    sample_rate = 1
  }
}

resource "google_compute_url_map" "api" {
  project = var.project_id
  name    = "ticketing-api"
  # Paths no route matches go to var.default_function, whose router answers 404 problem+json.
  default_service = google_compute_backend_service.fn[var.default_function].id

  host_rule {
    hosts        = ["*"]
    path_matcher = "api"
  }

  path_matcher {
    name            = "api"
    default_service = google_compute_backend_service.fn[var.default_function].id

    dynamic "route_rules" {
      for_each = module.manifests.lb_routes
      content {
        priority = route_rules.key + 1
        service  = google_compute_backend_service.fn[route_rules.value.function].id

        match_rules {
          path_template_match = route_rules.value.template
        }
      }
    }
  }
}

resource "google_compute_global_address" "api" {
  project = var.project_id
  name    = "ticketing-api"

  depends_on = [google_project_service.apis]
}

resource "google_compute_managed_ssl_certificate" "api" {
  project = var.project_id
  # A new name per domain list, so a change creates the new certificate before dropping the old.
  name = "ticketing-api-${substr(sha1(join(",", var.domains)), 0, 8)}"

  managed {
    domains = var.domains
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "google_compute_ssl_policy" "api" {
  project         = var.project_id
  name            = "ticketing-api"
  profile         = "MODERN"
  min_tls_version = "TLS_1_2"
}

resource "google_compute_target_https_proxy" "api" {
  project          = var.project_id
  name             = "ticketing-api"
  url_map          = google_compute_url_map.api.id
  ssl_certificates = [google_compute_managed_ssl_certificate.api.id]
  ssl_policy       = google_compute_ssl_policy.api.id
}

resource "google_compute_global_forwarding_rule" "https" {
  project               = var.project_id
  name                  = "ticketing-api-https"
  load_balancing_scheme = "EXTERNAL_MANAGED"
  ip_address            = google_compute_global_address.api.id
  port_range            = "443"
  target                = google_compute_target_https_proxy.api.id
}

# Plain HTTP only redirects to HTTPS.
resource "google_compute_url_map" "redirect" {
  project = var.project_id
  name    = "ticketing-api-redirect"

  default_url_redirect {
    https_redirect         = true
    redirect_response_code = "MOVED_PERMANENTLY_DEFAULT"
    strip_query            = false
  }
}

resource "google_compute_target_http_proxy" "redirect" {
  project = var.project_id
  name    = "ticketing-api-redirect"
  url_map = google_compute_url_map.redirect.id
}

resource "google_compute_global_forwarding_rule" "http" {
  project               = var.project_id
  name                  = "ticketing-api-http"
  load_balancing_scheme = "EXTERNAL_MANAGED"
  ip_address            = google_compute_global_address.api.id
  port_range            = "80"
  target                = google_compute_target_http_proxy.redirect.id
}
