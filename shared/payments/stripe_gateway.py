"""Stripe through the official SDK. Locally the same code talks to localstripe (STRIPE_API_BASE)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import stripe

from shared.core import faults
from shared.payments.gateway import (
    BadSignature,
    Declined,
    Intent,
    NotCancellable,
    ProviderBusy,
    ProviderEvent,
    ProviderUnavailable,
    Refused,
    UnknownPaymentMethod,
)

WEBHOOK_TOLERANCE_SECONDS = 300
MAX_LISTED = 2000
TIMEOUT_SECONDS = 15  # per try
# What each webhook event type says about the intent, as a payment status.
EVENT_STATUS = {
    "payment_intent.succeeded": "succeeded",
    "payment_intent.payment_failed": "failed",
    "payment_intent.processing": "processing",
    "payment_intent.canceled": "canceled",
    "payment_intent.requires_action": "requires_action",
}
# An intent in one of these was confirmed (by an earlier call, or by the buyer's browser).
CONFIRMED = ("processing", "requires_capture", "succeeded")


class StripeGateway:
    name = "stripe"

    def __init__(self, secret_key: str, webhook_secret: str, api_base: str | None = None) -> None:
        addresses: Any = {"api": api_base} if api_base else None
        self.client = stripe.StripeClient(
            secret_key,
            base_addresses=addresses,
            max_network_retries=2,
            http_client=stripe.RequestsClient(timeout=TIMEOUT_SECONDS),
        )
        self.webhook_secret = webhook_secret

    def create_intent(
        self,
        *,
        amount: int,
        currency: str,
        metadata: dict[str, str],
        idempotency_key: str,
        payment_method: str | None = None,
    ) -> Intent:
        params: dict[str, Any] = {
            "amount": amount,
            "currency": currency.lower(),
            "metadata": metadata,
            "payment_method_types": ["card"],
        }
        if payment_method:
            params["payment_method"] = payment_method
        with _translated(payment_method=payment_method):
            intent = self.client.v1.payment_intents.create(params=params, options={"idempotency_key": idempotency_key})  # type: ignore[arg-type]
        _maybe_lose_the_answer()
        return _intent(intent)

    def confirm_intent(self, intent_id: str, *, idempotency_key: str) -> Intent:
        """Confirm; an intent that a first call (whose answer was lost) or the buyer's browser
        confirmed already is returned as it is, not refused."""
        try:
            with _translated(intent_id):
                intent = self.client.v1.payment_intents.confirm(intent_id, options={"idempotency_key": idempotency_key})
        except stripe.InvalidRequestError:
            found = self.retrieve_intent(intent_id)
            if found.status in CONFIRMED:
                return found
            raise
        _maybe_lose_the_answer()
        return _intent(intent)

    def retrieve_intent(self, intent_id: str) -> Intent:
        with _translated(intent_id):
            intent = self.client.v1.payment_intents.retrieve(intent_id)
        return _intent(intent)

    def cancel_intent(self, intent_id: str, *, idempotency_key: str) -> Intent:
        try:
            with _translated(intent_id):
                intent = self.client.v1.payment_intents.cancel(intent_id, options={"idempotency_key": idempotency_key})
        except stripe.InvalidRequestError:
            raise NotCancellable(intent_id) from None
        return _intent(intent)

    def recent_intents(self, since: datetime) -> Iterator[Intent]:
        """Intents created since `since`, newest first, at most MAX_LISTED (filtered here: localstripe
        does not take the `created` filter)."""
        cutoff = int(since.timestamp())
        with _translated():
            page = self.client.v1.payment_intents.list(params={"limit": 100})
            for count, intent in enumerate(page.auto_paging_iter()):
                if count >= MAX_LISTED or int(intent.created) < cutoff:
                    return
                yield _intent(intent)

    def refund(self, intent_id: str, *, idempotency_key: str) -> str:
        try:
            with _translated(intent_id):
                refund = self.client.v1.refunds.create(
                    params={"payment_intent": intent_id}, options={"idempotency_key": idempotency_key}
                )
        except stripe.InvalidRequestError as exc:  # e.g. no charge to refund
            if exc.code == "charge_already_refunded":  # by an earlier call whose key has expired (24 h)
                return "already_refunded"
            raise Refused(exc.user_message or str(exc)) from None
        return str(refund.id)

    def parse_webhook(self, payload: bytes, signature: str | None) -> ProviderEvent:
        try:
            event = stripe.Webhook.construct_event(
                payload, signature or "", self.webhook_secret, tolerance=WEBHOOK_TOLERANCE_SECONDS
            )
        except stripe.SignatureVerificationError as exc:
            raise BadSignature(str(exc)) from None
        except (AttributeError, TypeError, ValueError, RecursionError):  # signed, but not a readable object
            raise BadSignature("the body is not a readable Stripe event") from None
        try:
            obj = event.data.object.to_dict() if event.data else {}
            intent = _intent(obj) if obj.get("object") == "payment_intent" else None
            return ProviderEvent(id=str(event["id"]), status=EVENT_STATUS.get(str(event["type"])), intent=intent)
        except (AttributeError, KeyError, TypeError, ValueError, RecursionError):  # signed, not readable
            raise BadSignature("the event's body is not a readable Stripe event") from None


def _maybe_lose_the_answer() -> None:
    """Fault injection (local and test): the provider did the call, its answer never arrives."""
    if faults.current().hit("provider_timeout"):
        raise ProviderUnavailable("fault injection: the answer was lost")


def _intent(resource: Any) -> Intent:
    obj = resource.to_dict() if hasattr(resource, "to_dict") else dict(resource)
    metadata = obj.get("metadata") or {}
    return Intent(
        id=str(obj["id"]),
        status=str(obj["status"]),
        amount=int(obj["amount"]),
        currency=str(obj["currency"]).upper(),
        client_secret=obj.get("client_secret"),
        metadata={str(k): str(v) for k, v in dict(metadata).items()},
    )


@contextmanager
def _translated(intent_id: str | None = None, payment_method: str | None = None) -> Iterator[None]:
    """Stripe's errors become the gateway's: declines, unknown payment methods, failures worth
    retrying. Any other error is ours, and stays an error."""
    try:
        yield
    except stripe.InvalidRequestError:
        if payment_method is None:
            raise
        raise UnknownPaymentMethod(payment_method) from None
    except stripe.IdempotencyError:
        raise ProviderBusy() from None
    except stripe.CardError as exc:
        intent = exc.error.payment_intent if exc.error else None
        raise Declined(exc.code or "card_declined", intent.id if intent is not None else intent_id) from None
    except (stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError) as exc:
        raise ProviderUnavailable(type(exc).__name__) from None
