"""PaymentDAL: payment attempts, processed webhook events, and the commits that change them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from shared.dal.base import Dal, as_utc, commit
from shared.dal.bookings import IDEMPOTENCY, BookingDAL
from shared.dal.outbox import OutboxDAL
from shared.dal.records import IdempotencyRecord, OutboxMessage
from shared.models import Booking, Payment

WEBHOOK_EVENTS = "webhook_events"
Decision = tuple[Payment | None, list[OutboxMessage]]


class PaymentDAL(Dal):
    collection = "payments"

    def __init__(self, client: firestore.Client, bookings: BookingDAL, outbox: OutboxDAL) -> None:
        super().__init__(client)
        self.bookings = bookings
        self.outbox = outbox

    def get(self, payment_id: str) -> tuple[Payment, Any] | None:
        snap = self.ref(payment_id).get()
        return (_from_doc(snap.to_dict() or {}), snap.update_time) if snap.exists else None

    def begin(
        self, booking: Booking, booking_update_time: Any, payment: Payment, record: IdempotencyRecord | None
    ) -> None:
        """Record a new attempt before the provider is called, so a crash after the call is found."""
        batch = self.client.batch()
        batch.update(
            self.bookings.ref(booking.id),
            {"payment_attempts": booking.payment_attempts, "latest_payment_id": booking.latest_payment_id},
            option=self.client.write_option(last_update_time=booking_update_time),
        )
        batch.create(self.ref(payment.id), _to_doc(payment))
        if record is not None:
            batch.create(
                self.client.collection(IDEMPOTENCY).document(record.key_id),
                {
                    "request_hash": record.request_hash,
                    "resource_id": record.resource_id,
                    "created_at": payment.created_at,
                },
            )
        commit(batch)

    def save(self, payment: Payment, update_time: Any, messages: Sequence[OutboxMessage] = ()) -> None:
        """Write the payment if unchanged since `update_time`, with the messages that announce it."""
        batch = self.client.batch()
        option = self.client.write_option(last_update_time=update_time)
        batch.update(self.ref(payment.id), _to_doc(payment), option=option)
        for msg in messages:
            self.outbox.stage(batch, msg)
        commit(batch)

    def record_event(self, event_id: str, payment_id: str | None, decide: Callable[[Payment | None], Decision]) -> bool:
        """In one transaction: remember the provider event (once) and apply its change.

        Returns False for a duplicate delivery (nothing changed)."""
        seen_ref = self.client.collection(WEBHOOK_EVENTS).document(event_id)
        pay_ref = self.ref(payment_id) if payment_id else None

        @firestore.transactional
        def apply(txn: firestore.Transaction) -> bool:
            if seen_ref.get(transaction=txn).exists:
                return False
            snap = pay_ref.get(transaction=txn) if pay_ref else None
            current = _from_doc(snap.to_dict() or {}) if snap is not None and snap.exists else None
            changed, messages = decide(current)
            txn.create(seen_ref, {"payment_id": payment_id, "received_at": firestore.SERVER_TIMESTAMP})
            if changed is not None and pay_ref is not None:
                txn.set(pay_ref, _to_doc(changed))
            for msg in messages:
                self.outbox.stage(txn, msg)
            return True

        return bool(apply(self.client.transaction()))

    def by_company_needing_attention(self, company_id: str, limit: int) -> list[Payment]:
        query = (
            self.client.collection(self.collection)
            .where(filter=FieldFilter("company_id", "==", company_id))
            .where(filter=FieldFilter("needs_attention", "==", True))
            .limit(limit)
        )
        return [_from_doc(s.to_dict() or {}) for s in query.stream()]

    def stuck(self, statuses: list[str], updated_before: datetime, limit: int) -> list[Payment]:
        query = (
            self.client.collection(self.collection)
            .where(filter=FieldFilter("status", "in", statuses))
            .where(filter=FieldFilter("updated_at", "<=", updated_before))
            .limit(limit)
        )
        return [_from_doc(s.to_dict() or {}) for s in query.stream()]


def _to_doc(payment: Payment) -> dict[str, Any]:
    return {**asdict(payment), "needs_attention": payment.attention is not None}


def _from_doc(doc: dict[str, Any]) -> Payment:
    fields = {k: v for k, v in doc.items() if k in Payment.__dataclass_fields__}
    return Payment(**{**fields, "created_at": as_utc(doc["created_at"]), "updated_at": as_utc(doc["updated_at"])})
