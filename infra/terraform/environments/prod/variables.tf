variable "project_id" {
  type        = string
  description = "Project of the prod environment."
}

variable "region" {
  type        = string
  description = "Region of the functions, queue and scheduler."
  default     = "europe-west1"
}

variable "domains" {
  type        = list(string)
  description = "Host names of the prod API (DNS A records point at the load_balancer_ip output)."
}

variable "firestore_location" {
  type        = string
  description = "Firestore location; cannot change once the database exists."
  default     = "eur3"
}

variable "auth_provider" {
  type        = string
  description = "firebase (Firebase Auth of this project) or oidc (any OIDC issuer, e.g. Keycloak)."
  default     = "firebase"
}

variable "auth_issuer" {
  type        = string
  description = "OIDC issuer (iss); required for oidc, empty for firebase."
  default     = ""
}

variable "auth_audience" {
  type        = string
  description = "Expected token audience (aud); empty means the project id."
  default     = ""
}

variable "auth_jwks_url" {
  type        = string
  description = "JWKS URL of the OIDC issuer; required for oidc, empty for firebase."
  default     = ""
}

variable "cors_allowed_origins" {
  type        = list(string)
  description = "Web app origins allowed to call the API from browsers."
  default     = []
}

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

variable "min_instances" {
  type        = number
  description = "Warm instances per public function."
  default     = 1
}

variable "notification_channels" {
  type        = list(string)
  description = "Cloud Monitoring notification channel ids (projects/P/notificationChannels/N) the alerts of this environment notify."
  default     = []
}

variable "runbook_url" {
  type        = string
  description = "Where operators read docs/runbook.md; the alerts link its sections."
  default     = "docs/runbook.md"
}
