"""A succeeded payment confirms its booking (pushed from the domain-event stream by Pub/Sub).

Safe to run any number of times: the booking is confirmed once (compare and set), its held claims
become sold, a late payment re-acquires tickets when some are free, and money that can buy no
booking is refunded. Confirming marks the payment `booked` in the same commit, and a refund of
unbookable money starts only on a payment not booked: two runs that read the booking at the same
moment can never both confirm it and refund its payment. `booking.confirmed` is committed with the
confirmation and reaches the notifier from the stream.
"""

from __future__ import annotations

from collections.abc import Callable

from shared.core.errors import PromoCodeExhausted, Unavailable
from shared.dal.records import Claim, ConcurrentUpdate, DocumentExists, UnitOfWork
from shared.domain_events import BOOKING_CONFIRMED, Actor, change
from shared.models import Payment, utcnow
from shared.services.payments.ledger import PaymentLedger
from shared.services.payments.ports import MAX_ATTEMPTS, BookingStore, EventReader, Inventory, PaymentStore
from shared.services.payments.refunding import Refunding
from shared.services.promo.uses import PromoUses
from shared.services.retry import backoff
from shared.services.slots import NoFreeSlots, SlotPicker
from shared.services.tickets.issuing import TicketIssuer
from shared.services.waitlist.hooks import WaitlistHooks

FINALISER = Actor.system("finaliser")
LATE = "paid after the hold ran out; tickets re-acquired"
RESUMED = "a refund of money that buys no booking, resumed"


class Finalising:
    def __init__(
        self,
        payments: PaymentStore,
        bookings: BookingStore,
        events: EventReader,
        inventory: Inventory,
        picker: SlotPicker,
        ledger: PaymentLedger,
        refunding: Refunding,
        issuer: TicketIssuer,
        new_uow: Callable[[], UnitOfWork],
        promos: PromoUses,
        waitlist: WaitlistHooks,
    ) -> None:
        self.payments = payments
        self.bookings = bookings
        self.events = events
        self.inventory = inventory
        self.picker = picker
        self.ledger = ledger
        self.refunding = refunding
        self.issuer = issuer
        self.new_uow = new_uow
        self.promos = promos
        self.waitlist = waitlist

    def finalize(self, payment_id: str) -> str:
        """Confirm the booking a succeeded payment pays for; returns what was done."""
        for attempt in range(MAX_ATTEMPTS):
            try:
                return self._finalize_once(payment_id, reread=attempt > 0)
            except (ConcurrentUpdate, DocumentExists):
                backoff(attempt)
        raise Unavailable("finalisation contended; redeliver", retry_after=1)

    def _finalize_once(self, payment_id: str, reread: bool = False) -> str:
        found = self.payments.get(payment_id)
        if found is None or found[0].status != "succeeded":
            return "ignored"
        payment, paid_read_at = found
        if payment.refund_started_at is not None and not payment.booked:
            # A refund of money that buys no booking was decided and may have been cut short (the
            # process died after marking it): finish it, never confirm with it.
            return self._refund(payment, RESUMED)
        booked = self.bookings.get(payment.booking_id)
        if booked is None:
            return self._refund(payment, "booking missing")
        booking, read_at = booked
        if booking.status == "confirmed":
            if booking.paid_by == payment.id:
                return "already confirmed"
            return self._refund(payment, "booking already paid by another payment")
        if booking.status == "refunded":
            return "ignored"
        its_event = self.events.get(booking.event_id)
        if its_event is not None and its_event.is_cancelled:  # never confirmed: its organiser cancelled it
            return self._refund(payment, "paid after the event was cancelled")
        if booking.status == "cancelled":
            return self._refund(payment, "paid after the buyer cancelled the booking")
        now = utcnow()
        mine = [c for c in self.inventory.claims_of(booking.event_id, booking.id) if c.state == "held"]
        on_time = booking.status == "pending_payment" and booking.expires_at > now
        missing = booking.quantity - len(mine)
        new_slots: list[tuple[int, Claim | None]] = []
        if missing > 0:
            event = self.events.get(booking.event_id)
            if event is None:
                return self._refund(payment, "event missing")
            try:
                own = frozenset(c.n for c in mine)  # lapsed, so they look free: never picked twice
                new_slots = self.picker.pick(event.id, event.capacity, missing, now, reread=reread, avoid=own)
            except NoFreeSlots:
                return self._refund(payment, "paid after the hold ran out; tickets gone")
            self.picker.done(event.id, new_slots, claimed=False)
        reason = "paid" if on_time and missing == 0 else LATE
        after = booking.moved_to("confirmed", now, reason, paid_by=payment.id)
        uow = self.new_uow()
        self.bookings.stage_update(uow, booking, after, since=read_at)
        for claim in mine:
            self.inventory.stage_sell(uow, booking.event_id, claim)
        for n, over in new_slots:
            self.inventory.stage_sold(uow, booking.event_id, n, booking.id, over)
        try:
            new_uses = self.promos.stage_sell(uow, booking, now, reread=reread)
        except PromoCodeExhausted:
            return self._refund(payment, "paid after the hold ran out; the promo code's uses are gone")
        uow.record(change("confirmed", after, FINALISER, now, before=booking, topics=(BOOKING_CONFIRMED,)))
        self.issuer.stage_issue(uow, after, FINALISER, now)  # its tickets, in the same commit
        self.waitlist.stage_fulfilled(uow, booking, FINALISER, now)  # a paid offer fulfils its entry
        # The payment is marked in the same commit, on the revision read above: a concurrent run that
        # decided to refund it as unbookable (it read the booking before this commit) fails, or this one.
        marked = payment.changed(now, booked=True)
        self.payments.stage_update(uow, marked, since=paid_read_at)
        uow.record(change("booked", marked, FINALISER, now, before=payment))
        try:
            uow.commit()
        except (ConcurrentUpdate, DocumentExists):
            if new_slots:  # other buyers took them meanwhile: learn what they hold before the next try
                self.picker.collided(booking.event_id, new_slots, now)
            if new_uses:
                self.promos.lost(booking, new_uses, now)
            raise
        if reason != "paid":
            self.ledger.flag(payment.id, reason, FINALISER)
            return "confirmed late"
        return "confirmed"

    def _refund(self, payment: Payment, reason: str) -> str:
        return self.refunding.refund_unbookable(payment.id, reason, FINALISER)
