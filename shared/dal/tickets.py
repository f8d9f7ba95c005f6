"""TicketDAL: the `tickets` collection, one document per admission (`<booking id>-<number>`).

A booking's tickets are read by id (no query); an event's by the `event_id` field. Issuing creates
the documents (a second issue of the same booking fails at the commit), revoking and checking in
change one document on the revision it was read at: of two gates that scan a ticket at the same
moment, one commit wins and the other reads it checked in.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from google.cloud.firestore_v1.base_query import FieldFilter
from google.cloud.firestore_v1.field_path import FieldPath

from shared.dal.base import Dal, as_utc, revision
from shared.dal.records import Revision, UnitOfWork
from shared.ticket_models import Ticket


class TicketDAL(Dal):
    collection = "tickets"

    def get(self, ticket_id: str) -> tuple[Ticket, Revision] | None:
        snap = self.ref(ticket_id).get()
        return (_from_doc(snap.to_dict() or {}), revision(snap)) if snap.exists else None

    def get_many(self, ticket_ids: list[str]) -> dict[str, tuple[Ticket, Revision]]:
        if not ticket_ids:
            return {}
        snaps = self.client.get_all([self.ref(t) for t in ticket_ids])
        return {s.id: (_from_doc(s.to_dict() or {}), revision(s)) for s in snaps if s.exists}

    def of_booking(self, booking_id: str, quantity: int) -> list[tuple[Ticket, Revision]]:
        """The booking's tickets that exist, by number (all or none: they are issued together)."""
        refs = [self.ref(Ticket.id_of(booking_id, n)) for n in range(1, quantity + 1)]
        found = [(_from_doc(s.to_dict() or {}), revision(s)) for s in self.client.get_all(refs) if s.exists]
        return sorted(found, key=lambda pair: pair[0].number)

    def revoked_of_event(self, event_id: str) -> list[str]:
        query = (
            self.client.collection(self.collection)
            .where(filter=FieldFilter("event_id", "==", event_id))
            .where(filter=FieldFilter("status", "==", "revoked"))
        )
        return sorted(s.id for s in query.select([]).stream())

    def page_of_event(self, event_id: str, limit: int, after: str | None) -> tuple[list[Ticket], str | None]:
        """An event's tickets in id order (a booking's together, by number), and the next cursor."""
        query = (
            self.client.collection(self.collection)
            .where(filter=FieldFilter("event_id", "==", event_id))
            .order_by(FieldPath.document_id())
        )
        if after:
            query = query.start_after({FieldPath.document_id(): self.ref(after)})
        found = [_from_doc(s.to_dict() or {}) for s in query.limit(limit + 1).stream()]
        more = len(found) > limit
        found = found[:limit]
        return found, found[-1].id if more and found else None

    # ---- writes staged into a unit of work -----------------------------------------------------

    def stage_issue(self, uow: UnitOfWork, ticket: Ticket) -> None:
        uow.create(self.path(ticket.id), _to_doc(ticket))

    def stage_update(self, uow: UnitOfWork, ticket: Ticket, since: Revision) -> None:
        uow.update(self.path(ticket.id), _to_doc(ticket), since=since)


def _to_doc(ticket: Ticket) -> dict[str, Any]:
    return asdict(ticket)


def _from_doc(doc: dict[str, Any]) -> Ticket:
    fields = {k: v for k, v in doc.items() if k in Ticket.__dataclass_fields__}
    times: dict[str, datetime] = {k: as_utc(doc[k]) for k in ("issued_at", "updated_at") if k in doc}
    optional: dict[str, datetime | None] = {}
    for k in ("checked_in_at", "revoked_at"):
        optional[k] = as_utc(doc[k]) if doc.get(k) is not None else None
    values: dict[str, Any] = {**fields, **times, **optional}
    return Ticket(**values)
