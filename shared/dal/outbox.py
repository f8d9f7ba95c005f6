"""OutboxDAL: messages to publish, written in the same commit as the change they announce.

After the commit the message is published and marked; if the process dies in between, the sweep
publishes what is left. Consumers are idempotent, so a message published twice is harmless.
"""

from __future__ import annotations

from datetime import datetime

from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from shared.dal.base import Dal, as_utc
from shared.dal.records import OutboxMessage


class OutboxDAL(Dal):
    collection = "outbox"

    def stage(self, writer: firestore.WriteBatch | firestore.Transaction, msg: OutboxMessage) -> None:
        writer.create(
            self.ref(msg.id),
            {"topic": msg.topic, "data": msg.data, "created_at": msg.created_at, "published": False},
        )

    def mark_published(self, message_id: str, now: datetime) -> None:
        self.ref(message_id).update({"published": True, "published_at": now})

    def unpublished(self, older_than: datetime, limit: int) -> list[OutboxMessage]:
        query = (
            self.client.collection(self.collection)
            .where(filter=FieldFilter("published", "==", False))
            .where(filter=FieldFilter("created_at", "<=", older_than))
            .limit(limit)
        )
        return [OutboxMessage(s.id, s.get("topic"), s.get("data"), as_utc(s.get("created_at"))) for s in query.stream()]
