"""Money goes back: an organiser refunds a booking, or a payment with no booking to give is refunded.

One refund at a time per payment: the payment is marked (compare and set) before the provider is
called, so of concurrent requests exactly one asks the provider, and the others wait for it and
answer with its result. The refund is recorded after the provider accepted it, together with the
booking's new state and its tickets going back on sale.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Literal

from shared.core.errors import Forbidden, InvalidState, NotFound, PaymentInProgress, Unavailable
from shared.dal.records import ConcurrentUpdate, UnitOfWork
from shared.domain_events import Actor, change
from shared.models import Booking, Payment, utcnow
from shared.payments.gateway import PaymentGateway, ProviderBusy, ProviderUnavailable, Refused
from shared.services.identity import Principal
from shared.services.payments.ledger import Decision, PaymentLedger
from shared.services.payments.ports import (
    MAX_ATTEMPTS,
    RESUME_AFTER,
    WAIT_FOR_OTHER,
    BookingStore,
    Inventory,
    PaymentStore,
)
from shared.services.promo.uses import PromoUses
from shared.services.retry import backoff
from shared.services.tickets.issuing import TicketIssuer
from shared.services.waitlist.hooks import WaitlistHooks

POLL_SECONDS = 0.1
RefundStart = Literal["ask_provider", "refunded", "booked"]
# The note on a booking's payment whose refund the provider refused (counted by a cancellation).
REFUND_REFUSED = "the payment provider refused the refund: refund the buyer by hand"
EVENT_CANCELLED = "the event was cancelled"


class RefundRefused(InvalidState):
    """The provider will not refund the payment; it is flagged for a person (GET /v1/attention)."""


class Refunding:
    def __init__(
        self,
        payments: PaymentStore,
        bookings: BookingStore,
        inventory: Inventory,
        ledger: PaymentLedger,
        gateway: Callable[[], PaymentGateway],
        new_uow: Callable[[], UnitOfWork],
        issuer: TicketIssuer,
        promos: PromoUses,
        waitlist: WaitlistHooks,
        released: Callable[[str, list[int]], None] = lambda event_id, slots: None,
    ) -> None:
        self.payments = payments
        self.bookings = bookings
        self.inventory = inventory
        self.ledger = ledger
        self.gateway = gateway
        self.new_uow = new_uow
        self.issuer = issuer
        self.promos = promos
        self.waitlist = waitlist
        self.released = released  # told which slots came free (this process's slot picker)

    def refund(self, principal: Principal, booking_id: str) -> Booking:
        """The organiser refunds a confirmed booking in full; repeating it changes nothing."""
        found = self.bookings.get(booking_id)
        if found is None:
            raise NotFound("booking not found")
        booking = found[0]
        if not principal.manages(booking.company_id):
            if booking.user_id == principal.user_id:
                raise Forbidden("only the event's company admins refund")
            raise NotFound("booking not found")
        if booking.status == "refunded":
            return booking
        free = booking.paid_by is None and booking.total_cost == 0  # nothing was paid: nothing to send back
        if booking.status != "confirmed" or (booking.paid_by is None and not free):
            raise InvalidState(f"a {booking.status_at(utcnow())} booking cannot be refunded")
        actor = Actor.user(principal.user_id)
        if booking.paid_by is not None and self._start(booking.paid_by, actor) == "ask_provider":
            self._at_provider(booking.paid_by, actor)
        return self._record_booking_refund(booking_id, actor)

    def refund_cancelled(self, booking_id: str, actor: Actor) -> Booking:
        """Its event was cancelled: a confirmed booking is refunded in full, as by the organiser
        (anything else is returned as it is). RefundRefused when the provider will not."""
        found = self.bookings.get(booking_id)
        if found is None:
            raise NotFound("booking not found")
        booking = found[0]
        if booking.status != "confirmed":
            return booking
        if booking.paid_by is not None and self._start(booking.paid_by, actor) == "ask_provider":
            self._at_provider(booking.paid_by, actor)
        return self._record_booking_refund(booking_id, actor, EVENT_CANCELLED)

    def refund_unbookable(self, payment_id: str, reason: str, actor: Actor) -> str:
        """Money taken with no booking to give: refund it at once and leave a note for a person.
        A payment that confirmed its booking meanwhile (`booked`) is kept."""
        started = self._start(payment_id, actor, unless_booked=True)
        if started == "booked":
            return "kept: it confirmed its booking"
        if started == "ask_provider":
            try:
                self._at_provider(payment_id, actor, f"the payment provider refused an automatic refund ({reason})")
            except RefundRefused:
                return "refund refused: flagged for a person"
        note = f"refunded automatically: {reason}"

        def decide(current: Payment, now: datetime) -> Decision:
            if current.status == "refunded" and current.attention is not None:
                return None
            return "refunded", current.moved_to("refunded", now, attention=note)

        self.ledger.change(payment_id, decide, actor)
        return "refunded"

    def _start(self, payment_id: str, actor: Actor, unless_booked: bool = False) -> RefundStart:
        """Mark the payment as being refunded: "ask_provider" (this caller asks the provider),
        "refunded" (already, perhaps by a concurrent request this one waited for), or "booked" (with
        `unless_booked`: it confirmed its booking, so it is not refunded)."""
        deadline = time.monotonic() + WAIT_FOR_OTHER.total_seconds()
        for attempt in range(MAX_ATTEMPTS * 10):
            found = self.payments.get(payment_id)
            if found is None:
                raise InvalidState("no payment to refund")
            current, read_at = found
            now = utcnow()
            if current.status == "refunded":
                return "refunded"
            if unless_booked and current.booked:
                return "booked"
            if current.status != "succeeded" or current.transaction_id is None:
                raise InvalidState("no payment to refund")
            if current.refund_started_at is not None and now - current.refund_started_at < RESUME_AFTER:
                if time.monotonic() >= deadline:
                    raise PaymentInProgress("a refund of this payment is under way")
                time.sleep(POLL_SECONDS)  # another request is refunding it: wait for its result
                continue
            started = current.changed(now, refund_started_at=now)
            uow = self.new_uow()
            self.payments.stage_update(uow, started, since=read_at)
            uow.record(change("refund_started", started, actor, now, before=current))
            try:
                uow.commit()
            except ConcurrentUpdate:
                backoff(attempt)
                continue
            return "ask_provider"
        raise PaymentInProgress("the payment is changing; retry")

    def _at_provider(self, payment_id: str, actor: Actor, refused_note: str = REFUND_REFUSED) -> None:
        found = self.payments.get(payment_id)
        if found is None or found[0].transaction_id is None:
            raise InvalidState("no payment to refund")
        payment = found[0]
        try:
            self.gateway().refund(payment.transaction_id or "", idempotency_key=f"refund:{payment.id}")
        except ProviderBusy:
            raise PaymentInProgress("the provider is still answering the first refund call") from None
        except ProviderUnavailable:

            def give_up(current: Payment, now: datetime) -> Decision:
                if current.status != "succeeded" or current.refund_started_at is None:
                    return None
                return "refund_failed", current.changed(now, refund_started_at=None)

            self.ledger.change(payment_id, give_up, actor)
            raise Unavailable("the payment provider is unavailable; retry") from None
        except Refused as exc:

            def flag(current: Payment, now: datetime) -> Decision:
                if current.status != "succeeded":
                    return None
                return "refund_refused", current.changed(now, refund_started_at=None, attention=refused_note)

            self.ledger.change(payment_id, flag, actor)
            raise RefundRefused(f"the payment provider refused the refund: {exc}") from None

    def _record_booking_refund(
        self, booking_id: str, actor: Actor, reason: str = "refunded by the organiser"
    ) -> Booking:
        """The booking and its payment are refunded, its tickets revoked and its slots go back on
        sale, together."""
        for attempt in range(MAX_ATTEMPTS):
            found = self.bookings.get(booking_id)
            if found is None:
                raise NotFound("booking not found")
            booking, booking_read_at = found
            if booking.status == "refunded":
                return booking
            paid = self.payments.get(booking.paid_by) if booking.paid_by else None
            if paid is None and booking.total_cost > 0:
                raise InvalidState("no payment to refund")
            now = utcnow()
            after = booking.moved_to("refunded", now, reason)
            claims = self.inventory.claims_of(booking.event_id, booking.id)
            uow = self.new_uow()
            self.bookings.stage_update(uow, booking, after, since=booking_read_at)
            for claim in claims:
                self.inventory.stage_release(uow, booking.event_id, claim)
            uses = self.promos.stage_release(uow, booking)  # the promo code's use is given back
            uow.record(change("refunded", after, actor, now, before=booking))
            self.issuer.stage_revoke(uow, booking, actor, now)
            if paid is not None and paid[0].status != "refunded":
                payment, payment_read_at = paid
                resolved = {"attention": None} if payment.attention == REFUND_REFUSED else {}  # refused before
                paid_back = payment.moved_to("refunded", now, **resolved)
                self.payments.stage_update(uow, paid_back, since=payment_read_at)
                uow.record(change("refunded", paid_back, actor, now, before=payment))
            try:
                uow.commit()
            except ConcurrentUpdate:
                backoff(attempt)
                continue
            self.released(booking.event_id, [c.n for c in claims])
            self.promos.released(booking, uses)
            self.waitlist.freed(booking.event_id)
            return after
        raise PaymentInProgress("the booking is changing; retry")
