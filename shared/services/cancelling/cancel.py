"""The organiser cancels an event: one compare-and-set on the event, answered at once (202).

The event's bookings are settled in the background (fanout.py). What the answer and every later
read of the event show is counted at read time over its bookings and payments (CancellationDAL).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Protocol

from shared.core.errors import Forbidden, InvalidState, NotFound, VersionConflict
from shared.dal.cancellations import CancellationCounts
from shared.dal.records import ConcurrentUpdate, Revision, UnitOfWork
from shared.domain_events import Actor, change
from shared.models import Event, utcnow
from shared.schemas.cancel import CancellationOut
from shared.services.events import EventView, _expected_version
from shared.services.identity import Principal
from shared.services.payments.refunding import REFUND_REFUSED


class EventStore(Protocol):
    def get(self, event_id: str) -> Event | None: ...
    def get_for_update(self, event_id: str) -> tuple[Event, Revision] | None: ...
    def stage_update(self, uow: UnitOfWork, event: Event, since: Revision) -> None: ...


class Inventory(Protocol):
    def taken(self, event_id: str, now: datetime) -> int: ...


class Progress(Protocol):
    def counts(self, event_id: str, cancelled_at: datetime, refused_note: str) -> CancellationCounts: ...
    def stage_open(self, uow: UnitOfWork, event_id: str, at: datetime) -> None: ...


# Asks for the first batch of the fan-out: (event id, run, cursor).
Schedule = Callable[[str, str, str | None], object]


class EventCancelling:
    def __init__(
        self,
        events: EventStore,
        inventory: Inventory,
        progress: Progress,
        new_uow: Callable[[], UnitOfWork],
        schedule: Schedule,
        changed: Callable[[str], None] = lambda event_id: None,
    ) -> None:
        self.events = events
        self.inventory = inventory
        self.progress = progress
        self.new_uow = new_uow
        self.schedule = schedule
        self.changed = changed  # told after an event is saved (caches of this process)

    def cancel(self, principal: Principal, event_id: str, reason: str, if_match: str | None) -> EventView:
        """Cancel the event if the caller's If-Match is current. Repeating it on a cancelled event
        answers as the first call did, whatever the If-Match (a retry after a lost answer carries
        the version it read before)."""
        found = self.events.get_for_update(event_id)
        if found is None or not (found[0].is_public or principal.manages(found[0].company_id)):
            raise NotFound("event not found")
        current, read_at = found
        if not principal.manages(current.company_id):
            raise Forbidden("only the owning company's admins cancel an event")
        if current.is_cancelled:
            return self.view(current)
        if current.status == "draft":
            raise InvalidState("a draft was never on sale: change it or leave it unpublished")
        expected = _expected_version(if_match, None)
        if current.version != expected:
            raise VersionConflict(f"current version is {current.version}")
        now = utcnow()
        cancelled = current.revised(now, status="cancelled", cancellation_reason=reason, cancelled_at=now)
        uow = self.new_uow()
        self.events.stage_update(uow, cancelled, since=read_at)
        self.progress.stage_open(uow, event_id, now)  # the sweep's list of cancellations to finish
        uow.record(change("cancelled", cancelled, Actor.user(principal.user_id), now, before=current))
        try:
            uow.commit()
        except ConcurrentUpdate:
            latest = self.events.get(event_id)
            if latest is not None and latest.is_cancelled:  # a concurrent cancel won: the same answer
                return self.view(latest)
            raise VersionConflict(f"current version is {latest.version if latest else expected + 1}") from None
        finally:
            self.changed(event_id)  # committed or not (an answer lost): this process reads it again
        view = self.view(cancelled)  # counted before the fan-out starts: every confirmed booking is pending
        self.schedule(event_id, f"v{cancelled.version}", None)
        return view

    def view(self, event: Event) -> EventView:
        return EventView(event, self.inventory.taken(event.id, utcnow()), cancellation=self.progress_of(event))

    def with_progress(self, view: EventView) -> EventView:
        """A read of an event, with the cancellation's progress when it was cancelled."""
        return replace(view, cancellation=self.progress_of(view.event)) if view.event.is_cancelled else view

    def progress_of(self, event: Event) -> CancellationOut | None:
        if not event.is_cancelled:
            return None
        cancelled_at = event.cancelled_at or event.updated_at
        counts = self.progress.counts(event.id, cancelled_at, REFUND_REFUSED)
        return CancellationOut(
            reason=event.cancellation_reason or "",
            cancelled_at=cancelled_at,
            refunds_pending=counts.refunds_pending,
            refunds_done=counts.refunded,
            refunds_failed=counts.refused,
        )
