"""The reconciler: compare recent provider intents with our records and repair each difference.

Run every minute by the scheduler. An intent that succeeded while our payment did not hear of it
is recorded and finalised; a confirmed booking whose intent did not succeed is flagged for a
person; a payment stuck before the provider ever saw it is failed, so the booking is payable again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from shared.core.errors import PaymentInProgress, Unavailable
from shared.domain_events import Actor
from shared.models import PROVIDER_STATUSES, Payment, utcnow
from shared.payments.gateway import Intent, PaymentGateway
from shared.services.payments.finalising import Finalising
from shared.services.payments.ledger import Decision, PaymentLedger
from shared.services.payments.ports import BookingStore, PaymentRules, PaymentStore

log = logging.getLogger("payments")
RECONCILER = Actor.system("reconciler")
NOT_FINAL = ["creating", "requires_payment_method", "requires_confirmation", "requires_action", "processing"]


class Reconciling:
    def __init__(
        self,
        payments: PaymentStore,
        bookings: BookingStore,
        ledger: PaymentLedger,
        finalising: Finalising,
        gateway: Callable[[], PaymentGateway],
        rules: PaymentRules,
    ) -> None:
        self.payments = payments
        self.bookings = bookings
        self.ledger = ledger
        self.finalising = finalising
        self.gateway = gateway
        self.rules = rules

    def reconcile(self) -> dict[str, int]:
        counts = {"synced": 0, "finalized": 0, "flagged": 0, "abandoned": 0, "deferred": 0}
        now = utcnow()
        seen: set[str] = set()
        for intent in self.gateway().recent_intents(now - self.rules.reconcile_window):
            payment_id = intent.metadata.get("payment_id")
            found = self.payments.get(payment_id) if payment_id else None
            if found is None:
                continue
            seen.add(found[0].id)
            counts[self._deferring(self._reconcile_one, found[0], intent)] += 1
        for payment in self.payments.stuck(NOT_FINAL, now - self.rules.stuck_after, 100):
            if payment.id in seen:
                continue
            if payment.transaction_id:
                intent = self.gateway().retrieve_intent(payment.transaction_id)
                counts[self._deferring(self._reconcile_one, payment, intent)] += 1
            elif payment.status == "creating" and self._abandon(payment):  # the provider never saw it
                counts["abandoned"] += 1
        return counts

    def _deferring(self, repair: Callable[[Payment, Intent], str], payment: Payment, intent: Intent) -> str:
        """One payment still contended (its booking changing, a refund under way) waits for the next
        run; it does not stop the repair of the others."""
        try:
            return repair(payment, intent)
        except (Unavailable, PaymentInProgress) as exc:
            log.info("payment %s deferred to the next run: %s", payment.id, exc.detail)
            return "deferred"

    def _abandon(self, payment: Payment) -> bool:
        return self.ledger.change(payment.id, _abandon, RECONCILER).status == "failed"

    def _reconcile_one(self, payment: Payment, intent: Intent) -> str:
        if intent.status in PROVIDER_STATUSES and payment.can_become(intent.status):  # type: ignore[arg-type]
            if (intent.amount, intent.currency) != (payment.amount, payment.currency):
                self.ledger.flag(payment.id, "provider amount or currency does not match", RECONCILER)
                return "flagged"
            payment = self.ledger.record_intent(payment.id, intent, RECONCILER)
            if payment.status == "succeeded":
                self.finalising.finalize(payment.id)
                return "finalized"
            return "synced"
        if payment.status == "succeeded":
            if intent.status != "succeeded":
                self.ledger.flag(payment.id, f"confirmed but the provider says {intent.status}", RECONCILER)
                return "flagged"
            booking = self.bookings.get(payment.booking_id)
            if booking is not None and booking[0].status not in ("confirmed", "refunded"):
                self.finalising.finalize(payment.id)
                return "finalized"
        return "synced"


def _abandon(current: Payment, now: datetime) -> Decision:
    if current.status != "creating":
        return None
    return "failed", current.moved_to("failed", now, failure_code="never_reached_provider")
