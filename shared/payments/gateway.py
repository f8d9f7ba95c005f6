"""What the services need from a payment provider, and nothing provider-specific."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class Intent:
    """A provider's payment attempt (a Stripe PaymentIntent)."""

    id: str
    status: str  # requires_payment_method | requires_confirmation | requires_action | processing | succeeded | canceled
    amount: int
    currency: str  # ISO 4217, upper case
    client_secret: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ProviderEvent:
    """A verified webhook event: what the provider says became of an intent.

    `status` is the payment status the event reports (succeeded, failed, processing, canceled,
    requires_action), or None for an event that changes nothing of ours."""

    id: str
    status: str | None
    intent: Intent | None


class Declined(Exception):
    def __init__(self, code: str, intent_id: str | None) -> None:
        super().__init__(code)
        self.code = code
        self.intent_id = intent_id


class UnknownPaymentMethod(Exception):
    """The provider does not accept the payment method the client named."""


class ProviderUnavailable(Exception):
    """The provider could not be reached or failed; the call may be retried with the same key."""


class ProviderBusy(Exception):
    """The provider is still answering an earlier call with the same idempotency key."""


class BadSignature(Exception):
    """A webhook whose signature, timestamp or body is not accepted (unsigned, stale, or signed but
    not an event we can read)."""


class Refused(Exception):
    """The provider will not do it (a refund of a charge it does not hold, say): asking again with
    the same key gets the same answer. A person must look."""


class NotCancellable(Exception):
    """The intent moved on (it succeeded or is processing) and can no longer be cancelled."""


class PaymentGateway(Protocol):
    name: str

    def create_intent(
        self,
        *,
        amount: int,
        currency: str,
        metadata: dict[str, str],
        idempotency_key: str,
        payment_method: str | None = None,
    ) -> Intent: ...

    def confirm_intent(self, intent_id: str, *, idempotency_key: str) -> Intent: ...

    def retrieve_intent(self, intent_id: str) -> Intent: ...

    def cancel_intent(self, intent_id: str, *, idempotency_key: str) -> Intent: ...

    def recent_intents(self, since: datetime) -> Iterator[Intent]: ...

    def refund(self, intent_id: str, *, idempotency_key: str) -> str: ...

    def parse_webhook(self, payload: bytes, signature: str | None) -> ProviderEvent: ...
