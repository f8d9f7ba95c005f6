"""Buyers hold tickets.

A hold is one atomic commit (slot claims, booking, buyer's pending holds, idempotency record and
the `booking.held` domain event), retried on a collision with other slots. Expiry is scheduled
after the commit.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timedelta

from shared.core.errors import (
    BookingLimitReached,
    IdempotencyKeyReused,
    InvalidState,
    NotFound,
    RateLimited,
    SoldOut,
    Unavailable,
    ValidationFailed,
)
from shared.dal.records import BuyerHolds, ConcurrentUpdate, DocumentExists, HoldPlan, IdempotencyRecord, UnitOfWork
from shared.domain_events import Actor, change
from shared.models import Booking, Event, new_id, utcnow
from shared.services.bookings.ports import (
    MAX_ATTEMPTS,
    BookingRules,
    BookingStore,
    EventReader,
    HoldRequest,
    IdempotencyStore,
    Inventory,
)
from shared.services.counting import TakenCounter
from shared.services.identity import Principal
from shared.services.retry import backoff
from shared.services.slots import NoFreeSlots, SlotPicker
from shared.tasks import ExpiryScheduler

RATE_WINDOW = timedelta(minutes=1)


class Holding:
    def __init__(
        self,
        bookings: BookingStore,
        keys: IdempotencyStore,
        events: EventReader,
        inventory: Inventory,
        picker: SlotPicker,
        counter: TakenCounter,
        expiry: ExpiryScheduler,
        rules: BookingRules,
        new_uow: Callable[[], UnitOfWork],
    ) -> None:
        self.bookings = bookings
        self.keys = keys
        self.events = events
        self.inventory = inventory
        self.picker = picker
        self.counter = counter
        self.expiry = expiry
        self.rules = rules
        self.new_uow = new_uow
        self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="hold-reads")

    def hold(self, caller: Callable[[], Principal], subject: str, request: HoldRequest) -> tuple[Booking, bool]:
        """Hold tickets; returns the booking and whether this call created it.

        `caller` looks up who is asking (the registration check). A request without an
        Idempotency-Key for an event this process knows to be sold out is answered before that
        lookup: nobody could get a ticket, so the answer is the same for everyone, and the
        sold-out path of a rush stays cheap. With a key, every refusal first checks whether a
        request with the same key has already succeeded: if so, that booking is the answer.
        """
        event = self._bookable_event(request)
        if not request.idempotency_key:
            self._refuse_if_known_sold_out(event, request.quantity)
        principal = caller()
        key = _key_id(principal.user_id, request.idempotency_key) if request.idempotency_key else None
        request_hash = _request_hash(request)
        for attempt in range(MAX_ATTEMPTS):
            if key:
                replay = self._replay(key, request_hash)
                if replay:
                    return replay, False
            try:
                booking = self._try_hold(principal, subject, event, request.quantity, key, request_hash, attempt)
            except (BookingLimitReached, RateLimited, SoldOut):
                replay = self._replay(key, request_hash) if key else None
                if replay:
                    return replay, False
                raise
            if booking is not None:
                self.expiry.schedule_expiry(booking.id, booking.expires_at)
                return booking, True
            backoff(attempt)
        raise Unavailable("too much contention on this event; retry", retry_after=1)

    def _try_hold(
        self,
        principal: Principal,
        subject: str,
        event: Event,
        quantity: int,
        key: str | None,
        request_hash: str,
        attempt: int,
    ) -> Booking | None:
        """One attempt: the booking, or None when a collision says to try again.

        A recent count that says sold out answers at once. The first try assumes the buyer holds
        nothing for this event yet (the usual case in a rush) and *creates* the buyer's record in
        the commit, which fails if it exists; later tries read it. Either way the per-buyer cap is
        enforced by the commit's precondition."""
        now = utcnow()
        taken = self._refuse_if_known_sold_out(event, quantity)
        counted = self._pool.submit(self.counter.taken, event.id, now) if taken is None else None
        buyer = BuyerHolds() if attempt == 0 else self.bookings.buyer_holds(event.id, principal.user_id)
        if counted is not None:
            taken = counted.result()
            if event.capacity - taken < quantity:
                raise SoldOut(f"{max(event.capacity - taken, 0)} ticket(s) left")
        assert taken is not None
        if len(buyer.active(now)) >= self.rules.max_pending_per_buyer:
            raise BookingLimitReached(f"at most {self.rules.max_pending_per_buyer} unpaid booking(s) per event")
        buyer = self._within_rate(buyer, now)
        try:
            picks = self.picker.pick(event.id, event.capacity, quantity, now, reread=attempt >= 2)
        except NoFreeSlots:
            raise SoldOut("not enough tickets left") from None
        booking = self._new_booking(principal, subject, event, quantity, event.unit_price(taken), now)
        record = IdempotencyRecord(key, request_hash, booking.id) if key else None
        try:
            self.commit_hold(HoldPlan(booking, picks, buyer, record), Actor.user(principal.user_id))
        except DocumentExists:
            self.picker.done(event.id, picks, claimed=False)
            self.picker.collided(event.id, picks, now)
            return None
        except ConcurrentUpdate:
            self.picker.done(event.id, picks, claimed=False)
            self.picker.collided(event.id, [p for p in picks if p[1] is not None], now)
            return None
        except Exception:  # the commit's outcome is unknown (its answer lost, or the process stopped)
            self.picker.done(event.id, picks, claimed=False)
            self.counter.forget(event.id)
            raise
        self.picker.done(event.id, picks, claimed=True)
        self.counter.add(event.id, quantity)
        return booking

    def _within_rate(self, buyer: BuyerHolds, now: datetime) -> BuyerHolds:
        """The buyer's holds of the last minute, if one more is allowed; RateLimited if not. The
        commit's precondition on the buyer's document makes the cap hold under concurrency."""
        recent = buyer.since(now - RATE_WINDOW)
        if len(recent) >= self.rules.max_holds_per_minute:
            wait = recent[-self.rules.max_holds_per_minute] + RATE_WINDOW - now
            raise RateLimited(
                f"at most {self.rules.max_holds_per_minute} holds per minute for this event",
                retry_after=max(1, math.ceil(wait.total_seconds())),
            )
        return replace(buyer, recent=recent)

    def commit_hold(self, plan: HoldPlan, actor: Actor) -> None:
        """The slot claims, the booking, the buyer's pending holds, the key and the event: at once."""
        booking = plan.booking
        uow = self.new_uow()
        for n, over in plan.claims:
            self.inventory.stage_claim(uow, booking.event_id, n, booking.id, booking.expires_at, over)
        self.bookings.stage_create(uow, booking, plan.buyer)
        if plan.idempotency is not None:
            self.keys.stage_create(uow, plan.idempotency, booking.booking_time)
        held = replace(change("held", booking, actor, booking.booking_time), id=booking.id)
        uow.record(held, inside=self.bookings.path(booking.id))  # the booking carries it
        uow.commit()

    def _refuse_if_known_sold_out(self, event: Event, quantity: int) -> int | None:
        """SoldOut when a recent count says so; otherwise that count, or None if there is none."""
        taken = self.counter.fresh(event.id)
        if taken is not None and event.capacity - taken < quantity:
            raise SoldOut(f"{max(event.capacity - taken, 0)} ticket(s) left")
        return taken

    def _bookable_event(self, request: HoldRequest) -> Event:
        event = self.events.get(request.event_id)
        if event is None or not event.is_published:
            raise NotFound("event not found")
        if event.has_started(utcnow()):
            raise InvalidState("the event has started; booking is closed")
        if request.quantity > event.max_tickets_per_booking:
            raise ValidationFailed(
                f"at most {event.max_tickets_per_booking} tickets per booking",
                [{"field": "quantity", "message": f"must be at most {event.max_tickets_per_booking}"}],
            )
        return event

    def _new_booking(
        self, principal: Principal, subject: str, event: Event, quantity: int, unit_price: int, now: datetime
    ) -> Booking:
        return Booking(
            id=new_id(),
            event_id=event.id,
            company_id=event.company_id,
            user_id=principal.user_id,
            buyer_subject=subject,
            quantity=quantity,
            unit_price=unit_price,
            total_cost=unit_price * quantity,
            currency=event.currency,
            status="pending_payment",
            booking_time=now,
            expires_at=now + self.rules.hold_ttl,
            updated_at=now,
            history=({"status": "pending_payment", "at": now.isoformat(), "reason": "held"},),
        )

    def _replay(self, key_id: str, request_hash: str) -> Booking | None:
        record = self.keys.get(key_id)
        if record is None:
            return None
        if record.request_hash != request_hash:
            raise IdempotencyKeyReused()
        found = self.bookings.get(record.resource_id)
        if found is None:
            raise Unavailable("the earlier request with this key is still being recorded")
        return found[0]


def _key_id(user_id: str, key: str) -> str:
    """Keys are scoped to the caller and to booking creation."""
    return hashlib.sha256(f"bookings\n{user_id}\n{key}".encode()).hexdigest()[:40]


def _request_hash(request: HoldRequest) -> str:
    body = {"event_id": request.event_id, "quantity": request.quantity}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
