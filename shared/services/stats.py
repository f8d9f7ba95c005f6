"""An event's statistics for its organiser's dashboard (API.md, Event statistics)."""

from __future__ import annotations

from typing import Any, Protocol

from shared.core.errors import Forbidden, NotFound
from shared.models import Event, utcnow
from shared.services.identity import Principal


class Figures(Protocol):
    def figures(self, event_id: str, now: Any) -> dict[str, Any]: ...


class EventReader(Protocol):
    def get(self, event_id: str) -> Event | None: ...


class EventStats:
    def __init__(self, figures: Figures, events: EventReader) -> None:
        self.store = figures
        self.events = events  # the stored event, not a cache: the capacity is exact too

    def of(self, principal: Principal, event_id: str) -> dict[str, Any]:
        """Exact at the read: one snapshot; a pending booking past its hold counts as expired."""
        event = self.events.get(event_id)
        if event is None or not (event.is_published or principal.manages(event.company_id)):
            raise NotFound("event not found")
        if not principal.manages(event.company_id):
            raise Forbidden("only the event's company admins see its statistics")
        f = self.store.figures(event_id, utcnow())
        sold, held = f["sold"], max(f["taken"] - f["sold"], 0)
        lapsed = max(f["bookings_pending_payment"] - f["pending_live"], 0)
        return {
            "capacity": f["capacity"],  # from the same snapshot as every other figure
            "sold": sold,
            "held": held,
            "available": max(f["capacity"] - sold - held, 0),
            "checked_in": f["checked_in"],
            "bookings": {
                "pending_payment": f["pending_live"],
                "confirmed": f["bookings_confirmed"],
                "expired": f["bookings_expired"] + lapsed,
                "cancelled": f["bookings_cancelled"],
                "refunded": f["bookings_refunded"],
            },
            "revenue": f["revenue"],
            "refunded": f["refunded"],
            "currency": event.currency,
        }
