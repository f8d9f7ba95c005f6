"""Buyers join and leave an event's waitlist; buyers and organisers read it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from shared.core.errors import (
    AlreadyWaiting,
    EventCancelled,
    Forbidden,
    InvalidState,
    NotFound,
    TicketsAvailable,
    Unavailable,
    ValidationFailed,
)
from shared.dal.records import ConcurrentUpdate, DocumentExists, Revision, UnitOfWork
from shared.domain_events import Actor, change
from shared.models import Event, new_id, utcnow
from shared.schemas import ListQuery, Page, WaitlistEntryOut
from shared.services.identity import Principal
from shared.services.paging import decode_token, encode_token
from shared.services.retry import backoff
from shared.services.waitlist.line import WaitingLine
from shared.waitlist_models import WaitlistEntry

MAX_ATTEMPTS = 8


class EntryStore(Protocol):
    def get(self, entry_id: str) -> tuple[WaitlistEntry, Revision] | None: ...
    def waiting(self, event_id: str) -> int: ...
    def is_member(self, event_id: str, user_id: str) -> bool: ...
    def page(
        self, field_name: str, value: str, limit: int, after: tuple[datetime, str] | None, newest_first: bool
    ) -> tuple[list[WaitlistEntry], tuple[datetime, str] | None]: ...
    def stage_join(self, uow: UnitOfWork, entry: WaitlistEntry) -> None: ...
    def stage_update(self, uow: UnitOfWork, before: WaitlistEntry, after: WaitlistEntry, since: Revision) -> None: ...


class EventReader(Protocol):
    def get(self, event_id: str) -> Event | None: ...


class Inventory(Protocol):
    def taken(self, event_id: str, now: datetime) -> int: ...


class Waitlist:
    def __init__(
        self,
        entries: EntryStore,
        events: EventReader,
        inventory: Inventory,
        line: WaitingLine,
        serve_soon: Callable[[str], None],
        new_uow: Callable[[], UnitOfWork],
    ) -> None:
        self.entries = entries
        self.events = events
        self.inventory = inventory
        self.line = line
        self.serve_soon = serve_soon  # asks the line server to offer what is free (a Cloud Task)
        self.new_uow = new_uow

    def join(self, principal: Principal, subject: str, event_id: str, quantity: int) -> WaitlistEntry:
        """Only while the quantity cannot be booked now: fewer tickets are free, or others wait
        already (then the free tickets are theirs)."""
        event = self.events.get(event_id)
        if event is None or event.status not in ("published", "cancelled"):
            raise NotFound("event not found")
        _refuse_if_cancelled(event)
        now = utcnow()
        if event.has_started(now):
            raise InvalidState("the event has started; its waitlist is closed")
        if quantity > event.max_tickets_per_booking:
            message = f"must be at most {event.max_tickets_per_booking}"
            raise ValidationFailed(
                f"at most {event.max_tickets_per_booking} tickets", [{"field": "quantity", "message": message}]
            )
        if self.entries.is_member(event_id, principal.user_id):  # the more specific answer comes first
            raise AlreadyWaiting("you already have a waiting or offered entry for this event")
        if self.entries.waiting(event_id) == 0:
            free = event.capacity - self.inventory.taken(event_id, now)
            if free >= quantity:
                raise TicketsAvailable(f"{free} ticket(s) can be booked now")
        entry = WaitlistEntry(
            id=new_id(),
            event_id=event.id,
            company_id=event.company_id,
            user_id=principal.user_id,
            buyer_subject=subject,
            quantity=quantity,
            status="waiting",
            created_at=now,
            updated_at=now,
        )
        uow = self.new_uow()
        self.entries.stage_join(uow, entry)
        uow.record(change("joined", entry, Actor.user(principal.user_id), now))
        try:
            uow.commit()
        except DocumentExists:
            raise AlreadyWaiting("you already have a waiting or offered entry for this event") from None
        self.line.forget(event_id)
        self.serve_soon(event_id)  # tickets freed while it joined are offered at once
        return entry

    def leave(self, principal: Principal, entry_id: str) -> WaitlistEntry:
        for attempt in range(MAX_ATTEMPTS):
            found = self.entries.get(entry_id)
            if found is None or found[0].user_id != principal.user_id:
                raise NotFound("waitlist entry not found")
            entry, read_at = found
            if entry.status != "waiting":
                raise InvalidState(f"an entry that is {entry.status} cannot be left")
            now = utcnow()
            left = entry.moved_to("left", now)
            uow = self.new_uow()
            self.entries.stage_update(uow, entry, left, since=read_at)
            uow.record(change("left", left, Actor.user(principal.user_id), now, before=entry))
            try:
                uow.commit()
            except ConcurrentUpdate:
                backoff(attempt)
                continue
            self.line.forget(entry.event_id)
            self.serve_soon(entry.event_id)  # the next in line may fit now
            return left
        raise Unavailable("the entry is changing; retry", retry_after=1)

    def mine(self, principal: Principal, query: ListQuery) -> Page[WaitlistEntryOut]:
        return self._page("user_id", principal.user_id, query, newest_first=True)

    def of_event(self, principal: Principal, event_id: str, query: ListQuery) -> Page[WaitlistEntryOut]:
        event = self.events.get(event_id)
        if event is None or not (event.is_published or principal.manages(event.company_id)):
            raise NotFound("event not found")
        if not principal.manages(event.company_id):
            raise Forbidden("only the event's company admins see its waitlist")
        return self._page("event_id", event_id, query, newest_first=False)

    def _page(self, field_name: str, value: str, query: ListQuery, newest_first: bool) -> Page[WaitlistEntryOut]:
        scope = f"waitlist:{field_name}:{value}"
        after = decode_token(query.page_token, scope) if query.page_token else None
        found, cursor = self.entries.page(field_name, value, query.limit, after, newest_first)
        token = encode_token(cursor, scope) if cursor else None
        return Page[WaitlistEntryOut](items=[WaitlistEntryOut.of(e) for e in found], next_page_token=token)


def _refuse_if_cancelled(event: Event) -> None:
    if event.status == "cancelled":
        raise EventCancelled("the event was cancelled")
