"""Domain objects. Pure Python: no Firestore, no HTTP. Rules that belong to one object live here."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time
from typing import Literal
from zoneinfo import ZoneInfo

from shared import geo

Role = Literal["user", "admin"]
EventStatus = Literal["published", "draft", "cancelled"]
_WORD = re.compile(r"[^\W_]+", re.UNICODE)


def new_id() -> str:
    """Opaque random id: 20 characters of URL-safe base64 (120 bits), never time-ordered."""
    return secrets.token_urlsafe(15)


def utcnow() -> datetime:
    return datetime.now(UTC)


def words(text: str) -> list[str]:
    return [w.casefold() for w in _WORD.findall(text)]


@dataclass(frozen=True)
class Company:
    id: str
    name: str
    address: str
    email: str
    country_code: str
    phone_number: str
    registration_number: str
    created_at: datetime


@dataclass(frozen=True)
class User:
    id: str
    identity_key: str  # hash of issuer and subject: unique per identity, whatever the issuer
    auth_subject: str  # the token's `sub` (Firebase uid): what security rules compare with
    name: str
    email: str
    username: str
    country_code: str
    phone_number: str
    role: Role
    company_id: str | None
    created_at: datetime
    updated_at: datetime

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def manages(self, company_id: str) -> bool:
        return self.is_admin and self.company_id == company_id


@dataclass(frozen=True)
class Event:
    id: str
    company_id: str
    name: str
    description: str | None
    event_date: date
    event_time: time
    timezone: str
    venue: str
    location_lat: float
    location_long: float
    capacity: int
    base_price: int
    surge_price: int
    surge_threshold: float
    currency: str
    max_tickets_per_booking: int
    status: EventStatus
    version: int
    created_at: datetime
    updated_at: datetime
    cancellation_reason: str | None = None  # set when its organiser cancelled it
    cancelled_at: datetime | None = None
    starts_at: datetime = field(init=False)

    def __post_init__(self) -> None:
        local = datetime.combine(self.event_date, self.event_time, ZoneInfo(self.timezone))
        object.__setattr__(self, "starts_at", local.astimezone(UTC))

    @property
    def is_published(self) -> bool:
        return self.status == "published"

    @property
    def is_cancelled(self) -> bool:
        return self.status == "cancelled"

    @property
    def is_public(self) -> bool:
        """Anyone may read it: published, or cancelled (its buyers must see that it was)."""
        return self.status in ("published", "cancelled")

    def has_started(self, now: datetime) -> bool:
        return self.starts_at <= now

    def unit_price(self, taken: int) -> int:
        """Price per ticket for a booking made while `taken` (sold + held) tickets are gone."""
        if self.capacity and taken / self.capacity >= self.surge_threshold:
            return self.surge_price
        return self.base_price

    def search_tokens(self) -> list[str]:
        return sorted(set(words(self.name)) | set(words(self.venue)))

    def geohashes(self) -> dict[int, str]:
        return geo.prefixes(self.location_lat, self.location_long)

    def revised(self, now: datetime, **changes: object) -> Event:
        return replace(self, **changes, version=self.version + 1, updated_at=now)  # type: ignore[arg-type]


BookingStatus = Literal["pending_payment", "confirmed", "expired", "cancelled", "refunded"]


@dataclass(frozen=True)
class Booking:
    """A buyer's hold on `quantity` tickets of one event, and what became of it.

    Its tickets are the slot claims that name it (InventoryDAL.claims_of). A pending booking past
    `expires_at` is expired whether or not the expiry job has run: see `status_at`.
    """

    id: str
    event_id: str
    company_id: str
    user_id: str
    buyer_subject: str
    quantity: int
    unit_price: int
    total_cost: int
    currency: str
    status: BookingStatus
    booking_time: datetime
    expires_at: datetime
    updated_at: datetime
    history: tuple[dict[str, object], ...] = ()
    payment_attempts: int = 0
    latest_payment_id: str | None = None
    paid_by: str | None = None  # the payment that confirmed it
    seq: int = 1  # counts the booking's changes: the sequence of its domain events
    promo_code: str | None = None  # it holds one use of this code of its event
    discount: int = 0  # minor units off unit_price * quantity
    waitlist_entry_id: str | None = None  # an offer made to this waitlist entry

    def status_at(self, now: datetime) -> BookingStatus:
        if self.status == "pending_payment" and self.expires_at <= now:
            return "expired"
        return self.status

    def moved_to(self, status: BookingStatus, now: datetime, reason: str, **changes: object) -> Booking:
        entry: dict[str, object] = {"status": status, "at": now.isoformat(), "reason": reason}
        return self.changed(now, status=status, history=(*self.history, entry), **changes)

    def changed(self, now: datetime, **changes: object) -> Booking:
        return replace(self, **changes, updated_at=now, seq=self.seq + 1)  # type: ignore[arg-type]


PublicPaymentStatus = Literal[
    "requires_payment_method",
    "requires_confirmation",
    "requires_action",
    "processing",
    "succeeded",
    "failed",
    "canceled",
    "refunded",
]
# "creating": recorded before the provider is called; never left there (the reconciler repairs).
PaymentStatus = Literal["creating", PublicPaymentStatus]
PROVIDER_STATUSES = {
    "requires_payment_method",
    "requires_confirmation",
    "requires_action",
    "processing",
    "succeeded",
    "canceled",
}


@dataclass(frozen=True)
class Payment:
    """One attempt to pay a booking. `idempotency_key` is the key sent to the provider: per attempt."""

    id: str
    booking_id: str
    event_id: str
    company_id: str
    user_id: str
    attempt: int
    amount: int
    currency: str
    status: PaymentStatus
    provider: str
    idempotency_key: str
    created_at: datetime
    updated_at: datetime
    transaction_id: str | None = None
    client_secret: str | None = None
    failure_code: str | None = None
    attention: str | None = None  # why a person should look at it, or None
    payment_method: str | None = None  # what the buyer asked to pay with (None: client-side confirmation)
    refund_started_at: datetime | None = None  # a refund was asked of the provider (one at a time)
    booked: bool = False  # it confirmed its booking: only an organiser's refund gives it back
    seq: int = 1  # counts the payment's changes: the sequence of its domain events

    def can_become(self, status: PaymentStatus) -> bool:
        """Never backwards: succeeded only becomes refunded, refunded is final, and a failed attempt
        changes only if the provider later says the money came in."""
        if status == self.status:
            return False
        if self.status == "refunded" or status == "creating":
            return False
        if self.status == "succeeded":
            return status == "refunded"
        if self.status == "failed":
            return status == "succeeded"
        return True

    @property
    def in_flight(self) -> bool:
        """Money may be moving: a second attempt now could charge the buyer twice."""
        return self.status in ("creating", "processing", "succeeded")

    @property
    def open(self) -> bool:
        """Waiting for the buyer (client-side confirmation, 3-D Secure): it can still be charged."""
        return self.status in ("requires_payment_method", "requires_confirmation", "requires_action")

    def moved_to(self, status: PaymentStatus, now: datetime, **changes: object) -> Payment:
        return self.changed(now, status=status, **changes)

    def flagged(self, reason: str, now: datetime) -> Payment:
        return self.changed(now, attention=reason)

    def changed(self, now: datetime, **changes: object) -> Payment:
        return replace(self, **changes, updated_at=now, seq=self.seq + 1)  # type: ignore[arg-type]
