"""How many tickets of an event are taken, as the hold path needs it: for the price and for a fast
sold-out answer.

The count query (an aggregation over the claims) runs at most every MAX_AGE seconds per event in a
process; holds and releases this process makes in between are added to the last count. So in a
rush the count costs a few queries a second instead of one per attempt, and a sold-out event
answers without touching Firestore. The claim commit stays the only arbiter of who gets a ticket;
displays (`available_tickets`) always run the query.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

MAX_AGE = 0.25


@dataclass
class _Count:
    value: int
    at: float


class TakenCounter:
    def __init__(self, count: Callable[[str, datetime], int], max_age: float = MAX_AGE) -> None:
        self.count = count
        self.max_age = max_age
        self._counts: dict[str, _Count] = {}
        self._lock = threading.Lock()

    def fresh(self, event_id: str) -> int | None:
        """The estimate if it is recent enough, else None (then call `refresh`)."""
        with self._lock:
            known = self._counts.get(event_id)
            if known is not None and time.monotonic() - known.at < self.max_age:
                return known.value
        return None

    def refresh(self, event_id: str, now: datetime) -> int:
        started = time.monotonic()
        value = self.count(event_id, now)
        with self._lock:
            self._counts[event_id] = _Count(value, started)
        return value

    def taken(self, event_id: str, now: datetime) -> int:
        fresh = self.fresh(event_id)
        return fresh if fresh is not None else self.refresh(event_id, now)

    def add(self, event_id: str, quantity: int) -> None:
        """This process took (positive) or gave back (negative) tickets since the last count."""
        with self._lock:
            known = self._counts.get(event_id)
            if known is not None:
                known.value = max(known.value + quantity, 0)
