"""Outbound webhooks: an integrator's endpoint (per company) and one delivery of one domain event to it.

A delivery is sent on the Standard Webhooks retry schedule until the endpoint answers 2xx; its
`webhook-id` is the domain event's id, the same on every attempt and every endpoint.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

EndpointStatus = Literal["enabled", "disabled"]
DeliveryState = Literal["pending", "delivered", "failed"]

# After each failed attempt, the wait before the next (the specification's schedule); after the
# last one the delivery is `failed`.
RETRY_SCHEDULE = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
MAX_ATTEMPTS = len(RETRY_SCHEDULE) + 1
DISABLE_AFTER = timedelta(days=3)  # an endpoint failing this long is disabled and its admins told
ALL_TYPES = "*"


@dataclass(frozen=True)
class WebhookEndpoint:
    id: str
    company_id: str
    url: str
    events: tuple[str, ...]  # webhook types, or ("*",)
    description: str | None
    status: EndpointStatus
    secret_sealed: str  # the signing secret, encrypted at rest (shared/services/webhooks/signing.py)
    created_at: datetime
    updated_at: datetime
    failing_since: datetime | None = None  # the first failure after the last success
    disabled_at: datetime | None = None

    def wants(self, webhook_type: str) -> bool:
        return self.status == "enabled" and (ALL_TYPES in self.events or webhook_type in self.events)

    def changed(self, now: datetime, **changes: object) -> WebhookEndpoint:
        return replace(self, updated_at=now, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Delivery:
    id: str
    endpoint_id: str
    company_id: str
    event_id: str  # the domain event's id: the `webhook-id` of every attempt
    type: str
    body: str  # the exact JSON sent (the same bytes on every attempt)
    created_at: datetime  # when the domain event was committed
    state: DeliveryState
    attempts: int
    next_attempt_at: datetime | None
    last_status: int | None = None  # the endpoint's HTTP status, or None when nothing answered
    last_error: str | None = None
    last_attempt_at: datetime | None = None
    delivered_at: datetime | None = None
    updated_at: datetime | None = None

    def changed(self, now: datetime, **changes: object) -> Delivery:
        return replace(self, updated_at=now, **changes)  # type: ignore[arg-type]


def delivery_id(endpoint_id: str, event_id: str) -> str:
    """One delivery per endpoint and domain event, whatever the redeliveries of the stream."""
    return hashlib.sha256(f"{endpoint_id}\n{event_id}".encode()).hexdigest()[:32]
