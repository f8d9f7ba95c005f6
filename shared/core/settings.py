"""Settings from the environment, validated once per process.

Emulator, localstripe and local-issuer settings are refused outside the `local` and `test`
profiles and outside a `demo-` project, so a production process can never talk to a fake.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.core.faults import Plan
from shared.core.ticket_codes import parse_setting

Profile = Literal["local", "test", "staging", "prod"]
AuthProvider = Literal["firebase", "oidc", "local"]

FIREBASE_JWKS_URL = "https://www.googleapis.com/service_accounts/v1/jwk/securetoken@system.gserviceaccount.com"
LOCAL_PROFILES = ("local", "test")


class ConfigurationError(RuntimeError):
    """The process must not start with these settings."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", populate_by_name=True)

    profile: Profile = "local"
    gcp_project: str = Field(default="demo-tickets", alias="GOOGLE_CLOUD_PROJECT")
    region: str = "europe-west1"

    # Local stand-ins (refused outside local/test).
    firestore_emulator_host: str | None = None
    pubsub_emulator_host: str | None = None
    cloud_tasks_emulator_host: str | None = None
    stripe_api_base: str | None = None

    # Authentication.
    auth_provider: AuthProvider = "firebase"
    auth_issuer: str | None = None
    auth_audience: str | None = None
    auth_jwks_url: str | None = None
    auth_leeway_seconds: int = Field(default=30, ge=0, le=60)
    dev_issuer_key_file: str | None = None

    # Payments (secrets: environment variables mounted from Secret Manager in production).
    payment_provider: Literal["stripe"] = "stripe"
    stripe_secret_key: str | None = None
    stripe_webhook_secret: str | None = None

    # Email (booking confirmations).
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    smtp_sender: str = "tickets@example.com"
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False

    # Payments: how long a processing payment keeps its hold beyond expiry (once).
    processing_grace_seconds: int = Field(default=900, ge=0, le=3600)

    # Booking rules.
    hold_ttl_seconds: int = Field(default=600, ge=1, le=86_400)
    max_pending_bookings_per_buyer: int = Field(default=1, ge=1, le=100)
    max_holds_per_buyer_per_minute: int = Field(default=5, ge=1, le=1000)
    waitlist_offer_seconds: int = Field(default=3600, ge=1, le=7 * 86_400)  # how long a waitlist offer is held

    # Expiry: Cloud Tasks queue and where its tasks are delivered.
    expiry_queue: str = "booking-expiry"
    waitlist_queue: str = "waitlist-serve"  # serving the waitlists: latency-bound, apart from the expiries
    tasks_target_base_url: str = "http://127.0.0.1:8080"
    # Outbound webhooks: the queue of delivery attempts, the sender function's base URL (the only
    # function that calls integrators), the identity its tasks carry, and the key that seals the
    # endpoints' signing secrets at rest (32 bytes, base64; Secret Manager outside local and test).
    webhook_queue: str = "webhook-deliveries"
    webhook_sender_url: str = "http://127.0.0.1:8080"
    webhook_invoker_service_account: str | None = None
    webhook_secret_key: SecretStr | None = None
    tasks_invoker_service_account: str | None = None
    sweep_batch_size: int = Field(default=200, ge=1, le=1000)
    outbox_grace_seconds: int = Field(default=10, ge=0, le=600)  # younger messages are still being published

    # Fault injection for tests (local/test only): "skip_outbox_publish" acts as if the process died
    # between a commit and its publish.
    fault_injection: str | None = None
    # Seeded faults at random for the fault-injected load runs (local/test only): "seed=N,rate=R".
    # See shared/core/faults.py for what is injected where.
    fault_plan: str | None = None

    # Ticket codes: "kid:seed[,kid:seed...]" (shared/core/ticket_codes.py); the first signs.
    # From Secret Manager outside local and test; a local stack generates one (dev/stack.py).
    ticket_signing_keys: SecretStr | None = None

    # HTTP.
    cors_allowed_origins: str = ""
    max_body_bytes: int = 64 * 1024
    log_level: str = "INFO"

    @property
    def is_local(self) -> bool:
        return self.profile in LOCAL_PROFILES

    @property
    def cors_origins(self) -> tuple[str, ...]:
        return tuple(o.strip() for o in self.cors_allowed_origins.split(",") if o.strip())

    @property
    def issuer(self) -> str:
        if self.auth_issuer:
            return self.auth_issuer
        if self.auth_provider == "firebase":
            return f"https://securetoken.google.com/{self.gcp_project}"
        raise ConfigurationError("AUTH_ISSUER is required for this AUTH_PROVIDER")

    @property
    def audience(self) -> str:
        return self.auth_audience or self.gcp_project

    @property
    def jwks_url(self) -> str:
        if self.auth_jwks_url:
            return self.auth_jwks_url
        if self.auth_provider == "firebase":
            return FIREBASE_JWKS_URL
        raise ConfigurationError("AUTH_JWKS_URL is required for this AUTH_PROVIDER")

    @model_validator(mode="after")
    def _refuse_unsafe(self) -> Settings:
        local_only = {
            "FIRESTORE_EMULATOR_HOST": self.firestore_emulator_host,
            "PUBSUB_EMULATOR_HOST": self.pubsub_emulator_host,
            "CLOUD_TASKS_EMULATOR_HOST": self.cloud_tasks_emulator_host,
            "STRIPE_API_BASE": self.stripe_api_base,
            "AUTH_PROVIDER=local": "on" if self.auth_provider == "local" else None,
            "DEV_ISSUER_KEY_FILE": self.dev_issuer_key_file,
            "FAULT_INJECTION": self.fault_injection,
            "FAULT_PLAN": self.fault_plan,
        }
        if self.fault_plan:
            Plan.parse(self.fault_plan)
        if self.ticket_signing_keys:
            parse_setting(self.ticket_signing_keys.get_secret_value())
        used = [name for name, value in local_only.items() if value]
        if used and not self.is_local:
            raise ValueError(f"{', '.join(used)} set in profile '{self.profile}': local and test only")
        if used and not self.gcp_project.startswith("demo-"):
            raise ValueError(f"{', '.join(used)} set for project '{self.gcp_project}': demo- projects only")
        if self.is_local and not self.gcp_project.startswith("demo-"):
            raise ValueError(f"profile '{self.profile}' needs a demo- project id, not '{self.gcp_project}'")
        if not self.is_local:
            missing = [
                name
                for name, value in {
                    "STRIPE_SECRET_KEY": self.stripe_secret_key,
                    "STRIPE_WEBHOOK_SECRET": self.stripe_webhook_secret,
                    "TICKET_SIGNING_KEYS": self.ticket_signing_keys,
                    "WEBHOOK_SECRET_KEY": self.webhook_secret_key,
                }.items()
                if not value
            ]
            if missing:
                raise ValueError(f"missing production secrets: {', '.join(missing)}")
            if self.auth_provider == "oidc" and not (self.auth_issuer and self.auth_jwks_url):
                raise ValueError("AUTH_PROVIDER=oidc needs AUTH_ISSUER and AUTH_JWKS_URL")
        return self


class _ExactSettings(Settings):
    """Settings from the given values only (tests, tools): the process environment is not read."""

    @classmethod
    def settings_customise_sources(  # type: ignore[override]
        cls, settings_cls: Any, init_settings: Any, **others: Any
    ) -> tuple[Any, ...]:
        return (init_settings,)


def load_settings(env: dict[str, str] | None = None) -> Settings:
    """Build settings from `env` (default: the process environment) or raise ConfigurationError."""
    try:
        if env is None:
            return Settings()
        values = {k.lower(): v for k, v in env.items()}
        if "google_cloud_project" in values:
            values["GOOGLE_CLOUD_PROJECT"] = values.pop("google_cloud_project")
        exact: dict[str, Any] = values
        return _ExactSettings(**exact)
    except ValidationError as exc:
        reasons = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        raise ConfigurationError(f"refusing to start: {reasons}") from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
