"""What several payment use cases do to a stored payment: record what the provider said (never
backwards), leave a note for a person, and keep a processing payment's hold a little longer.

Every change is a compare-and-set on the payment, committed with its domain event; a lost race is
read again and decided again."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from shared.core.errors import NotFound, Unavailable
from shared.dal.records import ConcurrentUpdate, UnitOfWork
from shared.domain_events import PAYMENT_EVENTS, Actor, change
from shared.models import PROVIDER_STATUSES, Payment, PaymentStatus, utcnow
from shared.payments.gateway import Intent
from shared.services.payments.ports import MAX_ATTEMPTS, BookingStore, Inventory, PaymentRules, PaymentStore
from shared.services.promo.uses import PromoUses
from shared.services.retry import backoff
from shared.services.waitlist.hooks import WaitlistHooks
from shared.tasks import ExpiryScheduler

log = logging.getLogger("payments")
# A decision about a payment: (what happened, the payment after it), or None to change nothing.
Decision = tuple[str, Payment] | None


class PaymentLedger:
    def __init__(
        self,
        payments: PaymentStore,
        bookings: BookingStore,
        inventory: Inventory,
        new_uow: Callable[[], UnitOfWork],
        rules: PaymentRules,
        expiry: ExpiryScheduler,
        promos: PromoUses,
        waitlist: WaitlistHooks,
    ) -> None:
        self.payments = payments
        self.bookings = bookings
        self.inventory = inventory
        self.new_uow = new_uow
        self.rules = rules
        self.expiry = expiry  # an extended hold gets an expiry task at its new time
        self.promos = promos
        self.waitlist = waitlist  # an offered booking's entry follows its extension

    def change(self, payment_id: str, decide: Callable[[Payment, datetime], Decision], actor: Actor) -> Payment:
        """Apply `decide` to the payment as stored now, until it commits; returns the payment after."""
        for attempt in range(MAX_ATTEMPTS):
            found = self.payments.get(payment_id)
            if found is None:
                raise NotFound("payment not found")
            current, read_at = found
            now = utcnow()
            decision = decide(current, now)
            if decision is None:
                return current
            action, updated = decision
            uow = self.new_uow()
            self.payments.stage_update(uow, updated, since=read_at)
            topics = (PAYMENT_EVENTS,) if action == "succeeded" else ()
            uow.record(change(action, updated, actor, now, before=current, topics=topics))
            try:
                uow.commit()
            except ConcurrentUpdate:
                backoff(attempt)
                continue
            return updated
        raise Unavailable("the payment is changing; retry", retry_after=1)

    def record_intent(self, payment_id: str, intent: Intent, actor: Actor) -> Payment:
        """Store what the provider says about the payment's intent; a success is announced to the
        finaliser in the same commit, a processing payment keeps its hold a little longer."""
        status: PaymentStatus = intent.status if intent.status in PROVIDER_STATUSES else "processing"  # type: ignore[assignment]

        def decide(current: Payment, now: datetime) -> Decision:
            linked = {"transaction_id": intent.id, "client_secret": intent.client_secret}
            if current.can_become(status):
                return status, current.moved_to(status, now, **linked)
            if current.transaction_id is None:
                return "linked", current.changed(now, **linked)
            return None

        payment = self.change(payment_id, decide, actor)
        if payment.status == "processing":
            self.grace(payment, actor)
        return payment

    def record_failure(self, payment_id: str, code: str, intent_id: str | None, actor: Actor) -> Payment:
        def decide(current: Payment, now: datetime) -> Decision:
            if not current.can_become("failed"):
                return None
            linked = intent_id or current.transaction_id
            return "failed", current.moved_to("failed", now, failure_code=code, transaction_id=linked)

        return self.change(payment_id, decide, actor)

    def flag(self, payment_id: str, reason: str, actor: Actor) -> Payment:
        """Leave a note for a person, once."""

        def decide(current: Payment, now: datetime) -> Decision:
            return None if current.attention == reason else ("flagged", current.flagged(reason, now))

        before = self.payments.get(payment_id)
        flagged = self.change(payment_id, decide, actor)
        if before is not None and before[0].attention == reason:
            return flagged  # noted already: one alert per note
        log.warning(
            "payment %s of booking %s needs attention: %s",
            flagged.id,
            flagged.booking_id,
            reason,
            extra={"alert": "payment_attention"},  # the alarm's log-based metric (infra/terraform)
        )
        return flagged

    def grace(self, payment: Payment, actor: Actor) -> None:
        """A processing payment keeps its hold a little longer (once, bounded) instead of losing it."""
        for attempt in range(MAX_ATTEMPTS):
            found = self.bookings.get(payment.booking_id)
            if found is None:
                return
            booking, read_at = found
            now = utcnow()
            extended_until = now + self.rules.processing_grace
            if booking.status != "pending_payment" or booking.expires_at >= extended_until:
                return
            if any(entry.get("reason") == "payment processing" for entry in booking.history):
                return
            after = booking.moved_to("pending_payment", now, "payment processing", expires_at=extended_until)
            uow = self.new_uow()
            self.bookings.stage_update(uow, booking, after, since=read_at)
            for claim in self.inventory.claims_of(booking.event_id, booking.id):
                if claim.state == "held":
                    self.inventory.stage_extend(uow, booking.event_id, claim, extended_until)
            self.promos.stage_extend(uow, booking, extended_until)
            self.waitlist.stage_extended(uow, after, actor, now)
            uow.record(change("extended", after, actor, now, before=booking))
            try:
                uow.commit()
            except ConcurrentUpdate:
                backoff(attempt)
                continue
            self.expiry.schedule_expiry(booking.id, extended_until)
            return
        log.info("booking %s kept changing; hold not extended", payment.booking_id)
