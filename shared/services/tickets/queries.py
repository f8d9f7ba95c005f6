"""Who may read which tickets: a booking's buyer and the event's admins."""

from __future__ import annotations

from typing import Protocol

from shared.core.errors import NotFound
from shared.dal.records import Revision
from shared.models import Booking
from shared.services.identity import Principal
from shared.ticket_models import Ticket


class BookingAccess(Protocol):
    def get(self, principal: Principal, booking_id: str) -> Booking: ...


class TicketReader(Protocol):
    def get(self, ticket_id: str) -> tuple[Ticket, Revision] | None: ...
    def of_booking(self, booking_id: str, quantity: int) -> list[tuple[Ticket, Revision]]: ...


class TicketQueries:
    def __init__(self, tickets: TicketReader, bookings: BookingAccess) -> None:
        self.tickets = tickets
        self.bookings = bookings

    def of_booking(self, principal: Principal, booking_id: str) -> list[Ticket]:
        """The booking's tickets (none until it is confirmed); NotFound for anyone else's."""
        booking = self.bookings.get(principal, booking_id)
        return [t for t, _ in self.tickets.of_booking(booking.id, booking.quantity)]

    def get(self, principal: Principal, ticket_id: str) -> Ticket:
        found = self.tickets.get(ticket_id)
        if found is None or not (found[0].user_id == principal.user_id or principal.manages(found[0].company_id)):
            raise NotFound("ticket not found")
        return found[0]
