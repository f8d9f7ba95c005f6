"""Tell a buyer that the event of their booking was cancelled: one e-mail per booking, however often
the fan-out passes it (a notification record per booking and kind, as for confirmations)."""

from __future__ import annotations

from typing import Protocol

from shared.models import Booking, Event, User
from shared.notify import EmailSender
from shared.services.mail_once import SentLog, send_once

KIND = "event_cancelled"


class Users(Protocol):
    def get(self, user_id: str) -> User | None: ...


class CancellationNotice:
    def __init__(self, users: Users, sent: SentLog, sender: EmailSender) -> None:
        self.users = users
        self.sent = sent
        self.sender = sender

    def tell(self, booking: Booking, event: Event) -> bool:
        """True once the buyer is told (now, or by an earlier pass); False when the mail could not
        go out (the record is released: a later pass tries again)."""
        user = self.users.get(booking.user_id)
        if user is None:
            return True
        message = body(user, event, booking)
        return send_once(self.sent, self.sender, booking.id, KIND, user.email, f"Cancelled: {event.name}", message)


def body(user: User, event: Event, booking: Booking) -> str:
    local = f"{event.event_date.isoformat()} {event.event_time.strftime('%H:%M')} ({event.timezone})"
    amount = f"{booking.total_cost / 100:.2f} {booking.currency}"
    lines = [
        f"Hello {user.name},",
        "",
        f"we are sorry: {event.name} at {event.venue} on {local} has been cancelled by its organiser.",
        f"Their reason: {event.cancellation_reason or 'none given'}",
        "",
        f"Your booking {booking.id} ({booking.quantity} ticket(s)) is cancelled and its tickets are no longer valid.",
        f"If you paid for it, the full amount ({amount}) goes back to the card you paid with; your bank",
        "usually shows it within 5 to 10 days. If it has not arrived by then, reply to this message.",
    ]
    return "\n".join(lines)
