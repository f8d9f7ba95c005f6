"""BookingDAL: bookings, the per-buyer pending holds of an event, and idempotency records.

A hold is one batch: the slot claims, the booking, the buyer's pending-holds document (guarded by
its update time, which enforces the per-buyer cap) and, when the caller sent an Idempotency-Key,
the key's record (created, so a second request with the key cannot create a second booking).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter
from google.cloud.firestore_v1.field_path import FieldPath

from shared.dal.base import Dal, as_utc, commit
from shared.dal.inventory import InventoryDAL
from shared.dal.outbox import OutboxDAL
from shared.dal.records import BuyerHolds, Claim, HoldPlan, IdempotencyRecord, OutboxMessage
from shared.models import Booking, Payment

IDEMPOTENCY = "idempotency"


class BookingDAL(Dal):
    collection = "bookings"

    def __init__(self, client: firestore.Client, inventory: InventoryDAL, outbox: OutboxDAL) -> None:
        super().__init__(client)
        self.inventory = inventory
        self.outbox = outbox

    # ---- reads ----------------------------------------------------------------------------------

    def get(self, booking_id: str) -> tuple[Booking, Any] | None:
        """The booking and its update time (the precondition for changing it)."""
        snap = self.ref(booking_id).get()
        return (_from_doc(snap.to_dict() or {}), snap.update_time) if snap.exists else None

    def buyer_holds(self, event_id: str, user_id: str) -> BuyerHolds:
        snap = self._buyer_ref(event_id, user_id).get()
        if not snap.exists:
            return BuyerHolds()
        pending = {k: as_utc(v) for k, v in (snap.get("pending") or {}).items()}
        return BuyerHolds(pending, snap.update_time)

    def idempotency(self, key_id: str) -> IdempotencyRecord | None:
        snap = self.client.collection(IDEMPOTENCY).document(key_id).get()
        if not snap.exists:
            return None
        return IdempotencyRecord(key_id, snap.get("request_hash"), snap.get("resource_id"))

    def page(
        self, field_name: str, value: str, limit: int, after: tuple[datetime, str] | None
    ) -> tuple[list[Booking], tuple[datetime, str] | None]:
        """Bookings where `field_name == value`, newest first, and the cursor of the next page."""
        query = (
            self.client.collection(self.collection)
            .where(filter=FieldFilter(field_name, "==", value))
            .order_by("booking_time", direction=firestore.Query.DESCENDING)
            .order_by("__name__", direction=firestore.Query.DESCENDING)
        )
        if after:
            query = query.start_after({"booking_time": after[0], "__name__": self.ref(after[1])})
        found = [_from_doc(s.to_dict() or {}) for s in query.limit(limit + 1).stream()]
        more = len(found) > limit
        found = found[:limit]
        return found, (found[-1].booking_time, found[-1].id) if more and found else None

    def overdue(self, now: datetime, limit: int) -> list[str]:
        """Ids of pending bookings whose hold has run out (what the expiry tasks may have missed)."""
        query = (
            self.client.collection(self.collection)
            .where(filter=FieldFilter("status", "==", "pending_payment"))
            .where(filter=FieldFilter("expires_at", "<=", now))
            .limit(limit)
        )
        return [s.id for s in query.select(["id"]).stream()]

    # ---- atomic writes --------------------------------------------------------------------------

    def commit_hold(self, plan: HoldPlan) -> None:
        booking = plan.booking
        batch = self.client.batch()
        for n, over in plan.claims:
            self.inventory.stage_claim(batch, booking.event_id, n, booking.id, booking.expires_at, over)
        batch.create(self.ref(booking.id), _to_doc(booking))
        pending = {**plan.buyer.active(booking.booking_time), booking.id: booking.expires_at}
        buyer_ref = self._buyer_ref(booking.event_id, booking.user_id)
        if plan.buyer.update_time is None:
            batch.create(buyer_ref, {"pending": pending})
        else:
            option = self.client.write_option(last_update_time=plan.buyer.update_time)
            batch.update(buyer_ref, {"pending": pending}, option=option)
        if plan.idempotency is not None:
            record = plan.idempotency
            batch.create(
                self.client.collection(IDEMPOTENCY).document(record.key_id),
                {
                    "request_hash": record.request_hash,
                    "resource_id": record.resource_id,
                    "created_at": booking.booking_time,
                },
            )
        commit(batch)

    def commit_release(self, after: Booking, update_time: Any, claims: list[Claim]) -> None:
        """Record the booking's new state and give its tickets back, if nobody changed it meanwhile."""
        batch = self.client.batch()
        batch.update(
            self.ref(after.id),
            _to_doc(after),
            option=self.client.write_option(last_update_time=update_time),
        )
        for claim in claims:
            self.inventory.stage_release(batch, after.event_id, claim)
        batch.update(
            self._buyer_ref(after.event_id, after.user_id),
            {FieldPath("pending", after.id).to_api_repr(): firestore.DELETE_FIELD},
        )
        commit(batch)

    def commit_confirm(
        self,
        after: Booking,
        update_time: Any,
        sell: list[Claim],
        new_slots: list[tuple[int, Claim | None]],
        messages: Sequence[OutboxMessage],
    ) -> None:
        """Confirm a paid booking: its claims become sold (new ones created for a late payment)."""
        batch = self.client.batch()
        batch.update(self.ref(after.id), _to_doc(after), option=self.client.write_option(last_update_time=update_time))
        for claim in sell:
            self.inventory.stage_sell(batch, after.event_id, claim)
        for n, over in new_slots:
            self.inventory.stage_sold(batch, after.event_id, n, after.id, over)
        batch.update(
            self._buyer_ref(after.event_id, after.user_id),
            {FieldPath("pending", after.id).to_api_repr(): firestore.DELETE_FIELD},
        )
        for msg in messages:
            self.outbox.stage(batch, msg)
        commit(batch)

    def commit_refund(
        self, after: Booking, update_time: Any, claims: list[Claim], payment: Payment, payment_update_time: Any
    ) -> None:
        """Record a refund: the booking and payment are refunded and the tickets go back on sale."""
        batch = self.client.batch()
        batch.update(self.ref(after.id), _to_doc(after), option=self.client.write_option(last_update_time=update_time))
        for claim in claims:
            self.inventory.stage_release(batch, after.event_id, claim)
        batch.update(
            self.client.collection("payments").document(payment.id),
            {
                "status": payment.status,
                "updated_at": payment.updated_at,
                "attention": payment.attention,
                "needs_attention": payment.attention is not None,
            },
            option=self.client.write_option(last_update_time=payment_update_time),
        )
        commit(batch)

    def extend_hold(self, after: Booking, update_time: Any, claims: list[Claim]) -> None:
        """Move a hold's end (a payment is processing): the booking and its claims together."""
        batch = self.client.batch()
        batch.update(self.ref(after.id), _to_doc(after), option=self.client.write_option(last_update_time=update_time))
        for claim in claims:
            self.inventory.stage_extend(batch, after.event_id, claim, after.expires_at)
        batch.update(
            self._buyer_ref(after.event_id, after.user_id),
            {FieldPath("pending", after.id).to_api_repr(): after.expires_at},
        )
        commit(batch)

    def _buyer_ref(self, event_id: str, user_id: str) -> firestore.DocumentReference:
        return self.client.collection("events").document(event_id).collection("buyers").document(user_id)


def _to_doc(booking: Booking) -> dict[str, Any]:
    return {
        "id": booking.id,
        "event_id": booking.event_id,
        "company_id": booking.company_id,
        "user_id": booking.user_id,
        "buyer_subject": booking.buyer_subject,
        "quantity": booking.quantity,
        "unit_price": booking.unit_price,
        "total_cost": booking.total_cost,
        "currency": booking.currency,
        "status": booking.status,
        "booking_time": booking.booking_time,
        "expires_at": booking.expires_at,
        "updated_at": booking.updated_at,
        "history": list(booking.history),
        "payment_attempts": booking.payment_attempts,
        "latest_payment_id": booking.latest_payment_id,
        "paid_by": booking.paid_by,
    }


def _from_doc(doc: dict[str, Any]) -> Booking:
    return Booking(
        id=doc["id"],
        event_id=doc["event_id"],
        company_id=doc["company_id"],
        user_id=doc["user_id"],
        buyer_subject=doc["buyer_subject"],
        quantity=doc["quantity"],
        unit_price=doc["unit_price"],
        total_cost=doc["total_cost"],
        currency=doc["currency"],
        status=doc["status"],
        booking_time=as_utc(doc["booking_time"]),
        expires_at=as_utc(doc["expires_at"]),
        updated_at=as_utc(doc["updated_at"]),
        history=tuple(doc.get("history", ())),
        payment_attempts=doc.get("payment_attempts", 0),
        latest_payment_id=doc.get("latest_payment_id"),
        paid_by=doc.get("paid_by"),
    )
