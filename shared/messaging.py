"""Pub/Sub publishing (client created on first use) and the outbox relay that uses it."""

from __future__ import annotations

import json
import logging
import threading
from typing import Any, Protocol

from shared.core.settings import Settings
from shared.dal.records import OutboxMessage
from shared.models import utcnow

log = logging.getLogger("messaging")
PAYMENT_EVENTS = "payment-events"
BOOKING_CONFIRMED = "booking-confirmed"
TOPICS = (PAYMENT_EVENTS, BOOKING_CONFIRMED)


class Publisher(Protocol):
    def publish(self, topic: str, data: dict[str, Any]) -> None: ...


class PubSubPublisher:
    def __init__(self, settings: Settings) -> None:
        self.project = settings.gcp_project
        self._client: Any = None
        self._lock = threading.Lock()

    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                from google.cloud import pubsub_v1  # type: ignore[attr-defined]

                self._client = pubsub_v1.PublisherClient()
            return self._client

    def publish(self, topic: str, data: dict[str, Any]) -> None:
        path = f"projects/{self.project}/topics/{topic}"
        future = self.client().publish(path, json.dumps(data, sort_keys=True).encode())
        future.result(timeout=10)


class OutboxStore(Protocol):
    def mark_published(self, message_id: str, now: Any) -> None: ...
    def unpublished(self, older_than: Any, limit: int) -> list[OutboxMessage]: ...


class OutboxRelay:
    def __init__(self, store: OutboxStore, publisher: Publisher, skip_after_commit: bool = False) -> None:
        self.store = store
        self.publisher = publisher
        self.skip_after_commit = skip_after_commit  # fault injection (tests): die before publishing

    def deliver(self, messages: list[OutboxMessage]) -> int:
        """Publish right after the commit; a failure is left for the sweep (logged, never raised)."""
        if self.skip_after_commit:
            return 0
        return self.deliver_pending(messages)

    def deliver_pending(self, messages: list[OutboxMessage]) -> int:
        """Publish and mark each message (the sweep's path, and the normal one)."""
        delivered = 0
        for msg in messages:
            try:
                self.publisher.publish(msg.topic, {**msg.data, "message_id": msg.id})
                self.store.mark_published(msg.id, utcnow())
                delivered += 1
            except Exception:
                log.warning("outbox message %s to %s not published yet; the sweep will retry", msg.id, msg.topic)
        return delivered
