"""The payment-gateway factory: a second provider is one more branch here, no service changes."""

from __future__ import annotations

from shared.core.settings import ConfigurationError, Settings
from shared.payments.gateway import PaymentGateway


def make_gateway(settings: Settings) -> PaymentGateway:
    if settings.payment_provider == "stripe":
        from shared.payments.stripe_gateway import StripeGateway

        if not settings.stripe_secret_key or not settings.stripe_webhook_secret:
            raise ConfigurationError("STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET are required")
        return StripeGateway(settings.stripe_secret_key, settings.stripe_webhook_secret, settings.stripe_api_base)
    raise ConfigurationError(f"unknown PAYMENT_PROVIDER {settings.payment_provider}")
