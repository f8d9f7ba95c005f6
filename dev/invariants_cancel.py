"""The event cancellation rule of the invariant checker (dev/invariants.py reads and reports it).

- `cancel`: once a cancelled event's fan-out has settled, no charge of its bookings is kept (every
  succeeded PaymentIntent refunded in full), no booking is pending or confirmed, and every ticket is
  revoked, unless the refund failed and that is visible: the payment has `attention` set (it is
  listed by `GET /v1/attention`). Every buyer whose booking was live when the fan-out reached it was
  told once: the booking's `event_cancelled` notification record says `sent`.

`in_flight` says what the checker waits for while the fan-out runs: the bookings that are still
pending, or confirmed with no refused refund.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

RULE = "cancel"
DESCRIPTION = "a cancelled event keeps no charge, booking or valid ticket, or the failure is in attention"
KIND = "event_cancelled"  # the notification records of the buyers' e-mails
REASON = "the event was cancelled"  # what the fan-out writes in a booking's history


def _at(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        try:
            return _at(datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            return None
    return None


def cancelled(event: dict[str, Any] | None) -> bool:
    return event is not None and event.get("status") == "cancelled"


def read(db: Any, event: dict[str, Any] | None, booking_ids: Iterable[str]) -> dict[str, str | None]:
    """booking id -> the state of its cancellation notice (only for a cancelled event)."""
    ids = sorted(booking_ids)
    if not cancelled(event) or not ids:
        return {}
    refs = [db.collection("notifications").document(f"{b}-{KIND}") for b in ids]
    states = {s.id.removesuffix(f"-{KIND}"): (s.to_dict() or {}).get("state") for s in db.get_all(refs) if s.exists}
    return {b: states.get(b) for b in ids}


def _flagged(booking: dict[str, Any], payments: dict[str, dict[str, Any]]) -> bool:
    """Its refund failed and a person is told: its payment has a note (GET /v1/attention)."""
    payment = payments.get(str(booking.get("paid_by")))
    return payment is not None and payment.get("attention") is not None and payment.get("needs_attention") is True


def _refused(booking: dict[str, Any], payments: dict[str, dict[str, Any]]) -> bool:
    payment = payments.get(str(booking.get("paid_by")))
    return _flagged(booking, payments) and "refused" in str((payment or {}).get("attention"))


def in_flight(
    event_id: str,
    event: dict[str, Any] | None,
    bookings: dict[str, dict[str, Any]],
    payments: dict[str, dict[str, Any]],
) -> list[str]:
    if not cancelled(event):
        return []
    left = [
        b
        for b in bookings.values()
        if b.get("status") == "pending_payment" or (b.get("status") == "confirmed" and not _refused(b, payments))
    ]
    return [f"cancellation of event {event_id} still has {len(left)} bookings to settle"] if left else []


def _told_required(booking: dict[str, Any]) -> bool:
    """The fan-out found it live (confirmed, or pending before its hold ran out): its buyer is told."""
    entry = next((h for h in reversed(booking.get("history") or ()) if isinstance(h, dict)), None)
    if entry is None or entry.get("reason") != REASON:
        return False
    if booking.get("status") == "refunded":
        return True
    at, expires_at = _at(entry.get("at")), _at(booking.get("expires_at"))
    return booking.get("status") == "cancelled" and at is not None and expires_at is not None and at < expires_at


def judge(
    event_id: str,
    event: dict[str, Any] | None,
    bookings: dict[str, dict[str, Any]],
    payments: dict[str, dict[str, Any]],
    tickets: dict[str, dict[str, Any]],
    intents: Iterable[Any],
    notices: dict[str, str | None],
) -> list[tuple[str, str, str]]:
    """(rule, subject, detail) of every violation in one event (none unless it is cancelled)."""
    if not cancelled(event):
        return []
    out: list[tuple[str, str, str]] = []
    for booking_id, b in sorted(bookings.items()):
        subject, status = f"booking/{booking_id}", b.get("status")
        if status == "pending_payment":
            out.append((RULE, subject, f"still pending after event {event_id} was cancelled"))
        elif status == "confirmed" and not _flagged(b, payments):
            out.append((RULE, subject, f"still confirmed after event {event_id} was cancelled, and nobody is told"))
        told = notices.get(booking_id)
        if (_told_required(b) or (status == "confirmed" and _refused(b, payments))) and told != "sent":
            out.append((RULE, subject, f"{status} by the cancellation; its buyer's notice is {told or 'not recorded'}"))
    for intent in intents:
        payment = payments.get(str(intent.payment_id)) or {}
        if intent.kept and intent.booking_id in bookings and payment.get("attention") is None:
            out.append((RULE, f"intent/{intent.id}", f"kept charge {intent.describe()} of a cancelled event"))
    for ticket_id, t in sorted(tickets.items()):
        owner = bookings.get(str(t.get("booking_id"))) or {}
        if t.get("status") != "revoked" and not (owner.get("status") == "confirmed" and _flagged(owner, payments)):
            out.append((RULE, f"ticket/{ticket_id}", f"{t.get('status')} ticket of a cancelled event"))
    return out
