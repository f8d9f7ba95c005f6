"""The one stream of domain events: every committed change of an event, booking, payment or ticket.

A domain event is written by the unit of work in the same commit as the change it describes, so
the stream holds exactly what was committed. Its readers: the audit log, the Pub/Sub relay (the
finaliser and the confirmation email react to `payment.succeeded` and `booking.confirmed`), and
whatever comes next (outbound webhooks, the waitlist). Records are never edited or deleted, only
marked published. Readers are idempotent: the relay is at least once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any, Literal

from shared.models import Booking, Event, Payment, new_id
from shared.promo_models import PromoCode
from shared.ticket_models import CheckinDevice, Ticket
from shared.waitlist_models import WaitlistEntry

ActorType = Literal["user", "device", "system", "stripe"]
PAYMENT_EVENTS = "payment-events"  # Pub/Sub topic read by the finaliser
BOOKING_CONFIRMED = "booking-confirmed"  # Pub/Sub topic read by the notifier
INTEGRATION_EVENTS = "integration-events"  # Pub/Sub topic read by the outbound-webhook fan-out
TOPICS = (PAYMENT_EVENTS, BOOKING_CONFIRMED, INTEGRATION_EVENTS)
# The domain events integrators may subscribe to, by action, and the webhook type they are sent as
# (API.md, Webhooks to integrators). Each is relayed to INTEGRATION_EVENTS by the commit that records it.
WEBHOOK_TYPES = {
    "booking.confirmed": "booking.confirmed",
    "booking.cancelled": "booking.cancelled",
    "booking.expired": "booking.expired",
    "booking.refunded": "booking.refunded",
    "ticket.checked_in": "ticket.checked_in",
    "event.created": "event.created",
    "event.updated": "event.updated",
    "event.cancelled": "event.cancelled",
    "waitlist_entry.offered": "waitlist.offered",
}


@dataclass(frozen=True)
class Actor:
    """Who made a change: a user, a check-in device, the system itself, or the payment provider."""

    type: ActorType
    id: str

    @classmethod
    def user(cls, user_id: str) -> Actor:
        return cls("user", user_id)

    @classmethod
    def system(cls, job: str) -> Actor:
        return cls("system", job)

    @classmethod
    def device(cls, device_id: str) -> Actor:
        return cls("device", device_id)

    @classmethod
    def provider(cls, event_id: str) -> Actor:
        return cls("stripe", event_id)


@dataclass(frozen=True)
class DomainEvent:
    id: str
    action: str  # "<object type>.<what happened>", e.g. "booking.confirmed"
    object_type: str
    object_id: str
    event_id: str  # the ticketed event the object belongs to (the audit log's scope)
    company_id: str
    actor: Actor
    sequence: int  # increases with every change of the same object
    at: datetime
    changes: dict[str, list[Any]] = field(default_factory=dict)  # field -> [before, after]
    topics: tuple[str, ...] = ()  # Pub/Sub topics it is relayed to
    data: dict[str, str] = field(default_factory=dict)  # ids its consumers need

    def message(self) -> dict[str, Any]:
        """What is published to Pub/Sub."""
        return {
            "type": self.action,
            "message_id": self.id,
            "object_type": self.object_type,
            "object_id": self.object_id,
            "sequence": self.sequence,
            "company_id": self.company_id,
            "at": self.at.isoformat(),
            **self.data,
        }


Tracked = Event | Booking | Payment | Ticket | CheckinDevice | PromoCode | WaitlistEntry
_AUDITED = {
    "event": (
        "name",
        "description",
        "event_date",
        "event_time",
        "timezone",
        "venue",
        "location_lat",
        "location_long",
        "capacity",
        "base_price",
        "surge_price",
        "surge_threshold",
        "currency",
        "max_tickets_per_booking",
        "status",
    ),
    "booking": ("status", "expires_at", "latest_payment_id", "paid_by"),
    "payment": ("status", "transaction_id", "failure_code", "attention", "booked"),
    "ticket": ("status", "checked_in_at", "checked_in_by", "revoked_at"),
    "checkin_device": ("name", "revoked_at"),
    "promo_code": ("percent_off", "amount_off", "max_uses", "valid_until", "active"),
    "waitlist_entry": ("status", "booking_id", "offer_expires_at"),
}


def change(
    action: str,
    after: Tracked,
    actor: Actor,
    at: datetime,
    before: Tracked | None = None,
    topics: tuple[str, ...] = (),
) -> DomainEvent:
    """The domain event for `after` (as it will be committed), with what changed since `before`."""
    kind = _kind(after)
    if isinstance(after, Event):
        event_id, sequence, data = after.id, after.version, {"event_id": after.id}
    elif isinstance(after, Booking):
        event_id, sequence, data = after.event_id, after.seq, {"booking_id": after.id}
    elif isinstance(after, Ticket):
        event_id, sequence = after.event_id, after.seq
        data = {"ticket_id": after.id, "booking_id": after.booking_id}
    elif isinstance(after, CheckinDevice):
        event_id, sequence, data = after.event_id, after.seq, {"device_id": after.id}
    elif isinstance(after, WaitlistEntry):
        event_id, sequence = after.event_id, after.seq
        data = {"entry_id": after.id, "booking_id": after.booking_id or ""}
    elif isinstance(after, PromoCode):
        event_id, sequence, data = after.event_id, after.seq, {"promo_code": after.code}
    else:
        event_id, sequence = after.event_id, after.seq
        data = {"payment_id": after.id, "booking_id": after.booking_id}
    changes: dict[str, list[Any]] = {}
    if before is not None:
        for name in _AUDITED[kind]:
            old, new = getattr(before, name), getattr(after, name)
            if old != new:
                changes[name] = [_plain(old), _plain(new)]
    if f"{kind}.{action}" in WEBHOOK_TYPES:
        topics = (*topics, INTEGRATION_EVENTS)
    return DomainEvent(
        id=new_id(),
        action=f"{kind}.{action}",
        object_type=kind,
        object_id=after.code if isinstance(after, PromoCode) else after.id,
        event_id=event_id,
        company_id=after.company_id,
        actor=actor,
        sequence=sequence,
        at=at,
        changes=changes,
        topics=topics,
        data=data,
    )


def _kind(obj: Tracked) -> str:
    if isinstance(obj, Event):
        return "event"
    if isinstance(obj, Ticket):
        return "ticket"
    if isinstance(obj, CheckinDevice):
        return "checkin_device"
    if isinstance(obj, PromoCode):
        return "promo_code"
    if isinstance(obj, WaitlistEntry):
        return "waitlist_entry"
    return "booking" if isinstance(obj, Booking) else "payment"


def _plain(value: Any) -> Any:
    """A value as the API shows it (JSON), so the audit log reads the same as the resources."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, time):
        return value.strftime("%H:%M")
    if isinstance(value, date):
        return value.isoformat()
    return value
