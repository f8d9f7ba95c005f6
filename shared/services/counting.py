"""How many tickets of an event are taken, as the hold path needs it: for the price and for a fast
sold-out answer.

The count query (an aggregation over the claims) runs at most every MAX_AGE seconds per event in a
process, and only one at a time: concurrent holds that find the count stale use the last one while
a single thread refreshes it (or wait for that thread when there is none yet). Holds and releases
this process makes in between are added to the last count. So in a rush the count costs a few
queries a second instead of one per attempt, and a sold-out event answers without touching
Firestore. The claim commit stays the only arbiter of who gets a ticket; displays
(`available_tickets`) always run the query.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

MAX_AGE = 0.25


@dataclass
class _Count:
    value: int | None = None
    at: float = float("-inf")
    counted_at: datetime | None = None  # the instant the count query judged holds at
    refreshing: threading.Event | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class TakenCounter:
    def __init__(self, count: Callable[[str, datetime], int], max_age: float = MAX_AGE) -> None:
        self.count = count
        self.max_age = max_age
        self._counts: dict[str, _Count] = {}
        self._lock = threading.Lock()

    def fresh(self, event_id: str) -> int | None:
        """The last count if it is recent enough, else None (then call `taken`)."""
        known = self._entry(event_id)
        with known.lock:
            if known.value is not None and time.monotonic() - known.at < self.max_age:
                return known.value
        return None

    def taken(self, event_id: str, now: datetime) -> int:
        """A count at most MAX_AGE old, or the last one while another thread refreshes it."""
        known = self._entry(event_id)
        with known.lock:
            if known.value is not None and time.monotonic() - known.at < self.max_age:
                return known.value
            if known.refreshing is not None:
                waiting = known.refreshing
                if known.value is not None:
                    return known.value  # stale by at most one refresh: good enough while it runs
            else:
                waiting = None
                known.refreshing = threading.Event()
        if waiting is not None:
            waiting.wait(timeout=5)
            return self.taken(event_id, now) if known.value is None else known.value
        return self._refresh(known, event_id, now)

    def _refresh(self, known: _Count, event_id: str, now: datetime) -> int:
        started = time.monotonic()
        try:
            value = self.count(event_id, now)
            with known.lock:
                known.value, known.at, known.counted_at = value, started, now
            return value
        finally:
            with known.lock:
                done, known.refreshing = known.refreshing, None
            if done is not None:
                done.set()

    def add(self, event_id: str, quantity: int) -> None:
        """This process took (positive) or gave back (negative) tickets since the last count."""
        known = self._entry(event_id)
        with known.lock:
            if known.value is not None:
                known.value = max(known.value + quantity, 0)

    def released(self, event_id: str, held_until: list[datetime | None]) -> None:
        """This process gave back claims held until these instants (None: sold). Only those the
        count included come off it: a hold that had run out when the count ran was not in it."""
        known = self._entry(event_id)
        with known.lock:
            if known.value is None:
                return
            counted = [u for u in held_until if u is None or known.counted_at is None or u > known.counted_at]
            known.value = max(known.value - len(counted), 0)

    def forget(self, event_id: str) -> None:
        """A change of this process may or may not have committed (its answer was lost): count again
        before the next use instead of adding a guess."""
        known = self._entry(event_id)
        with known.lock:
            known.at = float("-inf")

    def _entry(self, event_id: str) -> _Count:
        with self._lock:
            return self._counts.setdefault(event_id, _Count())
