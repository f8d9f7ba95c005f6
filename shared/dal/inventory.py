"""InventoryDAL: the tickets of an event as one claim document per ticket slot.

Only the read side lives here for now: how many tickets are taken (sold, or held and unexpired).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter


class InventoryDAL:
    def __init__(self, client: firestore.Client) -> None:
        self.client = client

    def slots(self, event_id: str) -> firestore.CollectionReference:
        return self.client.collection("events").document(event_id).collection("slots")

    def taken(self, event_id: str, now: datetime) -> int:
        """Sold plus unexpired held tickets: one aggregation query, no documents read."""
        query = self.slots(event_id).where(filter=FieldFilter("held_until", ">", now))
        result: Any = query.count(alias="n").get()  # type: ignore[call-arg]
        return int(result[0][0].value)
