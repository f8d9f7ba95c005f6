"""Which ticket slots a hold should try to claim.

Each process keeps, per event, what it has learnt about the slots: taken (by its own holds or seen
when a claim collided), in flight (being claimed by one of its threads right now) and expired
(claims whose hold ran out, free to take over). Picking random slots it does not know to be taken
makes collisions rare within a process and across instances; a collision only teaches it more.
When it knows of no free slot it rereads the event's claims once (at most every REFRESH_SECONDS)
before answering sold out, so the sold-out path stays cheap under a rush. A capacity other than
the one of its last reread means the slots above the old one changed (retired or given back): it
rereads at once, so a capacity raised a moment ago is never answered with a sold out.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from shared.dal.records import Claim

REFRESH_SECONDS = 0.25
RANDOM_TRIES = 64


class ClaimReader(Protocol):
    def claims(self, event_id: str) -> dict[int, Claim]: ...
    def claims_at(self, event_id: str, numbers: list[int]) -> dict[int, Claim]: ...


@dataclass
class _EventSlots:
    taken: set[int] = field(default_factory=set)
    expired: dict[int, Claim] = field(default_factory=dict)
    in_flight: set[int] = field(default_factory=set)
    refreshed_at: float = 0.0
    capacity: int | None = None  # the event's capacity when the claims were last read
    lock: threading.Lock = field(default_factory=threading.Lock)


class NoFreeSlots(Exception):
    """Not enough free slots, as far as a fresh read of the claims shows."""


class SlotPicker:
    def __init__(self, reader: ClaimReader, rng: random.Random | None = None) -> None:
        self.reader = reader
        self.rng = rng or random.Random()
        self._events: dict[str, _EventSlots] = {}
        self._lock = threading.Lock()

    def pick(
        self,
        event_id: str,
        capacity: int,
        quantity: int,
        now: datetime,
        reread: bool = False,
        avoid: frozenset[int] = frozenset(),
        fresh: bool = False,
    ) -> list[tuple[int, Claim | None]]:
        """Reserve `quantity` slots in this process; give them back with `done`.

        `reread`: the caller keeps colliding (other processes took what this one thinks is free):
        reread the claims first, at most every REFRESH_SECONDS. `avoid`: slots the caller owns
        already (a late payment's own lapsed claims look free, and must not count twice). `fresh`:
        reread the claims now, whenever they were read last (the waitlist's server, whose process
        did not see the releases it is asked to serve)."""
        slots = self._slots(event_id)
        with slots.lock:
            resized = slots.capacity is not None and slots.capacity != capacity
            if fresh or resized or (reread and time.monotonic() - slots.refreshed_at >= REFRESH_SECONDS):
                self._refresh(event_id, slots, capacity, now)
            picks = self._choose(slots, capacity, quantity, now, avoid)
            if picks is None and time.monotonic() - slots.refreshed_at >= REFRESH_SECONDS:
                self._refresh(event_id, slots, capacity, now)
                picks = self._choose(slots, capacity, quantity, now, avoid)
            if picks is None:
                raise NoFreeSlots()
            slots.in_flight.update(n for n, _ in picks)
            return picks

    def done(self, event_id: str, picks: list[tuple[int, Claim | None]], claimed: bool) -> None:
        slots = self._slots(event_id)
        numbers = [n for n, _ in picks]
        with slots.lock:
            slots.in_flight.difference_update(numbers)
            if claimed:
                slots.taken.update(numbers)
                for n in numbers:
                    slots.expired.pop(n, None)

    def collided(self, event_id: str, picks: list[tuple[int, Claim | None]], now: datetime) -> None:
        """A claim failed: learn what those slots hold now."""
        numbers = [n for n, _ in picks]
        current = self.reader.claims_at(event_id, numbers)
        slots = self._slots(event_id)
        with slots.lock:
            slots.in_flight.difference_update(numbers)
            for n in numbers:
                claim = current.get(n)
                if claim is None:
                    slots.taken.discard(n)
                    slots.expired.pop(n, None)
                elif claim.is_free(now):
                    slots.taken.discard(n)
                    slots.expired[n] = claim
                else:
                    slots.taken.add(n)
                    slots.expired.pop(n, None)

    def released(self, event_id: str, numbers: list[int]) -> None:
        """This process gave slots back (cancel, expiry): they are free again."""
        slots = self._slots(event_id)
        with slots.lock:
            slots.taken.difference_update(numbers)

    # ---- internals ------------------------------------------------------------------------------

    def _slots(self, event_id: str) -> _EventSlots:
        with self._lock:
            return self._events.setdefault(event_id, _EventSlots())

    def _choose(
        self, slots: _EventSlots, capacity: int, quantity: int, now: datetime, avoid: frozenset[int] = frozenset()
    ) -> list[tuple[int, Claim | None]] | None:
        busy = slots.taken | slots.in_flight | avoid
        chosen: dict[int, Claim | None] = {}
        free_estimate = capacity - len([n for n in busy if n < capacity])
        tries = RANDOM_TRIES if free_estimate > 0 else 0
        while len(chosen) < quantity and tries > 0:
            n = self.rng.randrange(capacity)
            if n not in busy and n not in chosen and n not in slots.expired:
                chosen[n] = None
            tries -= 1
        if len(chosen) < quantity and free_estimate > 0:
            for n in range(capacity):  # nearly full: walk the range once
                if len(chosen) == quantity:
                    break
                if n not in busy and n not in chosen and n not in slots.expired:
                    chosen[n] = None
        for n, claim in list(slots.expired.items()):
            if len(chosen) == quantity:
                break
            if n < capacity and n not in slots.in_flight and n not in avoid and claim.is_free(now):
                chosen[n] = claim
        return list(chosen.items()) if len(chosen) == quantity else None

    def _refresh(self, event_id: str, slots: _EventSlots, capacity: int, now: datetime) -> None:
        claims = self.reader.claims(event_id)
        slots.capacity = capacity
        slots.taken = {n for n, c in claims.items() if not c.is_free(now)}
        slots.expired = {n: c for n, c in claims.items() if c.is_free(now)}
        slots.refreshed_at = time.monotonic()
