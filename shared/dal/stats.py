"""StatsDAL: an event's figures from aggregation queries, read together in one read-only transaction.

Each figure is a count or a sum that Firestore computes from its indexes (a dashboard that polls
reads no booking documents, and costs one read per 1,000 index entries), and all of them come
from the same snapshot, so they agree with each other at the instant of the read.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from shared.dal.base import Dal
from shared.models import BookingStatus

STATUSES: tuple[BookingStatus, ...] = ("pending_payment", "confirmed", "expired", "cancelled", "refunded")


class StatsDAL(Dal):
    collection = "events"

    def figures(self, event_id: str, now: datetime) -> dict[str, Any]:
        """Raw figures: the capacity, sold and taken slots, bookings per stored status (and pending
        ones still live), checked-in tickets, succeeded and refunded amounts of booked payments."""
        slots = self.client.collection("events").document(event_id).collection("slots")
        bookings = self.client.collection("bookings").where(filter=FieldFilter("event_id", "==", event_id))
        payments = self.client.collection("payments").where(filter=FieldFilter("event_id", "==", event_id))
        tickets = self.client.collection("tickets").where(filter=FieldFilter("event_id", "==", event_id))

        booked = FieldFilter("booked", "==", True)

        def status(query: Any, value: str) -> Any:
            return query.where(filter=FieldFilter("status", "==", value))

        queries: dict[str, Any] = {
            "sold": slots.where(filter=FieldFilter("state", "==", "sold")).count(alias="v"),
            "taken": slots.where(filter=FieldFilter("held_until", ">", now)).count(alias="v"),
            "pending_live": status(bookings, "pending_payment")
            .where(filter=FieldFilter("expires_at", ">", now))
            .count(alias="v"),
            "checked_in": status(tickets, "checked_in").count(alias="v"),
            # Money that bought a booking (`booked`): not the duplicates and late payments that were,
            # or are being, refunded automatically.
            "revenue": status(payments, "succeeded").where(filter=booked).sum("amount", alias="v"),
            "refunded": status(payments, "refunded").where(filter=booked).sum("amount", alias="v"),
            **{f"bookings_{s}": status(bookings, s).count(alias="v") for s in STATUSES},
        }

        event_ref = self.client.collection("events").document(event_id)

        @firestore.transactional
        def read(transaction: firestore.Transaction) -> dict[str, Any]:
            figures = {name: _value(query.get(transaction=transaction)) for name, query in queries.items()}
            event = event_ref.get(transaction=transaction).to_dict() or {}
            return {**figures, "capacity": int(event.get("capacity", 0))}

        figures: dict[str, Any] = read(self.client.transaction(read_only=True))
        return figures


def _value(result: Any) -> int:
    value = result[0][0].value
    return int(value or 0)
