"""PromoCodeDAL (an event's promo codes) and PromoUseDAL (the use slots of each code).

A code is `events/E/promo_codes/c-CODE`. Its uses are claim documents exactly like ticket slots
(InventoryDAL), in `events/E/promo_codes/c-CODE/uses`: a booking that carries the code creates one
use claim in the commit that creates the booking, so no document is written by two bookings and
`max_uses` is the size of the slot range, as capacity is for tickets (docs/promo-codes.md).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from google.cloud import firestore

from shared.dal.base import as_utc, revision
from shared.dal.inventory import InventoryDAL, slot_id
from shared.dal.records import Revision, UnitOfWork
from shared.promo_models import PromoCode, doc_id


class PromoCodeDAL:
    def __init__(self, client: firestore.Client) -> None:
        self.client = client

    def codes(self, event_id: str) -> firestore.CollectionReference:
        return self.client.collection("events").document(event_id).collection("promo_codes")

    def path(self, event_id: str, code: str) -> str:
        return f"events/{event_id}/promo_codes/{doc_id(code)}"

    def get(self, event_id: str, code: str) -> tuple[PromoCode, Revision] | None:
        snap = self.codes(event_id).document(doc_id(code)).get()
        return (_from_doc(snap.to_dict() or {}), revision(snap)) if snap.exists else None

    def page(self, event_id: str, limit: int, after: str | None) -> tuple[list[PromoCode], str | None]:
        """The event's codes in code order, and the code the next page starts after."""
        query = self.codes(event_id).order_by("code")
        if after:
            query = query.start_after({"code": after})
        found = [_from_doc(s.to_dict() or {}) for s in query.limit(limit + 1).stream()]
        more = len(found) > limit
        return found[:limit], found[limit - 1].code if more else None

    def stage_create(self, uow: UnitOfWork, promo: PromoCode) -> None:
        uow.create(self.path(promo.event_id, promo.code), _to_doc(promo))

    def stage_update(self, uow: UnitOfWork, promo: PromoCode, since: Revision) -> None:
        uow.update(self.path(promo.event_id, promo.code), _to_doc(promo), since=since)


class PromoUseDAL(InventoryDAL):
    """The use slots of one code; `pool` is `pool_of(event_id, code)`."""

    def slots(self, event_id: str) -> firestore.CollectionReference:
        event, code = event_id.split(":", 1)
        return (
            self.client.collection("events")
            .document(event)
            .collection("promo_codes")
            .document(doc_id(code))
            .collection("uses")
        )

    def ref(self, event_id: str, n: int) -> firestore.DocumentReference:
        return self.slots(event_id).document(slot_id(event_id, n))

    def path(self, event_id: str, n: int) -> str:
        event, code = event_id.split(":", 1)
        return f"events/{event}/promo_codes/{doc_id(code)}/uses/{slot_id(event_id, n)}"

    def live(self, pool: str, now: datetime) -> int:
        """Uses that count: claims of pending (unexpired) or confirmed bookings."""
        return self.taken(pool, now)


def _to_doc(promo: PromoCode) -> dict[str, Any]:
    return {
        "event_id": promo.event_id,
        "company_id": promo.company_id,
        "code": promo.code,
        "percent_off": promo.percent_off,
        "amount_off": promo.amount_off,
        "max_uses": promo.max_uses,
        "valid_until": promo.valid_until,
        "active": promo.active,
        "created_at": promo.created_at,
        "updated_at": promo.updated_at,
        "seq": promo.seq,
    }


def _from_doc(doc: dict[str, Any]) -> PromoCode:
    return PromoCode(
        event_id=doc["event_id"],
        company_id=doc["company_id"],
        code=doc["code"],
        percent_off=doc.get("percent_off"),
        amount_off=doc.get("amount_off"),
        max_uses=doc.get("max_uses"),
        valid_until=as_utc(doc["valid_until"]) if doc.get("valid_until") is not None else None,
        active=bool(doc.get("active", True)),
        created_at=as_utc(doc["created_at"]),
        updated_at=as_utc(doc["updated_at"]),
        seq=doc.get("seq", 1),
    )
