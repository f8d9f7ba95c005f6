"""Raising and lowering an event's capacity without losing or inventing a ticket.

Holds only claim slots below the capacity they read. Lowering capacity from `old` to `new` first
retires every slot in [new, old) (a create, so it races safely with holds that read the old
capacity); a live claim found there is moved to a free slot below `new`; when there is none, the
tickets sold plus held exceed `new` and the change is undone. Raising capacity deletes the retired
slots in [old, new). The event document is saved after the inventory has been made to fit.

Slots are retired and freed CHUNK at a time (one commit each, a few in parallel): lowering a
capacity by tens of thousands takes seconds, not minutes. A chunk whose commit meets a claim
(or a changed retirement) falls back to one slot at a time, which handles each case.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Protocol

from shared.core.errors import CapacityBelowSold, Unavailable
from shared.dal.records import Claim, ConcurrentUpdate, DocumentExists
from shared.services.slots import NoFreeSlots, SlotPicker

MAX_ATTEMPTS = 20
CHUNK = 400  # slots per commit (Firestore allows 500 writes)
PARALLEL = 8


class SlotStore(Protocol):
    def claims_at(self, event_id: str, numbers: list[int]) -> dict[int, Claim]: ...
    def retired_between(self, event_id: str, low: int, high: int) -> list[Claim]: ...
    def retire(self, event_id: str, n: int, over: Claim | None = None) -> None: ...
    def retire_all(self, event_id: str, numbers: list[int]) -> None: ...
    def remove(self, event_id: str, claim: Claim) -> None: ...
    def remove_all(self, event_id: str, claims: list[Claim]) -> None: ...
    def move(self, event_id: str, claim: Claim, to: int) -> None: ...


class CapacityChanger:
    def __init__(self, slots: SlotStore, picker: SlotPicker) -> None:
        self.slots = slots
        self.picker = picker

    def lower(self, event_id: str, old: int, new: int, now: datetime) -> list[int]:
        """Retire slots [new, old); returns the slots this call retired (for `undo`)."""
        chunks = [list(range(start, min(start + CHUNK, old))) for start in range(new, old, CHUNK)]
        retired: list[int] = []
        failure: Exception | None = None
        with ThreadPoolExecutor(min(PARALLEL, len(chunks)) or 1) as pool:
            for done in pool.map(lambda chunk: self._retire_chunk(event_id, chunk, new, now), chunks):
                retired += done[0]
                failure = failure or done[1]
        if failure is not None:
            self.undo(event_id, retired)
            raise failure
        return retired

    def raise_to(self, event_id: str, old: int, new: int) -> None:
        retired = self.slots.retired_between(event_id, old, new)
        chunks = [retired[i : i + CHUNK] for i in range(0, len(retired), CHUNK)]
        with ThreadPoolExecutor(min(PARALLEL, len(chunks)) or 1) as pool:
            list(pool.map(lambda chunk: self._remove_chunk(event_id, chunk), chunks))

    def _retire_chunk(
        self, event_id: str, numbers: list[int], new: int, now: datetime
    ) -> tuple[list[int], Exception | None]:
        """(what this chunk retired, the error that stopped it, if any): all at once when no slot
        of it holds anything, else slot by slot."""
        try:
            self.slots.retire_all(event_id, numbers)
            return numbers, None
        except DocumentExists:
            pass
        retired: list[int] = []
        try:
            for n in numbers:
                if self._retire(event_id, n, new, now):
                    retired.append(n)
        except (CapacityBelowSold, Unavailable) as exc:
            return retired, exc
        return retired, None

    def _remove_chunk(self, event_id: str, claims: list[Claim]) -> None:
        try:
            self.slots.remove_all(event_id, claims)
            return
        except ConcurrentUpdate:
            pass
        for claim in claims:
            try:
                self.slots.remove(event_id, claim)
            except ConcurrentUpdate:
                continue  # changed meanwhile: only retirements happen above capacity

    def undo(self, event_id: str, retired: list[int]) -> None:
        current: list[Claim] = []
        for i in range(0, len(retired), CHUNK):
            found = self.slots.claims_at(event_id, retired[i : i + CHUNK])
            current += [c for c in found.values() if c.state == "retired"]
        chunks = [current[i : i + CHUNK] for i in range(0, len(current), CHUNK)]
        with ThreadPoolExecutor(min(PARALLEL, len(chunks)) or 1) as pool:
            list(pool.map(lambda chunk: self._remove_chunk(event_id, chunk), chunks))

    def _retire(self, event_id: str, n: int, new: int, now: datetime) -> bool:
        for _attempt in range(MAX_ATTEMPTS):
            try:
                self.slots.retire(event_id, n)
                return True
            except DocumentExists:
                pass
            claim = self.slots.claims_at(event_id, [n]).get(n)
            try:
                if claim is None:
                    continue
                if claim.state == "retired":
                    return False
                if claim.is_free(now):
                    self.slots.retire(event_id, n, over=claim)
                    return True
                self._move_below(event_id, claim, new, now)
            except (ConcurrentUpdate, DocumentExists):
                continue
        raise Unavailable("the event's tickets are changing too fast; retry", retry_after=1)

    def _move_below(self, event_id: str, claim: Claim, new: int, now: datetime) -> None:
        try:
            picks = self.picker.pick(event_id, new, 1, now)
        except NoFreeSlots:
            raise CapacityBelowSold("tickets sold plus held exceed the new capacity") from None
        to, over = picks[0]
        try:
            if over is not None:  # an expired hold sits there: clear it first
                self.slots.remove(event_id, over)
            self.slots.move(event_id, claim, to)
        except (ConcurrentUpdate, DocumentExists):
            self.picker.done(event_id, picks, claimed=False)
            self.picker.collided(event_id, picks, now)
            raise
        self.picker.done(event_id, picks, claimed=True)
