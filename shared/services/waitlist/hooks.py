"""What an offered booking's end does to its waitlist entry, staged into the booking's own commit,
and the nudge to the line server when tickets come free."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from shared.dal.records import Revision, UnitOfWork
from shared.domain_events import Actor, change
from shared.models import Booking
from shared.waitlist_models import WaitlistEntry, WaitlistStatus


class EntryStore(Protocol):
    def get(self, entry_id: str) -> tuple[WaitlistEntry, Revision] | None: ...
    def stage_update(self, uow: UnitOfWork, before: WaitlistEntry, after: WaitlistEntry, since: Revision) -> None: ...


class WaitlistHooks:
    def __init__(self, entries: EntryStore, serve_soon: Callable[[str], None]) -> None:
        self.entries = entries
        self.serve_soon = serve_soon

    def stage_booking_ended(self, uow: UnitOfWork, booking: Booking, ended: str, actor: Actor, now: datetime) -> None:
        """An offered booking ended: its entry has `left` when its buyer cancelled it, and is
        `expired` when it ran out or its event was cancelled."""
        status: WaitlistStatus = "left" if ended == "cancelled" and actor.type == "user" else "expired"
        self._move(uow, booking, ("offered",), status, actor, now)

    def stage_fulfilled(self, uow: UnitOfWork, booking: Booking, actor: Actor, now: datetime) -> None:
        """An offered booking was paid (on time, or late after it expired): its entry is fulfilled."""
        self._move(uow, booking, ("offered", "expired"), "fulfilled", actor, now)

    def stage_extended(self, uow: UnitOfWork, booking: Booking, actor: Actor, now: datetime) -> None:
        """An offered booking's hold was extended (its payment is processing): the offer's
        `offer_expires_at` stays the booking's `expires_at`."""
        found = self._offered_entry(booking, ("offered",))
        if found is None:
            return
        entry, read_at = found
        after = entry.moved_to("offered", now, offer_expires_at=booking.expires_at)
        self.entries.stage_update(uow, entry, after, since=read_at)
        uow.record(change("extended", after, actor, now, before=entry))

    def freed(self, event_id: str) -> None:
        """Tickets of the event came free: the line goes first."""
        self.serve_soon(event_id)

    def _move(
        self,
        uow: UnitOfWork,
        booking: Booking,
        from_: tuple[WaitlistStatus, ...],
        to: WaitlistStatus,
        actor: Actor,
        now: datetime,
    ) -> None:
        found = self._offered_entry(booking, from_)
        if found is None:
            return
        entry, read_at = found
        after = entry.moved_to(to, now)
        self.entries.stage_update(uow, entry, after, since=read_at)
        uow.record(change(to, after, actor, now, before=entry))

    def _offered_entry(
        self, booking: Booking, statuses: tuple[WaitlistStatus, ...]
    ) -> tuple[WaitlistEntry, Revision] | None:
        """The waitlist entry that `booking` was offered to, if it is in one of `statuses`."""
        if booking.waitlist_entry_id is None:
            return None
        found = self.entries.get(booking.waitlist_entry_id)
        if found is None or found[0].booking_id != booking.id or found[0].status not in statuses:
            return None
        return found
