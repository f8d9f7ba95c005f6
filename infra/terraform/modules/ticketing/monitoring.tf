# Alarms as code: log-based metrics from the functions' structured request logs, alert policies that
# notify var.notification_channels, and one dashboard. Every policy's documentation links the section
# of docs/runbook.md that says what the alarm means and what to do.
#
# What the functions log (shared/core/http.py, shared/core/logging.py): one JSON line per request
# from logger "http" whose `httpRequest` (requestMethod, requestUrl = the path, status, latency
# "0.0123s") Cloud Logging promotes to the entry's httpRequest; other fields stay in jsonPayload.
# Operational events carry jsonPayload.alert ("payment_attention", "webhook_endpoint_disabled").
# Gen2 functions log as Cloud Run revisions, so the metrics carry resource.labels.service_name.

locals {
  # The request lines of the functions (the runbook's Logs Explorer queries start from it).
  request_log = "jsonPayload.logger=\"http\" AND httpRequest.status>=100"

  # Prefix of the log-based metrics' types in Monitoring.
  user_metric = "logging.googleapis.com/user"

  runbook = trimsuffix(var.runbook_url, "/")

  # Monitoring filters of the log-based metrics below (alerts and dashboard).
  metric_filter = {
    for name, m in {
      requests  = google_logging_metric.http_requests.name
      intake    = google_logging_metric.webhook_intake_failures.name
      attention = google_logging_metric.payments_needing_attention.name
      disabled  = google_logging_metric.webhook_endpoints_disabled.name
      hold      = google_logging_metric.hold_latency.name
    } : name => "metric.type=\"${local.user_metric}/${m}\" AND resource.type=\"cloud_run_revision\""
  }

  # Backlog of the dead-letter subscriptions (messaging.tf); Pub/Sub writes it, no log metric needed.
  dead_letter_filter = join("", [
    "metric.type=\"pubsub.googleapis.com/subscription/num_undelivered_messages\"",
    " AND resource.type=\"pubsub_subscription\"",
    " AND resource.label.subscription_id=one_of(",
    join(",", [for sub in google_pubsub_subscription.dead_letter : "\"${sub.name}\""]),
    ")",
  ])
}

# ---- log-based metrics ---------------------------------------------------------------------------

# Every request a function answered, by status class ("2" .. "5"): the 5xx rate is one class over all.
resource "google_logging_metric" "http_requests" {
  project = var.project_id
  name    = "ticketing/http_requests"
  filter  = local.request_log

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "Ticketing requests"

    labels {
      key         = "status_class"
      value_type  = "STRING"
      description = "First digit of the HTTP status."
    }
  }

  label_extractors = {
    status_class = "REGEXP_EXTRACT(httpRequest.status, \"^([1-5])[0-9][0-9]$\")"
  }

  depends_on = [google_project_service.apis]
}

# Stripe's deliveries that the intake refused (400: bad signature or body) or failed (5xx: Stripe
# retries, for up to 3 days). A few are normal; a run of them means money confirmations are stuck.
resource "google_logging_metric" "webhook_intake_failures" {
  project = var.project_id
  name    = "ticketing/webhook_intake_failures"
  filter  = "${local.request_log} AND httpRequest.requestUrl=\"/v1/webhooks/stripe\" AND httpRequest.status>=400"

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "Stripe webhook intake failures"
  }

  depends_on = [google_project_service.apis]
}

# A payment that needs a person (a refund the provider refused, money taken with nothing to give);
# each is listed by GET /v1/attention.
resource "google_logging_metric" "payments_needing_attention" {
  project = var.project_id
  name    = "ticketing/payments_needing_attention"
  filter  = "jsonPayload.alert=\"payment_attention\""

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "Payments needing attention"
  }

  depends_on = [google_project_service.apis]
}

# An integrator's endpoint disabled after failing for 3 days (its company's admins are told too).
resource "google_logging_metric" "webhook_endpoints_disabled" {
  project = var.project_id
  name    = "ticketing/webhook_endpoints_disabled"
  filter  = "jsonPayload.alert=\"webhook_endpoint_disabled\""

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "Webhook endpoints disabled"
  }

  depends_on = [google_project_service.apis]
}

# Latency of the hold, POST /v1/events/{id}/bookings: the path a flash sale hammers.
resource "google_logging_metric" "hold_latency" {
  project         = var.project_id
  name            = "ticketing/hold_latency"
  filter          = "${local.request_log} AND httpRequest.requestMethod=\"POST\" AND httpRequest.requestUrl=~\"^/v1/events/[^/]+/bookings$\""
  value_extractor = "REGEXP_EXTRACT(httpRequest.latency, \"([0-9.]+)s\")"

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "DISTRIBUTION"
    unit         = "s"
    display_name = "Hold latency"
  }

  # 1 ms growing by 25 % a bucket: 48 buckets reach about 44 s, a few per step near the 1 s alarm.
  bucket_options {
    exponential_buckets {
      num_finite_buckets = 48
      growth_factor      = 1.25
      scale              = 0.001
    }
  }

  depends_on = [google_project_service.apis]
}

# ---- alert policies ------------------------------------------------------------------------------

resource "google_monitoring_alert_policy" "server_errors" {
  project               = var.project_id
  display_name          = "Ticketing ${var.environment}: 5xx rate above ${var.error_rate_threshold * 100} %"
  combiner              = "OR"
  notification_channels = var.notification_channels
  severity              = "ERROR"
  user_labels           = local.labels

  # As the functions saw it (their own request logs) ...
  conditions {
    display_name = "Functions answer 5xx"

    condition_threshold {
      filter          = "${local.metric_filter.requests} AND metric.label.status_class=\"5\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.error_rate_threshold
      duration        = "300s"

      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_RATE"
        cross_series_reducer = "REDUCE_SUM"
      }

      denominator_filter = local.metric_filter.requests

      denominator_aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_RATE"
        cross_series_reducer = "REDUCE_SUM"
      }

      trigger {
        count = 1
      }
    }
  }

  # ... and as buyers saw it: the load balancer also counts the 5xx of instances that never got to
  # log (crashed, timed out, none available).
  conditions {
    display_name = "Load balancer answers 5xx"

    condition_threshold {
      filter          = "metric.type=\"loadbalancing.googleapis.com/https/request_count\" AND resource.type=\"https_lb_rule\" AND resource.label.url_map_name=\"${google_compute_url_map.api.name}\" AND metric.label.response_code_class=500"
      comparison      = "COMPARISON_GT"
      threshold_value = var.error_rate_threshold
      duration        = "300s"

      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_RATE"
        cross_series_reducer = "REDUCE_SUM"
      }

      denominator_filter = "metric.type=\"loadbalancing.googleapis.com/https/request_count\" AND resource.type=\"https_lb_rule\" AND resource.label.url_map_name=\"${google_compute_url_map.api.name}\""

      denominator_aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_RATE"
        cross_series_reducer = "REDUCE_SUM"
      }

      trigger {
        count = 1
      }
    }
  }

  alert_strategy {
    auto_close = "3600s"
  }

  documentation {
    mime_type = "text/markdown"
    subject   = "Ticketing ${var.environment}: 5xx rate"
    content   = "More than ${var.error_rate_threshold * 100} % of requests answered 5xx over 5 minutes. What to look at and what to do: ${local.runbook}#5xx-rate"
  }
}

resource "google_monitoring_alert_policy" "webhook_intake_failures" {
  project               = var.project_id
  display_name          = "Ticketing ${var.environment}: Stripe webhook intake failing"
  combiner              = "OR"
  notification_channels = var.notification_channels
  severity              = "CRITICAL"
  user_labels           = local.labels

  conditions {
    display_name = "POST /v1/webhooks/stripe answered >= 400"

    condition_threshold {
      filter          = local.metric_filter.intake
      comparison      = "COMPARISON_GT"
      threshold_value = var.webhook_intake_failure_threshold
      duration        = "0s"

      aggregations {
        alignment_period     = "600s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }

      trigger {
        count = 1
      }
    }
  }

  alert_strategy {
    auto_close = "3600s"
  }

  documentation {
    mime_type = "text/markdown"
    subject   = "Ticketing ${var.environment}: Stripe webhook intake failing"
    content   = "More than ${var.webhook_intake_failure_threshold} Stripe webhook deliveries answered 400 or 5xx within 10 minutes: payment confirmations may be stuck. ${local.runbook}#webhook-intake-failures"
  }
}

resource "google_monitoring_alert_policy" "dead_letters" {
  project               = var.project_id
  display_name          = "Ticketing ${var.environment}: Pub/Sub dead letters"
  combiner              = "OR"
  notification_channels = var.notification_channels
  severity              = "ERROR"
  user_labels           = local.labels

  conditions {
    display_name = "Messages waiting on a dead-letter subscription"

    condition_threshold {
      filter          = local.dead_letter_filter
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"

      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_MAX"
        cross_series_reducer = "REDUCE_MAX"
        group_by_fields      = ["resource.label.subscription_id"]
      }

      trigger {
        count = 1
      }
    }
  }

  # The backlog metric is not written for a subscription that never held a message: no data is fine.
  alert_strategy {
    auto_close = "3600s"
  }

  documentation {
    mime_type = "text/markdown"
    subject   = "Ticketing ${var.environment}: Pub/Sub dead letters"
    content   = "A consumer refused a message ${var.max_delivery_attempts} times and Pub/Sub moved it to a dead-letter subscription (the subscription_id label says which). Inspect and replay: ${local.runbook}#dead-letters"
  }
}

resource "google_monitoring_alert_policy" "payments_needing_attention" {
  project               = var.project_id
  display_name          = "Ticketing ${var.environment}: payment needs attention"
  combiner              = "OR"
  notification_channels = var.notification_channels
  severity              = "CRITICAL"
  user_labels           = local.labels

  conditions {
    display_name = "A payment was flagged for a person"

    condition_threshold {
      filter          = local.metric_filter.attention
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"

      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }

      trigger {
        count = 1
      }
    }
  }

  alert_strategy {
    auto_close = "86400s"
  }

  documentation {
    mime_type = "text/markdown"
    subject   = "Ticketing ${var.environment}: payment needs attention"
    content   = "A payment was flagged for a person (GET /v1/attention lists it): money may be taken with nothing given, or a refund was refused. ${local.runbook}#payments-needing-attention"
  }
}

resource "google_monitoring_alert_policy" "webhook_endpoints_disabled" {
  project               = var.project_id
  display_name          = "Ticketing ${var.environment}: webhook endpoint disabled"
  combiner              = "OR"
  notification_channels = var.notification_channels
  severity              = "WARNING"
  user_labels           = local.labels

  conditions {
    display_name = "An outbound webhook endpoint was disabled after 3 days of failures"

    condition_threshold {
      filter          = local.metric_filter.disabled
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"

      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }

      trigger {
        count = 1
      }
    }
  }

  alert_strategy {
    auto_close = "86400s"
  }

  documentation {
    mime_type = "text/markdown"
    subject   = "Ticketing ${var.environment}: webhook endpoint disabled"
    content   = "An integrator's webhook endpoint failed every delivery for 3 days and was disabled; its company's admins were told. ${local.runbook}#webhook-endpoint-disabled"
  }
}

resource "google_monitoring_alert_policy" "hold_latency" {
  project               = var.project_id
  display_name          = "Ticketing ${var.environment}: hold p95 above ${var.hold_latency_p95_seconds} s"
  combiner              = "OR"
  notification_channels = var.notification_channels
  severity              = "WARNING"
  user_labels           = local.labels

  conditions {
    display_name = "p95 of POST /v1/events/{id}/bookings"

    condition_threshold {
      filter          = local.metric_filter.hold
      comparison      = "COMPARISON_GT"
      threshold_value = var.hold_latency_p95_seconds
      duration        = "300s"

      # Merge every instance's distribution first, then take the 95th percentile of the whole.
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_PERCENTILE_95"
      }

      trigger {
        count = 1
      }
    }
  }

  alert_strategy {
    auto_close = "3600s"
  }

  documentation {
    mime_type = "text/markdown"
    subject   = "Ticketing ${var.environment}: hold latency"
    content   = "The 95th percentile of the hold (POST /v1/events/{id}/bookings) stayed above ${var.hold_latency_p95_seconds} s for 5 minutes. ${local.runbook}#hold-latency"
  }
}

# ---- dashboard -----------------------------------------------------------------------------------

locals {
  # One line chart per tile, two tiles a row; each line is one reducer over the same filter.
  dashboard_tiles = [
    {
      title    = "Requests per second by status class"
      filter   = local.metric_filter.requests
      aligner  = "ALIGN_RATE"
      reducers = ["REDUCE_SUM"]
      group_by = ["metric.label.status_class"]
    },
    {
      title    = "5xx per second by function"
      filter   = "${local.metric_filter.requests} AND metric.label.status_class=\"5\""
      aligner  = "ALIGN_RATE"
      reducers = ["REDUCE_SUM"]
      group_by = ["resource.label.service_name"]
    },
    {
      title    = "Hold latency p50 / p95 / p99 (s)"
      filter   = local.metric_filter.hold
      aligner  = "ALIGN_DELTA"
      reducers = ["REDUCE_PERCENTILE_50", "REDUCE_PERCENTILE_95", "REDUCE_PERCENTILE_99"]
      group_by = []
    },
    {
      title    = "Stripe webhook intake failures"
      filter   = local.metric_filter.intake
      aligner  = "ALIGN_SUM"
      reducers = ["REDUCE_SUM"]
      group_by = []
    },
    {
      title    = "Payments needing attention"
      filter   = local.metric_filter.attention
      aligner  = "ALIGN_SUM"
      reducers = ["REDUCE_SUM"]
      group_by = []
    },
    {
      title    = "Webhook endpoints disabled"
      filter   = local.metric_filter.disabled
      aligner  = "ALIGN_SUM"
      reducers = ["REDUCE_SUM"]
      group_by = []
    },
    {
      title    = "Dead letters waiting, by subscription"
      filter   = local.dead_letter_filter
      aligner  = "ALIGN_MAX"
      reducers = ["REDUCE_MAX"]
      group_by = ["resource.label.subscription_id"]
    },
    {
      title    = "Cloud Tasks queue depth (expiry, waitlist, webhook deliveries)"
      filter   = "metric.type=\"cloudtasks.googleapis.com/queue/depth\" AND resource.type=\"cloud_tasks_queue\""
      aligner  = "ALIGN_MAX"
      reducers = ["REDUCE_MAX"]
      group_by = ["resource.label.queue_id"]
    },
  ]
}

resource "google_monitoring_dashboard" "ticketing" {
  project = var.project_id
  dashboard_json = jsonencode({
    displayName = "Ticketing (${var.environment})"
    mosaicLayout = {
      columns = 12
      tiles = [
        for i, t in local.dashboard_tiles : {
          xPos   = (i % 2) * 6
          yPos   = floor(i / 2) * 4
          width  = 6
          height = 4
          widget = {
            title = t.title
            xyChart = {
              dataSets = [
                for reducer in t.reducers : {
                  plotType = "LINE"
                  timeSeriesQuery = {
                    timeSeriesFilter = {
                      filter = t.filter
                      aggregation = {
                        alignmentPeriod    = "60s"
                        perSeriesAligner   = t.aligner
                        crossSeriesReducer = reducer
                        groupByFields      = t.group_by
                      }
                    }
                  }
                }
              ]
            }
          }
        }
      ]
    }
  })

  depends_on = [google_project_service.apis]
}
