"""Issuing and revoking a booking's tickets, staged into the commit that confirms or refunds it.

Whatever confirms a booking (the finaliser, for a payment on time or late) stages its tickets in
the same commit, so a confirmed booking always has them and a booking confirmed once has them
once; a refund revokes them in its own commit.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from shared.core.ticket_codes import TicketCodes
from shared.dal.records import Revision, UnitOfWork
from shared.domain_events import Actor, change
from shared.models import Booking
from shared.ticket_models import Ticket


class TicketStore(Protocol):
    def of_booking(self, booking_id: str, quantity: int) -> list[tuple[Ticket, Revision]]: ...
    def stage_issue(self, uow: UnitOfWork, ticket: Ticket) -> None: ...
    def stage_update(self, uow: UnitOfWork, ticket: Ticket, since: Revision) -> None: ...


class TicketIssuer:
    def __init__(self, tickets: TicketStore, codes: TicketCodes) -> None:
        self.tickets = tickets
        self.codes = codes

    def stage_issue(self, uow: UnitOfWork, booking: Booking, actor: Actor, now: datetime) -> None:
        for number in range(1, booking.quantity + 1):
            ticket_id = Ticket.id_of(booking.id, number)
            ticket = Ticket(
                id=ticket_id,
                booking_id=booking.id,
                event_id=booking.event_id,
                company_id=booking.company_id,
                user_id=booking.user_id,
                number=number,
                code=self.codes.sign(ticket_id, booking.event_id, number),
                status="valid",
                issued_at=now,
                updated_at=now,
            )
            self.tickets.stage_issue(uow, ticket)
            uow.record(change("issued", ticket, actor, now))

    def stage_revoke(self, uow: UnitOfWork, booking: Booking, actor: Actor, now: datetime) -> None:
        """Every ticket of the booking not revoked yet, on the revision read here (a check-in at
        the same moment makes the commit fail and the caller read again)."""
        for ticket, read_at in self.tickets.of_booking(booking.id, booking.quantity):
            if ticket.status != "revoked":
                revoked = ticket.changed(now, status="revoked", revoked_at=now)
                self.tickets.stage_update(uow, revoked, since=read_at)
                uow.record(change("revoked", revoked, actor, now, before=ticket))
