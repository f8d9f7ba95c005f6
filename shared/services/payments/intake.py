"""The payment provider tells us what became of a payment (a verified webhook): applied once.

The provider event's record is created in the same commit as the payment's change and its domain
event, so a duplicate delivery changes nothing, and a success reaches the finaliser exactly as it
was committed. No transaction: a lost compare-and-set on the payment is read again and decided
again; a record that exists already means the event was applied (perhaps by a commit whose answer
was lost)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from shared.core.errors import InvalidWebhook, Unavailable
from shared.dal.records import ConcurrentUpdate, DocumentExists, UnitOfWork
from shared.domain_events import PAYMENT_EVENTS, Actor, change
from shared.models import Payment, PaymentStatus, utcnow
from shared.payments.gateway import BadSignature, PaymentGateway, ProviderEvent
from shared.services.payments.ledger import PaymentLedger
from shared.services.payments.ports import MAX_ATTEMPTS, PaymentStore, ProviderEventStore
from shared.services.retry import backoff

log = logging.getLogger("payments")


class ProviderEventIntake:
    def __init__(
        self,
        payments: PaymentStore,
        seen: ProviderEventStore,
        ledger: PaymentLedger,
        gateway: Callable[[], PaymentGateway],
        new_uow: Callable[[], UnitOfWork],
    ) -> None:
        self.payments = payments
        self.seen = seen
        self.ledger = ledger
        self.gateway = gateway
        self.new_uow = new_uow

    def take(self, payload: bytes, signature: str | None) -> bool:
        """Apply a verified provider event once. Returns False for a duplicate."""
        try:
            event = self.gateway().parse_webhook(payload, signature)
        except BadSignature:
            raise InvalidWebhook("signature, timestamp or body not accepted") from None
        payment_id = event.intent.metadata.get("payment_id") if event.intent else None
        actor = Actor.provider(event.id)
        for attempt in range(MAX_ATTEMPTS):
            if self.seen.seen(event.id):
                return False
            found = self.payments.get(payment_id) if payment_id else None
            now = utcnow()
            uow = self.new_uow()
            self.seen.stage_seen(uow, event.id, payment_id, now)
            decided = _decide(found[0], event) if found else None
            if found is not None and decided is not None:
                action, updated = decided
                self.payments.stage_update(uow, updated, since=found[1])
                topics = (PAYMENT_EVENTS,) if action == "succeeded" else ()
                uow.record(change(action, updated, actor, now, before=found[0], topics=topics))
            try:
                uow.commit()
            except DocumentExists:
                return False
            except ConcurrentUpdate:
                backoff(attempt)
                continue
            if decided is not None and decided[1].status == "processing":
                self.ledger.grace(decided[1], actor)
            return True
        raise Unavailable("the payment is changing; the provider will deliver again", retry_after=1)


def _decide(current: Payment, event: ProviderEvent) -> tuple[str, Payment] | None:
    intent, status = event.intent, event.status
    if intent is None or status is None:
        return None
    now = utcnow()
    expected = (current.amount, current.currency, current.booking_id)
    if (intent.amount, intent.currency, intent.metadata.get("booking_id")) != expected:
        log.error("payment %s: provider event %s does not match our records", current.id, event.id)
        return "flagged", current.flagged("provider amount, currency or booking does not match", now)
    if not current.can_become(status):  # type: ignore[arg-type]
        return None
    new_status: PaymentStatus = status  # type: ignore[assignment]
    return new_status, current.moved_to(new_status, now, transaction_id=intent.id)
