"""Tell the buyer their booking is confirmed, or that the waitlist offers them tickets: one email per
booking and kind, however often the news comes."""

from __future__ import annotations

import logging
from typing import Any, Protocol

from shared.dal.records import Revision
from shared.models import Booking, Event, User
from shared.notify import Attachment, EmailSender
from shared.services.tickets import qr
from shared.ticket_models import Ticket

log = logging.getLogger("notifications")


class Bookings(Protocol):
    def get(self, booking_id: str) -> tuple[Booking, Any] | None: ...


class Users(Protocol):
    def get(self, user_id: str) -> User | None: ...


class Events(Protocol):
    def get(self, event_id: str) -> Event | None: ...


class Tickets(Protocol):
    def of_booking(self, booking_id: str, quantity: int) -> list[tuple[Ticket, Revision]]: ...


class SentLog(Protocol):
    def claim(self, booking_id: str, kind: str) -> bool: ...
    def mark_sent(self, booking_id: str, kind: str) -> None: ...
    def release(self, booking_id: str, kind: str) -> None: ...


class ConfirmationNotifier:
    def __init__(
        self, bookings: Bookings, users: Users, events: Events, tickets: Tickets, sent: SentLog, sender: EmailSender
    ) -> None:
        self.bookings = bookings
        self.tickets = tickets
        self.users = users
        self.events = events
        self.sent = sent
        self.sender = sender

    def booking_confirmed(self, booking_id: str) -> str:
        found = self.bookings.get(booking_id)
        if found is None or found[0].status != "confirmed":
            return "ignored"
        booking = found[0]
        user = self.users.get(booking.user_id)
        event = self.events.get(booking.event_id)
        if user is None or event is None:
            return "ignored"
        if not self.sent.claim(booking.id, "confirmation"):
            return "already sent"
        try:
            # One QR image per ticket: the tickets were issued in the commit that confirmed it.
            attachments: list[Attachment] = [
                (f"ticket-{t.number}-of-{booking.quantity}.png", "image/png", qr.png(t.code))
                for t, _ in self.tickets.of_booking(booking.id, booking.quantity)
            ]
            subject = f"Your tickets for {event.name}"
            self.sender.send(user.email, subject, _body(user, event, booking), attachments)
        except Exception:
            self.sent.release(booking.id, "confirmation")  # let the redelivery try again
            raise
        self.sent.mark_sent(booking.id, "confirmation")
        log.info("confirmation sent for booking %s", booking.id)
        return "sent"

    def offer_made(self, booking_id: str) -> str:
        """The waitlist offered this booking: tell its buyer how long they have to pay."""
        found = self.bookings.get(booking_id)
        if found is None or found[0].waitlist_entry_id is None:
            return "ignored"
        booking = found[0]
        user, event = self.users.get(booking.user_id), self.events.get(booking.event_id)
        if user is None or event is None:
            return "ignored"
        if not self.sent.claim(booking.id, "offer"):
            return "already sent"
        until = booking.expires_at.isoformat(timespec="minutes").replace("+00:00", " UTC")
        body = "\n".join(
            [
                f"Hello {user.name},",
                "",
                f"tickets came free for {event.name}, and you were next on the waitlist:",
                f"booking {booking.id} holds {booking.quantity} ticket(s) for you until {until}.",
                f"Pay {booking.total_cost / 100:.2f} {booking.currency} before then to keep them.",
            ]
        )
        try:
            self.sender.send(user.email, f"Tickets for {event.name} are yours to take", body)
        except Exception:
            self.sent.release(booking.id, "offer")
            raise
        self.sent.mark_sent(booking.id, "offer")
        return "sent"


def _body(user: User, event: Event, booking: Booking) -> str:
    local = f"{event.event_date.isoformat()} {event.event_time.strftime('%H:%M')} ({event.timezone})"
    amount = f"{booking.total_cost / 100:.2f} {booking.currency}"
    lines: list[Any] = [
        f"Hello {user.name},",
        "",
        f"your booking {booking.id} is confirmed: {booking.quantity} ticket(s) for {event.name},",
        f"{event.venue}, {local}. Paid: {amount}.",
        "",
        "Your tickets are attached, one QR code each: show them at the door.",
        "",
        "See you there!",
    ]
    return "\n".join(str(line) for line in lines)
