"""The line server: freed tickets are offered to waiting entries, in the order they joined.

Run by a Cloud Task right after anything frees tickets (an expiry, a cancel, a refund, a capacity
raise, a buyer leaving the line) and by the every-minute sweep for what a lost task missed. It
reads the head of the line and offers each entry, in order, a booking of its quantity at the price
of that moment, claiming the ticket slots exactly as a hold does and moving the entry to `offered`
on the update time it was read with. Up to BATCH offers go in one commit: the prefix of the line
that the free tickets cover, so offers follow the line even when several servers run at once (a
server that loses the race reads the line again). The head blocks the line: when its quantity is
not free, nobody behind it is served (first come, first served). The offer's email goes out from
the stream: `waitlist_entry.offered` is relayed to the notifier.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol

from shared.dal.records import BuyerHolds, Claim, ConcurrentUpdate, DocumentExists, HoldPlan, Revision, UnitOfWork
from shared.domain_events import BOOKING_CONFIRMED, Actor, change
from shared.models import Booking, Event, new_id, utcnow
from shared.services.bookings.ports import Inventory
from shared.services.counting import TakenCounter
from shared.services.retry import backoff
from shared.services.slots import NoFreeSlots, SlotPicker
from shared.tasks import ExpiryScheduler
from shared.waitlist_models import WaitlistEntry

log = logging.getLogger("waitlist")
WAITLIST = Actor.system("waitlist")
BATCH = 25  # offers per commit (each a handful of writes; Firestore takes 500)
MAX_ROUNDS = 100  # commits and lost races per run; the next run goes on

Picks = list[tuple[int, Claim | None]]


class LineStore(Protocol):
    def line(self, event_id: str, limit: int) -> list[tuple[WaitlistEntry, Revision]]: ...
    def events_with_waiters(self, limit: int) -> list[str]: ...
    def stage_update(self, uow: UnitOfWork, before: WaitlistEntry, after: WaitlistEntry, since: Revision) -> None: ...


class EventReader(Protocol):
    def get(self, event_id: str) -> Event | None: ...


class Buyers(Protocol):
    def buyer_holds_of(self, event_id: str, user_ids: list[str]) -> dict[str, BuyerHolds]: ...


class HoldStager(Protocol):
    def stage_hold(self, uow: UnitOfWork, plan: HoldPlan, actor: Actor) -> None: ...


class UnitOfWorkFactory(Protocol):
    def __call__(self) -> UnitOfWork: ...


class LineServer:
    def __init__(
        self,
        entries: LineStore,
        events: EventReader,
        bookings: Buyers,
        inventory: Inventory,
        picker: SlotPicker,
        counter: TakenCounter,
        holds: HoldStager,
        expiry: ExpiryScheduler,
        offer_ttl: timedelta,
        new_uow: UnitOfWorkFactory,
        close: Callable[[Event], int],
    ) -> None:
        self.entries = entries
        self.events = events
        self.bookings = bookings
        self.inventory = inventory
        self.picker = picker
        self.counter = counter
        self.holds = holds
        self.expiry = expiry
        self.offer_ttl = offer_ttl
        self.new_uow = new_uow
        self.close = close  # ends the line of an event that has started (closing.py)

    def serve(self, event_id: str) -> int:
        """Offer free tickets to the line, in order, until they or the line run out; returns the
        number of offers made."""
        offers = 0
        for attempt in range(MAX_ROUNDS):
            event = self.events.get(event_id)
            if event is None or not event.is_published or event.has_started(utcnow()):
                return offers
            heads = self.entries.line(event_id, BATCH)
            made = self._offer(event, heads, reread=attempt > 0) if heads else 0
            if made == 0:
                return offers
            if made > 0:
                offers += made
            else:
                backoff(attempt)
        return offers

    def sweep(self, limit: int) -> int:
        """Serve every line a lost task left waiting; close the lines of events that have started
        (nobody can be offered a ticket any more). Returns the offers made."""
        offers = 0
        for event_id in self.entries.events_with_waiters(limit):
            event = self.events.get(event_id)
            if event is not None and event.is_published and event.has_started(utcnow()):
                self.close(event)
            else:
                offers += self.serve(event_id)
        return offers

    def _offer(self, event: Event, heads: list[tuple[WaitlistEntry, Revision]], reread: bool) -> int:
        """Offers made to the head of the line in one commit; 0: its head's quantity is not free;
        -1: another server (or a hold) got there first."""
        now = utcnow()
        reserved: list[tuple[WaitlistEntry, Revision, Picks]] = []
        for entry, read_at in heads:
            try:
                first = not reserved
                picks = self.picker.pick(event.id, event.capacity, entry.quantity, now, fresh=first and not reread)
            except NoFreeSlots:
                break  # the line waits behind this entry
            reserved.append((entry, read_at, picks))
        if not reserved:
            return 0
        price = event.unit_price(self.inventory.taken(event.id, now))
        buyers = self.bookings.buyer_holds_of(event.id, [entry.user_id for entry, _, _ in reserved])
        uow = self.new_uow()
        bookings = [
            self._stage(uow, event, entry, read_at, picks, price, now, buyers[entry.user_id])
            for entry, read_at, picks in reserved
        ]
        every_pick = [p for _, _, picks in reserved for p in picks]
        try:
            uow.commit()
        except (DocumentExists, ConcurrentUpdate):
            self.picker.done(event.id, every_pick, claimed=False)
            self.picker.collided(event.id, every_pick, now)
            return -1
        except Exception:
            self.picker.done(event.id, every_pick, claimed=False)
            self.counter.forget(event.id)
            raise
        self.picker.done(event.id, every_pick, claimed=True)
        self.counter.add(event.id, sum(b.quantity for b in bookings))
        for booking in bookings:
            if booking.status == "pending_payment":
                self.expiry.schedule_expiry(booking.id, booking.expires_at)
        log.info("waitlist of event %s: %d offer(s)", event.id, len(bookings))
        return len(bookings)

    def _stage(
        self,
        uow: UnitOfWork,
        event: Event,
        entry: WaitlistEntry,
        read_at: Revision,
        picks: Picks,
        price: int,
        now: datetime,
        buyer: BuyerHolds,
    ) -> Booking:
        booking = Booking(
            id=new_id(),
            event_id=event.id,
            company_id=event.company_id,
            user_id=entry.user_id,
            buyer_subject=entry.buyer_subject,
            quantity=entry.quantity,
            unit_price=price,
            total_cost=price * entry.quantity,
            currency=event.currency,
            status="pending_payment",
            booking_time=now,
            expires_at=now + self.offer_ttl,
            updated_at=now,
            history=({"status": "pending_payment", "at": now.isoformat(), "reason": "offered from the waitlist"},),
            waitlist_entry_id=entry.id,
        )
        if booking.total_cost == 0:  # a free event: nothing to pay, confirmed at once with its tickets
            booking = booking.moved_to("confirmed", now, "offered from the waitlist; nothing to pay")
        self.holds.stage_hold(uow, HoldPlan(booking, picks, buyer), WAITLIST)
        offered = entry.moved_to(
            "offered" if booking.status == "pending_payment" else "fulfilled",
            now,
            booking_id=booking.id,
            offer_expires_at=booking.expires_at,
            offered_at=now,
        )
        self.entries.stage_update(uow, entry, offered, since=read_at)
        uow.record(change("offered", offered, WAITLIST, now, before=entry, topics=(BOOKING_CONFIRMED,)))
        return booking
