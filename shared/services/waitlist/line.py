"""Whether anyone waits for an event: what a public hold asks before it takes a ticket.

While an entry waits, freed tickets belong to the line: a hold by anyone else answers sold out.
Each process keeps the count of waiting entries per event for at most MAX_AGE seconds (one
aggregation query), and forgets it when this process changes the line. So an entry keeps public
holds away from MAX_AGE after it joined, plus the time of a hold already past this check
(docs/waitlist.md, "The line's fence"); the invariant checker allows exactly that (FENCE).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

MAX_AGE = 0.25
FENCE_SECONDS = 2.0  # MAX_AGE plus a hold's commit, generously: the checker's tolerance


class WaitingLine:
    def __init__(self, count: Callable[[str], int], max_age: float = MAX_AGE) -> None:
        self.count = count
        self.max_age = max_age
        self._seen: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def anyone_waiting(self, event_id: str) -> bool:
        now = time.monotonic()
        with self._lock:
            seen = self._seen.get(event_id)
        if seen is not None and now - seen[0] < self.max_age:
            return seen[1] > 0
        waiting = self.count(event_id)
        with self._lock:
            self._seen[event_id] = (now, waiting)
        return waiting > 0

    def forget(self, event_id: str) -> None:
        with self._lock:
            self._seen.pop(event_id, None)
