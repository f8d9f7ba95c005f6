"""BookingDAL: bookings, and the per-buyer pending holds of an event (`events/<id>/buyers/<user>`).

The buyer's pending-holds document is guarded by its update time, which enforces the per-buyer
cap; it is created by the buyer's first hold, so two first holds cannot both pass. Every write is
staged into a unit of work that commits it together with the claims, the idempotency record and
the domain event of the same change.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter
from google.cloud.firestore_v1.field_path import FieldPath

from shared.dal.base import Dal, as_utc, revision
from shared.dal.records import BuyerHolds, Revision, UnitOfWork
from shared.models import Booking


class BookingDAL(Dal):
    collection = "bookings"

    # ---- reads ----------------------------------------------------------------------------------

    def get(self, booking_id: str) -> tuple[Booking, Revision] | None:
        """The booking and its revision (the precondition for changing it)."""
        snap = self.ref(booking_id).get()
        return (_from_doc(snap.to_dict() or {}), revision(snap)) if snap.exists else None

    def buyer_holds(self, event_id: str, user_id: str) -> BuyerHolds:
        return _buyer_holds(self.client.document(self._buyer_path(event_id, user_id)).get())

    def buyer_holds_of(self, event_id: str, user_ids: list[str]) -> dict[str, BuyerHolds]:
        """Several buyers' pending holds of one event in one read (the waitlist's offers)."""
        refs = [self.client.document(self._buyer_path(event_id, u)) for u in user_ids]
        found = {s.reference.id: _buyer_holds(s) for s in self.client.get_all(refs)} if refs else {}
        return {u: found.get(u, BuyerHolds()) for u in user_ids}

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

    # ---- writes staged into a unit of work -----------------------------------------------------

    def stage_create(self, uow: UnitOfWork, booking: Booking, buyer: BuyerHolds) -> None:
        """A new hold: the booking, and the buyer's pending and recent holds if they are still as
        read (`buyer.recent`: the holds still inside the rate window; this one is added)."""
        uow.create(self.path(booking.id), _to_doc(booking))
        pending = {booking.id: booking.expires_at} if booking.status == "pending_payment" else {}
        doc = {
            "pending": {**buyer.active(booking.booking_time), **pending},
            "recent": [*buyer.recent, booking.booking_time],
        }
        buyer_path = self._buyer_path(booking.event_id, booking.user_id)
        if buyer.update_time is None:
            uow.create(buyer_path, doc)
        else:
            uow.update(buyer_path, doc, since=buyer.update_time)

    def stage_update(self, uow: UnitOfWork, before: Booking, after: Booking, since: Revision) -> None:
        """Store the booking's new state if nobody changed it since it was read (`since`), and keep
        the buyer's pending holds in step: a booking that stops waiting for payment leaves them, an
        extended hold moves its end there too."""
        uow.update(self.path(after.id), _to_doc(after), since=since)
        entry = FieldPath("pending", after.id).to_api_repr()
        buyer_path = self._buyer_path(after.event_id, after.user_id)
        if before.status == "pending_payment" and after.status != "pending_payment":
            uow.update(buyer_path, {entry: firestore.DELETE_FIELD})
        elif after.status == "pending_payment" and after.expires_at != before.expires_at:
            uow.update(buyer_path, {entry: after.expires_at})

    def _buyer_path(self, event_id: str, user_id: str) -> str:
        return f"events/{event_id}/buyers/{user_id}"


def _buyer_holds(snap: Any) -> BuyerHolds:
    if not snap.exists:
        return BuyerHolds()
    doc = snap.to_dict() or {}
    pending = {k: as_utc(v) for k, v in (doc.get("pending") or {}).items()}
    recent = tuple(as_utc(t) for t in doc.get("recent") or ())
    return BuyerHolds(pending, revision(snap), recent)


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
        "seq": booking.seq,
        "promo_code": booking.promo_code,
        "discount": booking.discount,
        "waitlist_entry_id": booking.waitlist_entry_id,
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
        seq=doc.get("seq", 1),
        promo_code=doc.get("promo_code"),
        discount=doc.get("discount", 0),
        waitlist_entry_id=doc.get("waitlist_entry_id"),
    )
