"""Pub/Sub publishing (client created on first use) and the relay of the domain-event stream."""

from __future__ import annotations

import json
import logging
import threading
from typing import Any, Protocol

from shared.core import faults
from shared.core.settings import Settings
from shared.domain_events import DomainEvent
from shared.models import utcnow

log = logging.getLogger("messaging")


class Publisher(Protocol):
    def publish(self, topic: str, data: dict[str, Any]) -> None: ...
    def publish_all(self, messages: list[tuple[str, dict[str, Any]]]) -> list[bool]: ...


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
        if not self.publish_all([(topic, data)])[0]:
            raise RuntimeError(f"publishing to {topic} failed")

    def publish_all(self, messages: list[tuple[str, dict[str, Any]]]) -> list[bool]:
        """Publish every message at once and wait for all: whether each was accepted, in order. The
        client batches them, so a commit of 25 offers costs one round trip, not 25."""
        sent = []
        for topic, data in messages:
            path = f"projects/{self.project}/topics/{topic}"
            body = json.dumps(data, sort_keys=True).encode()
            sent.append((path, body, self.client().publish(path, body)))
        accepted = []
        for path, body, future in sent:
            try:
                future.result(timeout=10)
            except Exception:
                log.warning("publishing to %s failed", path.rsplit("/", 1)[-1])
                accepted.append(False)
                continue
            accepted.append(True)
            self._maybe_duplicate(path, body)
        return accepted

    def _maybe_duplicate(self, path: str, body: bytes) -> None:
        """Fault injection (local and test): one or two more copies, up to 3 s later, so they
        arrive after messages published meanwhile (duplicated and out of order)."""
        injected = faults.current()
        if not injected.hit("publish_duplicate"):
            return
        for _ in range(round(injected.uniform("publish_duplicate", 1, 2))):
            delay = injected.uniform("publish_duplicate", 0.2, 3.0)
            later = threading.Timer(delay, self.client().publish, (path, body))
            later.daemon = True
            later.start()


class StreamStore(Protocol):
    def mark_all_published(self, event_ids: list[str], now: Any) -> None: ...
    def unpublished(self, older_than: Any, limit: int) -> list[DomainEvent]: ...


class OutboxRelay:
    """Relays committed domain events that have topics to Pub/Sub: right after their commit, and
    from the sweep for any whose relay did not happen (the process died in between)."""

    def __init__(self, store: StreamStore, publisher: Publisher, skip_after_commit: bool = False) -> None:
        self.store = store
        self.publisher = publisher
        self.skip_after_commit = skip_after_commit  # fault injection (tests): die before publishing

    def deliver(self, events: list[DomainEvent]) -> int:
        """Publish right after the commit; a failure is left for the sweep (logged, never raised)."""
        if self.skip_after_commit:
            return 0
        return self.deliver_pending(events)

    def deliver_pending(self, events: list[DomainEvent]) -> int:
        """Publish each event to its topics (all at once) and mark the ones fully published in one
        write (the sweep's path, and the normal one)."""
        messages = [(i, topic, event.message()) for i, event in enumerate(events) for topic in event.topics]
        try:
            accepted = self.publisher.publish_all([(topic, data) for _, topic, data in messages])
        except Exception:
            log.warning("%d domain event(s) not published yet; the sweep will retry", len(events))
            return 0
        failed = {i for (i, _, _), ok in zip(messages, accepted, strict=True) if not ok}
        done = [event for i, event in enumerate(events) if i not in failed]
        for i in sorted(failed):
            log.warning("domain event %s (%s) not published yet; the sweep will retry", events[i].id, events[i].action)
        if not done:
            return 0
        try:
            self.store.mark_all_published([event.id for event in done], utcnow())
        except Exception:
            log.warning("%d published domain event(s) not marked; the sweep will publish them again", len(done))
            return 0
        return len(done)
