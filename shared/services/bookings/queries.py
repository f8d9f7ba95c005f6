"""Buyers read their bookings; an event's admins read the event's bookings."""

from __future__ import annotations

from shared.core.errors import Forbidden, NotFound
from shared.models import Booking, utcnow
from shared.schemas import BookingOut, Page
from shared.services.bookings.ports import BookingStore, EventReader
from shared.services.identity import Principal
from shared.services.paging import decode_token, encode_token, fingerprint


class BookingQueries:
    def __init__(self, bookings: BookingStore, events: EventReader) -> None:
        self.bookings = bookings
        self.events = events

    def get(self, principal: Principal, booking_id: str) -> Booking:
        found = self.bookings.get(booking_id)
        if found is None:
            raise NotFound("booking not found")
        booking = found[0]
        if booking.user_id != principal.user_id and not principal.manages(booking.company_id):
            raise NotFound("booking not found")
        return booking

    def mine(self, principal: Principal, limit: int, page_token: str | None) -> Page[BookingOut]:
        return self._page("user_id", principal.user_id, limit, page_token)

    def of_event(self, principal: Principal, event_id: str, limit: int, page_token: str | None) -> Page[BookingOut]:
        event = self.events.get(event_id)
        if event is None or not (event.is_published or principal.manages(event.company_id)):
            raise NotFound("event not found")
        if not principal.manages(event.company_id):
            raise Forbidden("only the event's company admins see its bookings")
        return self._page("event_id", event_id, limit, page_token)

    def _page(self, field_name: str, value: str, limit: int, page_token: str | None) -> Page[BookingOut]:
        query_fingerprint = fingerprint({"by": field_name, "value": value})
        after = decode_token(page_token, query_fingerprint) if page_token else None
        found, cursor = self.bookings.page(field_name, value, limit, after)
        now = utcnow()
        return Page[BookingOut](
            items=[BookingOut.of(b, now) for b in found],
            next_page_token=encode_token(cursor, query_fingerprint) if cursor else None,
        )
