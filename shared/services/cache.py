"""A short-lived, per-process cache of events for the hold path.

Every hold needs the event (capacity, prices, limits); in a rush that is the same document read
thousands of times a second. Holds read it through this cache, at most MAX_AGE old. Changes made
in this process are seen at once (`forget`); changes made elsewhere within MAX_AGE. Staleness is
safe for the inventory: a hold that read an old, higher capacity only meets retired slots
(docs/inventory.md); prices and limits are at most MAX_AGE behind.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

from shared.models import Event

MAX_AGE = 1.0


class EventSource(Protocol):
    def get(self, event_id: str) -> Event | None: ...


class CachedEvents:
    def __init__(self, source: EventSource, max_age: float = MAX_AGE, size: int = 1000) -> None:
        self.source = source
        self.max_age = max_age
        self.size = size
        self._entries: dict[str, tuple[float, Event]] = {}
        self._lock = threading.Lock()

    def get(self, event_id: str) -> Event | None:
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(event_id)
        if entry is not None and now - entry[0] < self.max_age:
            return entry[1]
        event = self.source.get(event_id)
        if event is not None:
            with self._lock:
                if len(self._entries) >= self.size:
                    self._entries.clear()
                self._entries[event_id] = (now, event)
        return event

    def forget(self, event_id: str) -> None:
        with self._lock:
            self._entries.pop(event_id, None)
