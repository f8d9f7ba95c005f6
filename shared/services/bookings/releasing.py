"""Tickets go back on sale: the buyer cancels, or the hold runs out.

The expiry task, the sweep and every read agree on one rule: a pending booking past `expires_at`
is expired. A release is a compare and set on the booking, so a cancel racing the expiry task
(or a payment) ends one way, and the slots are released once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from shared.core.errors import Forbidden, InvalidState, NotFound, Unavailable
from shared.dal.records import ConcurrentUpdate, UnitOfWork
from shared.domain_events import Actor, change
from shared.models import Booking, BookingStatus, utcnow
from shared.services.bookings.ports import MAX_ATTEMPTS, BookingStore, Inventory
from shared.services.counting import TakenCounter
from shared.services.identity import Principal
from shared.services.promo.uses import PromoUses
from shared.services.retry import backoff
from shared.services.slots import SlotPicker
from shared.services.waitlist.hooks import WaitlistHooks

log = logging.getLogger("bookings")
EXPIRY, SWEEP = Actor.system("expiry"), Actor.system("sweep")


class Releasing:
    def __init__(
        self,
        bookings: BookingStore,
        inventory: Inventory,
        picker: SlotPicker,
        counter: TakenCounter,
        new_uow: Callable[[], UnitOfWork],
        promos: PromoUses,
        waitlist: WaitlistHooks,
    ) -> None:
        self.bookings = bookings
        self.inventory = inventory
        self.picker = picker
        self.counter = counter
        self.new_uow = new_uow
        self.promos = promos
        self.waitlist = waitlist

    def cancel(self, principal: Principal, booking_id: str) -> Booking:
        found = self.bookings.get(booking_id)
        if found is None or found[0].user_id != principal.user_id:
            if found is not None and principal.manages(found[0].company_id):
                raise Forbidden("only the buyer cancels a booking")
            raise NotFound("booking not found")
        booking = found[0]
        if booking.status == "cancelled":
            return booking
        now = utcnow()
        if booking.status_at(now) != "pending_payment":
            raise InvalidState(f"a {booking.status_at(now)} booking cannot be cancelled")
        actor = Actor.user(principal.user_id)
        released = self._release(booking_id, "cancelled", "cancelled by the buyer", actor, only_if_overdue=False)
        if released is not None:
            return released
        current = self.bookings.get(booking_id)  # changed meanwhile: cancelled by a concurrent call?
        if current is not None and current[0].status == "cancelled":
            return current[0]
        state = current[0].status_at(utcnow()) if current else "gone"
        raise InvalidState(f"a {state} booking cannot be cancelled")

    def cancel_for_event(self, booking_id: str, actor: Actor) -> Booking | None:
        """Its event was cancelled: a pending booking is cancelled (None if it is not pending)."""
        return self._release(booking_id, "cancelled", "the event was cancelled", actor, only_if_overdue=False)

    def expire(self, booking_id: str, actor: Actor = EXPIRY) -> Booking | None:
        """Expire one booking if it is pending and past its hold; otherwise change nothing."""
        return self._release(booking_id, "expired", "hold ran out", actor, only_if_overdue=True)

    def sweep(self, limit: int) -> int:
        """Expire every overdue booking (the backstop for missed or early tasks)."""
        count = 0
        for booking_id in self.bookings.overdue(utcnow(), limit):
            if self.expire(booking_id, SWEEP) is not None:
                count += 1
        return count

    def _release(
        self, booking_id: str, status: BookingStatus, reason: str, actor: Actor, *, only_if_overdue: bool
    ) -> Booking | None:
        for attempt in range(MAX_ATTEMPTS):
            found = self.bookings.get(booking_id)
            if found is None:
                return None
            booking, read_at = found
            now = utcnow()
            if booking.status != "pending_payment" or (only_if_overdue and booking.expires_at > now):
                return None
            mine = [c for c in self.inventory.claims_of(booking.event_id, booking.id) if c.state == "held"]
            after = booking.moved_to(status, now, reason)
            uow = self.new_uow()
            self.bookings.stage_update(uow, booking, after, since=read_at)
            for claim in mine:
                self.inventory.stage_release(uow, booking.event_id, claim)
            uses = self.promos.stage_release(uow, booking)  # the promo code's use is given back
            uow.record(change(status, after, actor, now, before=booking))
            self.waitlist.stage_booking_ended(uow, booking, status, actor, now)  # an offer ran out or was declined
            try:
                uow.commit()
            except ConcurrentUpdate:
                backoff(attempt)
                continue
            except Exception:  # released or not, nobody knows: the next hold counts again
                self.counter.forget(booking.event_id)
                raise
            self.picker.released(booking.event_id, [c.n for c in mine])
            self.counter.released(booking.event_id, [c.held_until for c in mine])
            self.promos.released(booking, uses)
            self.waitlist.freed(booking.event_id)
            log.info("booking %s %s; %d ticket(s) released", booking.id, status, len(mine))
            return after
        raise Unavailable("the booking is changing; retry", retry_after=1)
