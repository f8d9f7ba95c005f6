"""Buyers hold tickets.

A hold is one atomic commit (slot claims, booking, buyer's pending holds, idempotency record and
the `booking.held` domain event), retried on a collision with other slots. Expiry is scheduled
after the commit.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timedelta

from shared.core.errors import (
    BookingLimitReached,
    EventCancelled,
    IdempotencyKeyReused,
    InvalidState,
    NotFound,
    PromoCodeExhausted,
    PromoCodeInvalid,
    RateLimited,
    SoldOut,
    Unavailable,
    ValidationFailed,
)
from shared.dal.records import BuyerHolds, ConcurrentUpdate, DocumentExists, HoldPlan, IdempotencyRecord, UnitOfWork
from shared.domain_events import BOOKING_CONFIRMED, Actor, change
from shared.models import Booking, Event, new_id, utcnow
from shared.promo_models import PromoCode
from shared.services.bookings.keys import key_id, request_hash_of
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
from shared.services.promo.uses import PromoUses, refuse_below_minimum_charge
from shared.services.retry import backoff
from shared.services.slots import NoFreeSlots, SlotPicker
from shared.services.tickets.issuing import TicketIssuer
from shared.services.waitlist.line import WaitingLine
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
        promos: PromoUses,
        issuer: TicketIssuer,
        line: WaitingLine,
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
        self.promos = promos
        self.issuer = issuer  # a booking that costs nothing is confirmed with its tickets at once
        self.line = line  # while anyone waits for the event, freed tickets are theirs
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
        key = key_id(principal.user_id, request.idempotency_key) if request.idempotency_key else None
        request_hash = request_hash_of(request)
        for attempt in range(MAX_ATTEMPTS):
            if key:
                replay = self._replay(key, request_hash)
                if replay:
                    return replay, False
            try:
                booking = self._try_hold(principal, subject, event, request, key, request_hash, attempt)
            except (BookingLimitReached, RateLimited, SoldOut, PromoCodeExhausted, PromoCodeInvalid):
                replay = self._replay(key, request_hash) if key else None
                if replay:
                    return replay, False
                raise
            if booking is not None:
                if booking.status == "pending_payment":
                    self.expiry.schedule_expiry(booking.id, booking.expires_at)
                return booking, True
            backoff(attempt)
        raise Unavailable("too much contention on this event; retry", retry_after=1)

    def _try_hold(
        self,
        principal: Principal,
        subject: str,
        event: Event,
        request: HoldRequest,
        key: str | None,
        request_hash: str,
        attempt: int,
    ) -> Booking | None:
        """One attempt: the booking, or None when a collision says to try again.

        A recent count that says sold out answers at once. The first try assumes the buyer holds
        nothing for this event yet (the usual case in a rush) and *creates* the buyer's record in
        the commit, which fails if it exists; later tries read it. Either way the per-buyer cap is
        enforced by the commit's precondition. A promo code's use slot is claimed in the same commit
        (shared/services/promo/uses.py)."""
        now, quantity = utcnow(), request.quantity
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
        if self.line.anyone_waiting(event.id):
            raise SoldOut("the free tickets are offered to the waitlist first")
        try:
            picks = self.picker.pick(event.id, event.capacity, quantity, now, reread=attempt >= 2)
        except NoFreeSlots:
            raise SoldOut("not enough tickets left") from None
        promo, uses = None, []
        try:
            if request.promo_code:
                promo = self.promos.usable(event.id, request.promo_code, now)
                refuse_below_minimum_charge(promo, quantity, event.unit_price(taken), event.currency)
                uses = self.promos.reserve(promo, now, reread=attempt >= 2)
        except Exception:
            self.picker.done(event.id, picks, claimed=False)
            raise
        booking = self._new_booking(principal, subject, event, quantity, event.unit_price(taken), now, promo)
        record = IdempotencyRecord(key, request_hash, booking.id) if key else None
        try:
            self.commit_hold(HoldPlan(booking, picks, buyer, record, uses), Actor.user(principal.user_id))
        except (DocumentExists, ConcurrentUpdate) as lost:
            self.picker.done(event.id, picks, claimed=False)
            self.picker.collided(event.id, [p for p in picks if isinstance(lost, DocumentExists) or p[1]], now)
            if promo is not None:
                self.promos.done(promo, uses, claimed=False)
                self.promos.collided(promo, uses, now)
            return None
        except Exception:  # the commit's outcome is unknown (its answer lost, or the process stopped)
            self.picker.done(event.id, picks, claimed=False)
            if promo is not None:
                self.promos.done(promo, uses, claimed=False)
            self.counter.forget(event.id)
            raise
        self.picker.done(event.id, picks, claimed=True)
        if promo is not None:
            self.promos.done(promo, uses, claimed=True)
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
        uow = self.new_uow()
        self.stage_hold(uow, plan, actor)
        uow.commit()

    def stage_hold(self, uow: UnitOfWork, plan: HoldPlan, actor: Actor) -> None:
        """What a hold commits, staged into `uow` (the waitlist stages several offers in one commit)."""
        booking = plan.booking
        free = booking.status == "confirmed"  # costs nothing: confirmed at once, with its tickets
        for n, over in plan.claims:
            if free:
                self.inventory.stage_sold(uow, booking.event_id, n, booking.id, over)
            else:
                self.inventory.stage_claim(uow, booking.event_id, n, booking.id, booking.expires_at, over)
        self.promos.stage_claim(uow, booking, plan.uses)
        self.bookings.stage_create(uow, booking, plan.buyer)
        if plan.idempotency is not None:
            self.keys.stage_create(uow, plan.idempotency, booking.booking_time)
        held = replace(booking, status="pending_payment", history=booking.history[:1], seq=1)
        uow.record(
            replace(change("held", held, actor, booking.booking_time), id=booking.id),
            inside=self.bookings.path(booking.id),
        )
        if free:
            uow.record(
                change("confirmed", booking, actor, booking.booking_time, before=held, topics=(BOOKING_CONFIRMED,))
            )
            self.issuer.stage_issue(uow, booking, actor, booking.booking_time)

    def _refuse_if_known_sold_out(self, event: Event, quantity: int) -> int | None:
        """SoldOut when a recent count says so; otherwise that count, or None if there is none."""
        taken = self.counter.fresh(event.id)
        if taken is not None and event.capacity - taken < quantity:
            raise SoldOut(f"{max(event.capacity - taken, 0)} ticket(s) left")
        return taken

    def _bookable_event(self, request: HoldRequest) -> Event:
        event = self.events.get(request.event_id)
        if event is None or not event.is_public:
            raise NotFound("event not found")
        if event.is_cancelled:
            raise EventCancelled("the event was cancelled; nothing can be booked")
        if event.has_started(utcnow()):
            raise InvalidState("the event has started; booking is closed")
        if request.quantity > event.max_tickets_per_booking:
            raise ValidationFailed(
                f"at most {event.max_tickets_per_booking} tickets per booking",
                [{"field": "quantity", "message": f"must be at most {event.max_tickets_per_booking}"}],
            )
        return event

    def _new_booking(
        self,
        principal: Principal,
        subject: str,
        event: Event,
        quantity: int,
        unit_price: int,
        now: datetime,
        promo: PromoCode | None,
    ) -> Booking:
        discount = promo.discount(unit_price, quantity) if promo else 0
        booking = Booking(
            id=new_id(),
            event_id=event.id,
            company_id=event.company_id,
            user_id=principal.user_id,
            buyer_subject=subject,
            quantity=quantity,
            unit_price=unit_price,
            total_cost=unit_price * quantity - discount,
            currency=event.currency,
            status="pending_payment",
            booking_time=now,
            expires_at=now + self.rules.hold_ttl,
            updated_at=now,
            history=({"status": "pending_payment", "at": now.isoformat(), "reason": "held"},),
            promo_code=promo.code if promo else None,
            discount=discount,
        )
        if booking.total_cost == 0:
            return booking.moved_to("confirmed", now, "nothing to pay")
        return booking

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
