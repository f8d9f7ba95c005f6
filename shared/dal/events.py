"""EventDAL: events as Firestore documents, and the indexed queries that search them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time
from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from shared.dal.base import Dal, as_utc, revision
from shared.dal.records import EventQuery, Revision, UnitOfWork
from shared.models import Event

SCAN_CHUNK = 50


class EventDAL(Dal):
    collection = "events"

    def get(self, event_id: str) -> Event | None:
        snap = self.ref(event_id).get()
        return _from_doc(snap.to_dict() or {}) if snap.exists else None

    def get_for_update(self, event_id: str) -> tuple[Event, Revision] | None:
        """The event and its revision: an update staged with it fails if anyone saved it since."""
        snap = self.ref(event_id).get()
        return (_from_doc(snap.to_dict() or {}), revision(snap)) if snap.exists else None

    def stage_create(self, uow: UnitOfWork, event: Event) -> None:
        uow.create(self.path(event.id), _to_doc(event))

    def stage_update(self, uow: UnitOfWork, event: Event, since: Revision) -> None:
        uow.update(self.path(event.id), _to_doc(event), since=since)

    def scan_published(
        self, query: EventQuery, matches: Callable[[Event], bool], limit: int, budget: int
    ) -> tuple[list[Event], tuple[datetime, str] | None]:
        """Published events in start order that pass `matches`, reading at most `budget` documents.

        Returns the page and the cursor to continue from (None when nothing is left).
        """
        base = self._published_query(query)
        found: list[Event] = []
        cursor = query.after
        scanned = 0
        while scanned < budget:
            chunk = min(SCAN_CHUNK, budget - scanned)
            page_query = base.limit(chunk)
            if cursor:
                page_query = page_query.start_after({"starts_at": cursor[0], "__name__": self.ref(cursor[1])})
            docs = list(page_query.stream())
            for snap in docs:
                scanned += 1
                event = _from_doc(snap.to_dict() or {})
                cursor = (event.starts_at, event.id)
                if matches(event):
                    found.append(event)
                    if len(found) == limit:
                        return found, cursor
            if len(docs) < chunk:
                return found, None
        return found, cursor

    def _published_query(self, query: EventQuery) -> firestore.Query:
        q = self.client.collection(self.collection).where(filter=FieldFilter("status", "==", "published"))
        if query.geohash_precision is not None:
            q = q.where(filter=FieldFilter(f"geohash_{query.geohash_precision}", "in", list(query.geohash_cells)))
        elif query.token is not None:
            q = q.where(filter=FieldFilter("search_tokens", "array_contains", query.token))
        q = q.where(filter=FieldFilter("starts_at", ">=", query.starts_from))
        if query.starts_before is not None:
            q = q.where(filter=FieldFilter("starts_at", "<", query.starts_before))
        return q.order_by("starts_at").order_by("__name__")


def _to_doc(event: Event) -> dict[str, Any]:
    doc = {
        "id": event.id,
        "company_id": event.company_id,
        "name": event.name,
        "description": event.description,
        "event_date": event.event_date.isoformat(),
        "event_time": event.event_time.strftime("%H:%M"),
        "timezone": event.timezone,
        "starts_at": event.starts_at,
        "venue": event.venue,
        "location_lat": event.location_lat,
        "location_long": event.location_long,
        "capacity": event.capacity,
        "base_price": event.base_price,
        "surge_price": event.surge_price,
        "surge_threshold": event.surge_threshold,
        "currency": event.currency,
        "max_tickets_per_booking": event.max_tickets_per_booking,
        "status": event.status,
        "version": event.version,
        "created_at": event.created_at,
        "updated_at": event.updated_at,
        "search_tokens": event.search_tokens(),
        "cancellation_reason": event.cancellation_reason,
        "cancelled_at": event.cancelled_at,
    }
    doc.update({f"geohash_{p}": cell for p, cell in event.geohashes().items()})
    return doc


def _from_doc(doc: dict[str, Any]) -> Event:
    return Event(
        id=doc["id"],
        company_id=doc["company_id"],
        name=doc["name"],
        description=doc.get("description"),
        event_date=date.fromisoformat(doc["event_date"]),
        event_time=time.fromisoformat(doc["event_time"]),
        timezone=doc["timezone"],
        venue=doc["venue"],
        location_lat=doc["location_lat"],
        location_long=doc["location_long"],
        capacity=doc["capacity"],
        base_price=doc["base_price"],
        surge_price=doc["surge_price"],
        surge_threshold=doc["surge_threshold"],
        currency=doc["currency"],
        max_tickets_per_booking=doc["max_tickets_per_booking"],
        status=doc["status"],
        version=doc["version"],
        created_at=as_utc(doc["created_at"]),
        updated_at=as_utc(doc["updated_at"]),
        cancellation_reason=doc.get("cancellation_reason"),
        cancelled_at=as_utc(doc["cancelled_at"]) if doc.get("cancelled_at") else None,
    )
