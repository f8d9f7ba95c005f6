"""WaitlistDAL: entries (`waitlist/<id>`), and the membership that keeps one live entry per buyer.

`events/<event>/waitlist_members/<user>` exists while the buyer's entry for the event is live
(waiting or offered): a join *creates* it, so two joins of one buyer cannot both pass, and the
commit that ends the entry deletes it. The line is the event's waiting entries in join order
(`created_at`, then id): one indexed query, no document that every join writes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from shared.dal.base import Dal, as_utc, revision
from shared.dal.records import Revision, UnitOfWork
from shared.waitlist_models import WaitlistEntry

_INSTANTS = ("created_at", "updated_at", "offer_expires_at", "offered_at", "ended_at")


class WaitlistDAL(Dal):
    collection = "waitlist"

    def get(self, entry_id: str) -> tuple[WaitlistEntry, Revision] | None:
        snap = self.ref(entry_id).get()
        return (_from_doc(snap.to_dict() or {}), revision(snap)) if snap.exists else None

    def line(self, event_id: str, limit: int) -> list[tuple[WaitlistEntry, Revision]]:
        """The first `limit` waiting entries of the event, in join order."""
        query = (
            self._of_event(event_id)
            .where(filter=FieldFilter("status", "==", "waiting"))
            .order_by("created_at")
            .order_by("__name__")
            .limit(limit)
        )
        return [(_from_doc(s.to_dict() or {}), revision(s)) for s in query.stream()]

    def is_member(self, event_id: str, user_id: str) -> bool:
        """Whether the buyer has a live (waiting or offered) entry for the event."""
        return bool(self.client.document(self._member_path(event_id, user_id)).get().exists)

    def waiting(self, event_id: str) -> int:
        """How many entries of the event wait: one aggregation query."""
        query = self._of_event(event_id).where(filter=FieldFilter("status", "==", "waiting"))
        result: Any = query.count(alias="n").get()  # type: ignore[call-arg]
        return int(result[0][0].value)

    def events_with_waiters(self, limit: int) -> list[str]:
        """Up to `limit` distinct events that have waiting entries (one small query each, in event
        id order: a long line of one event does not hide the others)."""
        waiting = (
            self.client.collection(self.collection)
            .where(filter=FieldFilter("status", "==", "waiting"))
            .order_by("event_id")
            .select(["event_id"])
            .limit(1)
        )
        found: list[str] = []
        while len(found) < limit:
            query = waiting.start_after({"event_id": found[-1]}) if found else waiting
            snaps = list(query.stream())
            if not snaps:
                break
            found.append(str((snaps[0].to_dict() or {}).get("event_id")))
        return found

    def page(
        self, field_name: str, value: str, limit: int, after: tuple[datetime, str] | None, newest_first: bool
    ) -> tuple[list[WaitlistEntry], tuple[datetime, str] | None]:
        """Entries where `field_name == value` (the buyer's newest first; the event's in line order)."""
        direction = firestore.Query.DESCENDING if newest_first else firestore.Query.ASCENDING
        query = (
            self.client.collection(self.collection)
            .where(filter=FieldFilter(field_name, "==", value))
            .order_by("created_at", direction=direction)
            .order_by("__name__", direction=direction)
        )
        if after:
            query = query.start_after({"created_at": after[0], "__name__": self.ref(after[1])})
        found = [_from_doc(s.to_dict() or {}) for s in query.limit(limit + 1).stream()]
        more, found = len(found) > limit, found[:limit]
        return found, (found[-1].created_at, found[-1].id) if more and found else None

    # ---- writes staged into a unit of work -----------------------------------------------------

    def stage_join(self, uow: UnitOfWork, entry: WaitlistEntry) -> None:
        uow.create(self.path(entry.id), _to_doc(entry))
        uow.create(self._member_path(entry.event_id, entry.user_id), {"entry_id": entry.id})

    def stage_update(self, uow: UnitOfWork, before: WaitlistEntry, after: WaitlistEntry, since: Revision) -> None:
        """The entry's new state if unchanged since read; an entry that ends gives up its membership
        (only then: an expired entry fulfilled late must not touch the buyer's next entry's)."""
        uow.update(self.path(after.id), _to_doc(after), since=since)
        if before.live and not after.live:
            uow.delete(self._member_path(after.event_id, after.user_id))

    def _of_event(self, event_id: str) -> firestore.Query:
        return self.client.collection(self.collection).where(filter=FieldFilter("event_id", "==", event_id))

    def _member_path(self, event_id: str, user_id: str) -> str:
        return f"events/{event_id}/waitlist_members/{user_id}"


def _to_doc(entry: WaitlistEntry) -> dict[str, Any]:
    return dict(entry.__dict__)


def _from_doc(doc: dict[str, Any]) -> WaitlistEntry:
    fields: dict[str, Any] = {k: (as_utc(v) if k in _INSTANTS and v is not None else v) for k, v in doc.items()}
    return WaitlistEntry(**fields)
