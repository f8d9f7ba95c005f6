"""DomainEventDAL: the stream of domain events (collection `domain_events`), its only writer.

Records have random ids (no hot key range) and are never edited, except to mark them published
to Pub/Sub. The audit log reads them per ticketed event, newest first. One event is carried by the
document it creates instead of a record of its own: `booking.held`, inside the booking (the hold
rush is the hottest commit, and one document fewer there is worth a merged read here).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from shared.dal.base import Dal, as_utc
from shared.dal.records import UnitOfWork
from shared.domain_events import Actor, DomainEvent

CARRIED = "domain_event"  # the field of a document that carries the event of its own creation
CARRIERS = "bookings"  # the collection whose documents carry one (`booking.held`, id = booking id)


class DomainEventDAL(Dal):
    collection = "domain_events"

    def stage(self, uow: UnitOfWork, event: DomainEvent) -> None:
        uow.create(f"{self.collection}/{event.id}", _to_doc(event))

    def mark_all_published(self, event_ids: list[str], now: datetime) -> None:
        """One batch for a commit's events (a batch takes 500 writes; a commit relays far fewer)."""
        for start in range(0, len(event_ids), 500):
            batch = self.client.batch()
            for event_id in event_ids[start : start + 500]:
                batch.update(self.ref(event_id), {"relay_due": firestore.DELETE_FIELD, "published_at": now})
            batch.commit()

    def unpublished(self, older_than: datetime, limit: int) -> list[DomainEvent]:
        """Events whose relay to Pub/Sub did not happen after their commit (the sweep's work)."""
        query = (
            self.client.collection(self.collection)
            .where(filter=FieldFilter("relay_due", "<=", older_than))
            .limit(limit)
        )
        return [_from_doc(s.to_dict() or {}) for s in query.stream()]

    def carried(self, event: DomainEvent) -> dict[str, Any]:
        """The field that carries `event` inside the document whose creation it records (a hold's
        booking: one write fewer in the hottest commit). The stream reads it from there."""
        return {CARRIED: _to_doc(event)}

    def of_event(
        self, event_id: str, limit: int, after: tuple[datetime, str] | None
    ) -> tuple[list[DomainEvent], tuple[datetime, str] | None]:
        """The stream of one ticketed event, newest first, and the cursor of the next page: its own
        records merged with the events that bookings carry (ordered by time, then id, in both)."""
        own = self._newest(self.collection, "at", event_id, limit, after)
        carried = self._newest(CARRIERS, "booking_time", event_id, limit, after)
        found = sorted(own + carried, key=lambda e: (e.at, e.id), reverse=True)
        page = found[:limit]
        return page, (page[-1].at, page[-1].id) if len(found) > limit and page else None

    def _newest(
        self, collection: str, time_field: str, event_id: str, limit: int, after: tuple[datetime, str] | None
    ) -> list[DomainEvent]:
        query = (
            self.client.collection(collection)
            .where(filter=FieldFilter("event_id", "==", event_id))
            .order_by(time_field, direction=firestore.Query.DESCENDING)
            .order_by("__name__", direction=firestore.Query.DESCENDING)
        )
        if after:
            query = query.start_after({time_field: after[0], "__name__": self.client.document(collection, after[1])})
        docs = [s.to_dict() or {} for s in query.limit(limit + 1).stream()]
        if collection == self.collection:
            return [_from_doc(d) for d in docs]
        return [_from_doc(d[CARRIED]) for d in docs if CARRIED in d]


def _to_doc(event: DomainEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "event_id": event.event_id,
        "company_id": event.company_id,
        "actor": {"type": event.actor.type, "id": event.actor.id},
        "sequence": event.sequence,
        "at": event.at,
        "changes": event.changes,
        "topics": list(event.topics),
        "data": event.data,
        # Only events with topics carry `relay_due`, and lose it once relayed: the sweep's query
        # then reads a small index, not one that grows (sequentially) with every hold.
        **({"relay_due": event.at} if event.topics else {}),
    }


def _from_doc(doc: dict[str, Any]) -> DomainEvent:
    actor = doc["actor"]
    return DomainEvent(
        id=doc["id"],
        action=doc["action"],
        object_type=doc["object_type"],
        object_id=doc["object_id"],
        event_id=doc["event_id"],
        company_id=doc["company_id"],
        actor=Actor(actor["type"], actor["id"]),
        sequence=int(doc["sequence"]),
        at=as_utc(doc["at"]),
        changes=dict(doc.get("changes") or {}),
        topics=tuple(doc.get("topics") or ()),
        data=dict(doc.get("data") or {}),
    )
