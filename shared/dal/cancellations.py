"""CancellationDAL: what a cancelled event still has to settle, read from the bookings and payments
it owns (this DAL writes nothing: each booking and payment changes through its own DAL).

The progress is counted at read time with aggregation queries, all in one read-only snapshot so
that the figures agree with each other: no counter document that every refund would write.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from shared.dal.base import Dal
from shared.dal.records import UnitOfWork

UNSETTLED = ["pending_payment", "confirmed"]


@dataclass(frozen=True)
class CancellationCounts:
    pending_payment: int  # bookings stored as pending (live or past their hold)
    confirmed: int
    refunded: int  # bookings refunded since the cancellation
    refused: int  # confirmed bookings whose refund the provider refused (flagged payments)

    @property
    def refunds_pending(self) -> int:
        return max(self.confirmed - self.refused, 0)

    @property
    def settled(self) -> bool:
        """Nothing left to do: no pending booking, and every confirmed one is a refused refund."""
        return self.pending_payment == 0 and self.confirmed <= self.refused


OPEN = "open_cancellations"


class CancellationDAL(Dal):
    collection = "bookings"

    def remaining(self, event_id: str, after: str | None, limit: int) -> list[str]:
        """Ids of the event's pending and confirmed bookings in id order, after the id `after`."""
        query = (
            self.client.collection(self.collection)
            .where(filter=FieldFilter("event_id", "==", event_id))
            .where(filter=FieldFilter("status", "in", UNSETTLED))
            .order_by("__name__")
        )
        if after:
            query = query.start_after({"__name__": self.ref(after)})
        return [s.id for s in query.select(["id"]).limit(limit).stream()]

    # ---- the cancellations not finished yet: `open_cancellations/<event>` ----------------------------

    def stage_open(self, uow: UnitOfWork, event_id: str, at: datetime) -> None:
        """Created in the cancel's commit, deleted once it is finished: the sweep's work list (not a
        query over events, which would return old cancellations first and starve the newest)."""
        uow.create(f"{OPEN}/{event_id}", {"event_id": event_id, "cancelled_at": at})

    def open_ones(self, limit: int) -> list[str]:
        return [s.id for s in self.client.collection(OPEN).select([]).limit(limit).stream()]

    def close(self, event_id: str) -> None:
        self.client.collection(OPEN).document(event_id).delete()

    def counts(self, event_id: str, cancelled_at: datetime, refused_note: str) -> CancellationCounts:
        bookings = self.client.collection(self.collection).where(filter=FieldFilter("event_id", "==", event_id))
        payments = self.client.collection("payments").where(filter=FieldFilter("event_id", "==", event_id))

        def status(query: Any, value: str) -> Any:
            return query.where(filter=FieldFilter("status", "==", value))

        queries: dict[str, Any] = {
            "pending_payment": status(bookings, "pending_payment").count(alias="v"),
            "confirmed": status(bookings, "confirmed").count(alias="v"),
            "refunded": status(bookings, "refunded")
            .where(filter=FieldFilter("updated_at", ">=", cancelled_at))
            .count(alias="v"),
            "refused": status(payments, "succeeded")
            .where(filter=FieldFilter("attention", "==", refused_note))
            .count(alias="v"),
        }

        @firestore.transactional
        def read(transaction: firestore.Transaction) -> dict[str, int]:
            return {name: _value(query.get(transaction=transaction)) for name, query in queries.items()}

        figures: dict[str, int] = read(self.client.transaction(read_only=True))
        return CancellationCounts(**figures)


def _value(result: Any) -> int:
    return int(result[0][0].value or 0)
