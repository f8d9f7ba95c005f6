"""An event's attendees: its tickets with their buyers, for the organiser (JSON pages or one CSV)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from shared.models import User
from shared.services.identity import Principal
from shared.services.paging import decode_after, encode_after, fingerprint
from shared.services.tickets.gates import Gates
from shared.ticket_models import Ticket

FIELDS = ("ticket_id", "booking_id", "number", "name", "email", "status", "checked_in_at")
FREE_TEXT = {"name", "email"}  # what a person typed; ids are ours and stay exactly as the API shows them
CSV_PAGE = 500
_FORMULA = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet would run as a formula


@dataclass(frozen=True)
class Attendee:
    ticket_id: str
    booking_id: str
    number: int
    name: str
    email: str
    status: str
    checked_in_at: datetime | None


class TicketPages(Protocol):
    def page_of_event(self, event_id: str, limit: int, after: str | None) -> tuple[list[Ticket], str | None]: ...


class Users(Protocol):
    def get_many(self, user_ids: list[str]) -> dict[str, User]: ...


class Attendees:
    def __init__(self, tickets: TicketPages, users: Users, gates: Gates) -> None:
        self.tickets = tickets
        self.users = users
        self.gates = gates

    def page(
        self, principal: Principal, event_id: str, limit: int, page_token: str | None
    ) -> tuple[list[Attendee], str | None]:
        self.gates.managed_event(principal, event_id)
        query = fingerprint({"attendees": event_id})
        after = decode_after(page_token, query) if page_token else None
        found, cursor = self._page(event_id, limit, after)
        return found, encode_after(cursor, query) if cursor else None

    def csv(self, principal: Principal, event_id: str) -> str:
        """Every attendee as CSV: a header row, CRLF rows, fields quoted where needed (the `excel`
        dialect, which LibreOffice reads too), a BOM so spreadsheets read UTF-8, and a name or
        e-mail that a spreadsheet would take for a formula prefixed with an apostrophe."""
        self.gates.managed_event(principal, event_id)
        out = io.StringIO()
        out.write("\ufeff")
        writer = csv.writer(out, dialect="excel")
        writer.writerow(FIELDS)
        for attendee in self._all(event_id):
            writer.writerow([_cell(getattr(attendee, name), free_text=name in FREE_TEXT) for name in FIELDS])
        return out.getvalue()

    def _all(self, event_id: str) -> Iterator[Attendee]:
        cursor: str | None = None
        while True:
            found, cursor = self._page(event_id, CSV_PAGE, cursor)
            yield from found
            if cursor is None:
                return

    def _page(self, event_id: str, limit: int, after: str | None) -> tuple[list[Attendee], str | None]:
        tickets, cursor = self.tickets.page_of_event(event_id, limit, after)
        users = self.users.get_many(sorted({t.user_id for t in tickets}))
        return [_attendee(t, users.get(t.user_id)) for t in tickets], cursor


def _attendee(ticket: Ticket, user: User | None) -> Attendee:
    return Attendee(
        ticket_id=ticket.id,
        booking_id=ticket.booking_id,
        number=ticket.number,
        name=user.name if user else "",
        email=user.email if user else "",
        status=ticket.status,
        checked_in_at=ticket.checked_in_at,
    )


def _cell(value: object, free_text: bool) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    text = str(value)
    return "'" + text if free_text and text.startswith(_FORMULA) else text
