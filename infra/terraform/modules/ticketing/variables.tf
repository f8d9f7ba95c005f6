variable "project_id" {
  type        = string
  description = "Project to deploy into (one project per environment)."
}

variable "environment" {
  type        = string
  description = "Environment name; becomes the functions' PROFILE."

  validation {
    condition     = contains(["staging", "prod"], var.environment)
    error_message = "environment must be staging or prod."
  }
}

variable "region" {
  type        = string
  description = "Region of the functions, the Cloud Tasks queue and the Scheduler job."
  default     = "europe-west1"
}

variable "domains" {
  type        = list(string)
  description = "Host names of the API; the first is the public base URL. A Google-managed certificate covers them all."
}

# Authentication (see docs/deployment.md: Firebase Auth or any OIDC issuer).

variable "auth_provider" {
  type        = string
  description = "Who signs the bearer tokens: firebase (Firebase Auth of this project) or oidc (AUTH_ISSUER)."
  default     = "firebase"

  validation {
    condition     = contains(["firebase", "oidc"], var.auth_provider)
    error_message = "auth_provider must be firebase or oidc."
  }
}

variable "auth_issuer" {
  type        = string
  description = "Token issuer (iss). Required for oidc; empty means https://securetoken.google.com/<project> for firebase."
  default     = ""
}

variable "auth_audience" {
  type        = string
  description = "Expected token audience (aud). Empty means the project id (what Firebase Auth issues)."
  default     = ""
}

variable "auth_jwks_url" {
  type        = string
  description = "JWKS URL of the issuer. Required for oidc; empty means Google's securetoken keys for firebase."
  default     = ""
}

# Application settings.

variable "hold_ttl_seconds" {
  type        = number
  description = "How long a booking holds its tickets before it expires unpaid."
  default     = 600
}

variable "max_pending_bookings_per_buyer" {
  type        = number
  description = "Unpaid, unexpired bookings a buyer may hold per event."
  default     = 1
}

variable "max_holds_per_buyer_per_minute" {
  type        = number
  description = "Holds one buyer may make of one event per minute (429 rate_limited beyond)."
  default     = 5
}

variable "cors_allowed_origins" {
  type        = list(string)
  description = "Browser origins allowed to call the API (CORS). Never \"*\"."
  default     = []

  validation {
    condition     = !contains(var.cors_allowed_origins, "*")
    error_message = "cors_allowed_origins must list origins, not \"*\"."
  }
}

variable "log_level" {
  type        = string
  description = "LOG_LEVEL of every function (DEBUG, INFO, WARNING, ERROR)."
  default     = "INFO"
}

# Function sizing.

variable "concurrency" {
  type        = number
  description = "Requests one instance serves at once (max_instance_request_concurrency; also gunicorn THREADS)."
  default     = 40
}

variable "cpu" {
  type        = string
  description = "vCPUs per instance; concurrency above 1 needs at least \"1\"."
  default     = "1"
}

variable "memory" {
  type        = string
  description = "Memory per instance."
  default     = "512Mi"
}

variable "min_instances" {
  type        = number
  description = "Warm instances kept per public function (internal functions scale from zero)."
  default     = 0
}

variable "max_instances" {
  type        = number
  description = "Upper bound of instances per function."
  default     = 100
}

variable "timeout_seconds" {
  type        = number
  description = "Request timeout of every function; also the Pub/Sub ack deadline and the Scheduler attempt deadline."
  default     = 60
}

variable "function_access" {
  type = map(object({
    firestore = optional(bool, true)
    publish   = optional(list(string), [])
    enqueue   = optional(bool, false)
    deliver   = optional(bool, false)
  }))
  description = <<-EOT
    Roles per function, beyond reading the secrets of local.secret_env (every function needs them). A function not
    listed gets Firestore access only. firestore: roles/datastore.user; publish: topics it may publish to;
    enqueue: may create tasks on the booking-expiry and waitlist-serve queues (run as the internal invoker);
    deliver: may create tasks on the webhook-deliveries queue (run as the webhook invoker, which can call
    the sender and nothing else).
  EOT
  default = {
    meta = { firestore = false }
    # Every function whose commits write domain events relays them to integration-events after
    # the commit (the outbound webhooks read that topic).
    users = { publish = ["integration-events"] }
    # A free booking (a 100% promo code) is confirmed by the hold itself; a cancel serves the waitlist.
    bookings = { enqueue = true, publish = ["booking-confirmed", "integration-events"] }
    # A join or a capacity raise serves the waitlist (a task); a refund frees tickets for it too.
    events    = { enqueue = true, publish = ["integration-events"] }
    payments  = { publish = ["payment-events", "integration-events"], enqueue = true }
    webhooks  = { publish = ["payment-events", "integration-events"] }
    finaliser = { publish = ["booking-confirmed", "integration-events"] }
    checkin   = { publish = ["integration-events"] }
    # The sweep also relays outbox messages that were not published when they were written; a
    # cancellation's batch asks for the next one (a task); it re-enqueues webhook deliveries whose
    # task was lost.
    tasks = { publish = ["payment-events", "booking-confirmed", "integration-events"], enqueue = true, deliver = true }
    # Outbound webhooks: fanout enqueues the first attempt of each delivery, the sender the next
    # one after a failure, integrations a manual retry. None of them may call internal functions.
    fanout       = { deliver = true }
    sender       = { deliver = true }
    integrations = { deliver = true }
  }
}

# Event-driven pieces.

variable "topics" {
  type        = list(string)
  description = "Pub/Sub topics. A routes.json function with \"topic\" gets that topic's messages pushed to its \"push_path\"."
  default     = ["payment-events", "booking-confirmed", "integration-events"]
}

variable "max_delivery_attempts" {
  type        = number
  description = "Pub/Sub push attempts before a message goes to its subscription's dead-letter topic (5-100)."
  default     = 10

  validation {
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100
    error_message = "max_delivery_attempts must be between 5 and 100 (Pub/Sub's bounds)."
  }
}

variable "webhook_queue" {
  type        = string
  description = "Cloud Tasks queue with one named task per outbound webhook delivery attempt (WEBHOOK_QUEUE)."
  default     = "webhook-deliveries"
}

variable "webhook_sender_function" {
  type        = string
  description = "Internal function that POSTs the signed webhooks (WEBHOOK_SENDER_URL); only the webhook invoker may call it."
  default     = "sender"
}

variable "webhook_sender_vpc_connector" {
  type        = string
  description = <<-EOT
    Optional Serverless VPC Access connector (projects/P/locations/R/connectors/NAME) for the sender's egress.
    Empty (default): the sender reaches integrators directly over Google's internet egress. Set it to send
    all the sender's traffic through a VPC whose Cloud NAT gives it fixed addresses integrators can allow-list
    and whose firewall can deny private ranges as a second SSRF guard.
  EOT
  default     = ""
}

variable "waitlist_queue" {
  type        = string
  description = "Cloud Tasks queue whose tasks serve an event's waitlist right after tickets come free."
  default     = "waitlist-serve"
}

variable "expiry_queue" {
  type        = string
  description = "Cloud Tasks queue that ends each hold at its expires_at."
  default     = "booking-expiry"
}

variable "tasks_function" {
  type        = string
  description = "Internal function the booking-expiry tasks call (TASKS_TARGET_BASE_URL)."
  default     = "tasks"
}

variable "sweep_function" {
  type        = string
  description = "Internal function Cloud Scheduler calls (with OIDC) to expire overdue bookings; no job until it exists."
  default     = "tasks"
}

variable "sweep_path" {
  type        = string
  description = "Path of the sweep on var.sweep_function."
  default     = "/tasks/sweep"
}

variable "sweep_schedule" {
  type        = string
  description = "Cron schedule (UTC) of the sweep."
  default     = "* * * * *"
}

variable "secret_version" {
  type        = string
  description = "Version of the secrets the functions mount (\"latest\", or a number to pin)."
  default     = "latest"
}

# Data.

variable "firestore_location" {
  type        = string
  description = "Firestore location (fixed once created), e.g. eur3 or nam5."
  default     = "eur3"
}

variable "firestore_delete_protection" {
  type        = bool
  description = "Refuse to delete the Firestore database."
  default     = true
}

variable "firestore_point_in_time_recovery" {
  type        = bool
  description = "Keep 7 days of point-in-time recovery for Firestore."
  default     = false
}

variable "security_policy" {
  type        = string
  description = "Optional Cloud Armor policy (self link) attached to every backend service."
  default     = null
}

variable "default_function" {
  type        = string
  description = "Public function that receives paths no route matches (its router answers 404)."
  default     = "meta"
}

# Operations: alerts and the dashboard (monitoring.tf, docs/runbook.md).

variable "notification_channels" {
  type        = list(string)
  description = "Monitoring notification channel ids (projects/P/notificationChannels/N) every alert policy notifies; empty: alerts open incidents in the console only."
  default     = []
}

variable "runbook_url" {
  type        = string
  description = "Where operators read docs/runbook.md (e.g. its address in the repository host); alert texts link its sections."
  default     = "docs/runbook.md"
}

variable "error_rate_threshold" {
  type        = number
  description = "Share of requests answered 5xx (0-1) over 5 minutes that opens the 5xx alert."
  default     = 0.02
}

variable "webhook_intake_failure_threshold" {
  type        = number
  description = "Stripe webhook deliveries answered >= 400 within 10 minutes above which the intake alert opens."
  default     = 2
}

variable "hold_latency_p95_seconds" {
  type        = number
  description = "p95 latency of POST /v1/events/{id}/bookings (the hold) over 5 minutes that opens the latency alert."
  default     = 1
}
