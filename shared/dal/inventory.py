"""InventoryDAL: an event's tickets as one claim document per ticket slot.

Slot n of event E is the document `events/E/slots/<hash(E, n)>` (hashed so that ids are not
sequential). A hold *creates* the claim documents of the slots it takes, in the same batch as the
booking, so two buyers can never take one slot: the second create fails with AlreadyExists and
that buyer retries with other slots. No document is written by more than one hold, so there is
no hot document however many buyers rush one event.

A claim is `held` until `held_until`, `sold` (held_until far in the future), or `retired` (the
slot is above a lowered capacity; held_until absent). Expired holds are taken over with an update
guarded by the claim's update time. "Taken" = claims with held_until > now: one count query.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from shared.dal.base import as_utc, commit, revision
from shared.dal.records import SOLD_UNTIL, Claim, UnitOfWork


def slot_id(event_id: str, n: int) -> str:
    return hashlib.sha256(f"{event_id}:{n}".encode()).hexdigest()[:20]


class InventoryDAL:
    def __init__(self, client: firestore.Client) -> None:
        self.client = client

    def slots(self, event_id: str) -> firestore.CollectionReference:
        return self.client.collection("events").document(event_id).collection("slots")

    def ref(self, event_id: str, n: int) -> firestore.DocumentReference:
        return self.slots(event_id).document(slot_id(event_id, n))

    def taken(self, event_id: str, now: datetime) -> int:
        """Sold plus unexpired held tickets: one aggregation query, no documents read."""
        query = self.slots(event_id).where(filter=FieldFilter("held_until", ">", now))
        result: Any = query.count(alias="n").get()  # type: ignore[call-arg]
        return int(result[0][0].value)

    def claims(self, event_id: str) -> dict[int, Claim]:
        """Every claim document of the event (the slow, authoritative view)."""
        fields = ["n", "state", "booking_id", "held_until"]
        return {c.n: c for c in (_claim(s) for s in self.slots(event_id).select(fields).stream())}

    def claims_of(self, event_id: str, booking_id: str) -> list[Claim]:
        query = self.slots(event_id).where(filter=FieldFilter("booking_id", "==", booking_id))
        return [_claim(s) for s in query.stream()]

    def retired_between(self, event_id: str, low: int, high: int) -> list[Claim]:
        query = self.slots(event_id).where(filter=FieldFilter("n", ">=", low)).where(filter=FieldFilter("n", "<", high))
        return [c for c in (_claim(s) for s in query.stream()) if c.state == "retired"]

    def claims_at(self, event_id: str, numbers: list[int]) -> dict[int, Claim]:
        snaps = self.client.get_all([self.ref(event_id, n) for n in numbers])
        return {c.n: c for c in (_claim(s) for s in snaps if s.exists)}

    # ---- writes staged into a caller's unit of work ---------------------------------------------

    def path(self, event_id: str, n: int) -> str:
        return f"events/{event_id}/slots/{slot_id(event_id, n)}"

    def stage_claim(
        self,
        uow: UnitOfWork,
        event_id: str,
        n: int,
        booking_id: str,
        held_until: datetime,
        over: Claim | None = None,
    ) -> None:
        """Claim slot n: create it, or take over the expired claim `over` if it still is as read."""
        doc = {"n": n, "state": "held", "booking_id": booking_id, "held_until": held_until}
        if over is None:
            uow.create(self.path(event_id, n), doc)
        else:
            uow.update(self.path(event_id, n), doc, since=over.update_time)

    def stage_release(self, uow: UnitOfWork, event_id: str, claim: Claim) -> None:
        uow.delete(self.path(event_id, claim.n), since=claim.update_time)

    def stage_sell(self, uow: UnitOfWork, event_id: str, claim: Claim) -> None:
        uow.update(self.path(event_id, claim.n), {"state": "sold", "held_until": SOLD_UNTIL}, since=claim.update_time)

    def stage_sold(self, uow: UnitOfWork, event_id: str, n: int, booking_id: str, over: Claim | None) -> None:
        """Claim a slot straight as sold (a late payment re-acquiring tickets)."""
        doc = {"n": n, "state": "sold", "booking_id": booking_id, "held_until": SOLD_UNTIL}
        if over is None:
            uow.create(self.path(event_id, n), doc)
        else:
            uow.update(self.path(event_id, n), doc, since=over.update_time)

    def stage_extend(self, uow: UnitOfWork, event_id: str, claim: Claim, held_until: datetime) -> None:
        uow.update(self.path(event_id, claim.n), {"held_until": held_until}, since=claim.update_time)

    # ---- single-purpose commits (lowering and raising capacity) ----------------------------------

    def retire(self, event_id: str, n: int, over: Claim | None = None) -> None:
        """Mark slot n unusable (above a lowered capacity); over: an expired claim to replace."""
        doc = {"n": n, "state": "retired", "booking_id": None, "held_until": None}
        batch = self.client.batch()
        if over is None:
            batch.create(self.ref(event_id, n), doc)
        else:
            batch.update(self.ref(event_id, n), doc, **_unchanged_since(self.client, over))
        commit(batch)

    def retire_all(self, event_id: str, numbers: list[int]) -> None:
        """Retire slots that hold no claim, all in one commit; DocumentExists if any does (the
        caller then retires them one by one)."""
        batch = self.client.batch()
        for n in numbers:
            batch.create(self.ref(event_id, n), {"n": n, "state": "retired", "booking_id": None, "held_until": None})
        commit(batch)

    def remove_all(self, event_id: str, claims: list[Claim]) -> None:
        """Delete claims if every one is still as read, in one commit; ConcurrentUpdate if not."""
        batch = self.client.batch()
        for claim in claims:
            batch.delete(self.ref(event_id, claim.n), **_unchanged_since(self.client, claim))
        commit(batch)

    def remove(self, event_id: str, claim: Claim) -> None:
        """Delete a claim if it is still as read."""
        batch = self.client.batch()
        batch.delete(self.ref(event_id, claim.n), **_unchanged_since(self.client, claim))
        commit(batch)

    def move(self, event_id: str, claim: Claim, to: int) -> None:
        """Move a live claim to the free slot `to`, if it is still as read."""
        doc = {"n": to, "state": claim.state, "booking_id": claim.booking_id, "held_until": claim.held_until}
        batch = self.client.batch()
        batch.create(self.ref(event_id, to), doc)
        batch.delete(self.ref(event_id, claim.n), **_unchanged_since(self.client, claim))
        commit(batch)


def _unchanged_since(client: firestore.Client, claim: Claim) -> dict[str, Any]:
    return {"option": client.write_option(last_update_time=claim.update_time.at)}


def _claim(snap: Any) -> Claim:
    data = snap.to_dict() or {}
    held_until = data.get("held_until")
    return Claim(
        n=int(data["n"]),
        state=str(data.get("state", "held")),
        booking_id=data.get("booking_id"),
        held_until=as_utc(held_until) if held_until is not None else None,
        update_time=revision(snap),
    )
