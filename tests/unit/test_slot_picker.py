"""SlotPicker with an in-memory claim store: which slots a hold tries, and what it learns."""

from __future__ import annotations

import random
import threading
import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from shared.dal.records import Claim
from shared.services import slots as slots_module
from shared.services.slots import NoFreeSlots, SlotPicker

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=10)
EARLIER = NOW - timedelta(minutes=10)
EVENT = "ev-1"


class FakeClaims:
    """The claim documents of events, as the picker's ClaimReader sees them; counts full reads."""

    def __init__(self) -> None:
        self.by_event: dict[str, dict[int, Claim]] = {}
        self.full_reads = 0
        self.lock = threading.Lock()

    def put(self, n: int, state: str = "held", until: datetime | None = LATER, event_id: str = EVENT) -> Claim:
        claim = Claim(n, state, None if state == "retired" else f"b-{n}", until, update_time=object())
        with self.lock:
            self.by_event.setdefault(event_id, {})[n] = claim
        return claim

    def claims(self, event_id: str) -> dict[int, Claim]:
        with self.lock:
            self.full_reads += 1
            return dict(self.by_event.get(event_id, {}))

    def claims_at(self, event_id: str, numbers: list[int]) -> dict[int, Claim]:
        with self.lock:
            found = self.by_event.get(event_id, {})
            return {n: found[n] for n in numbers if n in found}


@pytest.fixture
def store() -> FakeClaims:
    return FakeClaims()


@pytest.fixture
def picker(store: FakeClaims) -> SlotPicker:
    return SlotPicker(store, random.Random(1234))


def numbers(picks: list[tuple[int, Claim | None]]) -> list[int]:
    return [n for n, _ in picks]


def test_picks_distinct_new_slots_below_capacity(picker: SlotPicker) -> None:
    picks = picker.pick(EVENT, 10, 4, NOW)
    assert len(set(numbers(picks))) == 4
    assert all(0 <= n < 10 and over is None for n, over in picks)


def test_in_flight_slots_are_never_picked_again_until_done(picker: SlotPicker) -> None:
    seen: list[int] = []
    for _ in range(5):
        seen += numbers(picker.pick(EVENT, 10, 2, NOW))
    assert sorted(seen) == list(range(10))
    with pytest.raises(NoFreeSlots):  # a fresh read finds no claims, but all ten are in flight
        picker.pick(EVENT, 10, 1, NOW)


def test_threads_never_share_a_slot(store: FakeClaims) -> None:
    picker = SlotPicker(store)
    capacity, threads, per_thread = 200, 20, 5
    got: list[list[int]] = [[] for _ in range(threads)]
    start = threading.Barrier(threads)

    def work(i: int) -> None:
        start.wait()
        for _ in range(per_thread):
            got[i] += numbers(picker.pick(EVENT, capacity, 2, NOW))

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    everything = [n for g in got for n in g]
    assert len(everything) == threads * per_thread * 2 == capacity
    assert sorted(everything) == list(range(capacity))  # every slot exactly once
    with pytest.raises(NoFreeSlots):
        picker.pick(EVENT, capacity, 1, NOW)


def test_threads_that_give_back_their_picks_never_overlap(store: FakeClaims) -> None:
    picker = SlotPicker(store)
    holding: set[int] = set()
    guard = threading.Lock()
    overlaps: list[int] = []

    def work() -> None:
        for _ in range(200):
            try:
                picks = picker.pick(EVENT, 12, 3, NOW)
            except NoFreeSlots:
                continue
            with guard:
                overlaps.extend(n for n in numbers(picks) if n in holding)
                holding.update(numbers(picks))
            time.sleep(0)  # let the others pick while these are in flight
            with guard:
                holding.difference_update(numbers(picks))
            picker.done(EVENT, picks, claimed=False)

    workers = [threading.Thread(target=work) for _ in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert overlaps == []


def test_a_collision_teaches_the_picker_which_slots_are_taken(store: FakeClaims, picker: SlotPicker) -> None:
    for n in range(8):  # another process holds slots 0-7; this picker has never read them
        store.put(n)
    collided: list[int] = []
    for _ in range(20):
        picks = picker.pick(EVENT, 10, 1, NOW)
        (n,) = numbers(picks)
        if n < 8:
            assert n not in collided, f"slot {n} picked again after its collision"
            collided.append(n)
            picker.done(EVENT, picks, claimed=False)
            picker.collided(EVENT, picks, NOW)
            continue
        assert n in (8, 9)
        break
    else:
        pytest.fail("the picker never found the free slots")
    assert len(collided) <= 8


def test_a_collision_with_an_expired_claim_makes_it_a_takeover(store: FakeClaims, picker: SlotPicker) -> None:
    expired = store.put(0, until=EARLIER)
    store.put(1)
    store.put(2)
    picker.collided(EVENT, [(0, None), (1, None)], NOW)  # what a failed create of slots 0 and 1 does
    assert picker.pick(EVENT, 3, 1, NOW) == [(2, None)]  # a slot never seen taken comes first
    assert picker.pick(EVENT, 3, 1, NOW) == [(0, expired)]  # then the expired claim, as read
    with pytest.raises(NoFreeSlots):  # slot 1 is live; 0 and 2 are in flight
        picker.pick(EVENT, 3, 1, NOW)


def test_refresh_finds_expired_claims_to_take_over(store: FakeClaims, picker: SlotPicker) -> None:
    picks = picker.pick(EVENT, 4, 4, NOW)
    picker.done(EVENT, picks, claimed=True)  # this process holds all four
    claims = {n: store.put(n, until=NOW + timedelta(seconds=3)) for n in range(4)}

    later = NOW + timedelta(seconds=5)  # the holds ran out: no expiry ran, nothing told the picker
    again = picker.pick(EVENT, 4, 3, later)
    assert store.full_reads == 1
    assert len(set(numbers(again))) == 3
    assert all(over is claims[n] for n, over in again)  # taken over as read (the precondition)
    last = picker.pick(EVENT, 4, 1, later)
    assert set(numbers(again)) | set(numbers(last)) == {0, 1, 2, 3}
    assert last[0][1] is claims[last[0][0]]


def test_full_event_answers_no_free_slots_and_rereads_at_most_every_refresh_interval(
    store: FakeClaims, picker: SlotPicker, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [1000.0]
    monkeypatch.setattr(slots_module, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    for n in range(5):
        store.put(n)
    picker.collided(EVENT, [(n, None) for n in range(5)], NOW)
    with pytest.raises(NoFreeSlots):
        picker.pick(EVENT, 5, 1, NOW)
    assert store.full_reads == 1  # "none left" is confirmed by one fresh read ...
    for _ in range(20):
        with pytest.raises(NoFreeSlots):
            picker.pick(EVENT, 5, 1, NOW)
    assert store.full_reads == 1  # ... and not re-proven on every request of a sold-out rush

    store.by_event[EVENT].pop(2)  # a ticket came back, released by another process
    with pytest.raises(NoFreeSlots):  # not seen until the next refresh is due
        picker.pick(EVENT, 5, 1, NOW)
    clock[0] += slots_module.REFRESH_SECONDS
    assert picker.pick(EVENT, 5, 1, NOW) == [(2, None)]
    assert store.full_reads == 2


def test_more_than_is_left_is_no_free_slots_even_if_some_are_free(store: FakeClaims, picker: SlotPicker) -> None:
    for n in range(3):
        store.put(n)
    picker.collided(EVENT, [(0, None), (1, None), (2, None)], NOW)
    with pytest.raises(NoFreeSlots):
        picker.pick(EVENT, 5, 3, NOW)
    assert sorted(numbers(picker.pick(EVENT, 5, 2, NOW))) == [3, 4]


def test_done_without_a_claim_frees_the_in_flight_slots(picker: SlotPicker) -> None:
    picks = picker.pick(EVENT, 3, 3, NOW)
    with pytest.raises(NoFreeSlots):
        picker.pick(EVENT, 3, 1, NOW)
    picker.done(EVENT, picks, claimed=False)
    assert sorted(numbers(picker.pick(EVENT, 3, 3, NOW))) == [0, 1, 2]


def test_done_with_a_claim_keeps_the_slots_taken(store: FakeClaims, picker: SlotPicker) -> None:
    picks = picker.pick(EVENT, 3, 2, NOW)
    for n in numbers(picks):
        store.put(n)
    picker.done(EVENT, picks, claimed=True)
    (free,) = set(range(3)) - set(numbers(picks))
    assert numbers(picker.pick(EVENT, 3, 1, NOW)) == [free]


def test_released_slots_are_free_again(store: FakeClaims, picker: SlotPicker) -> None:
    picks = picker.pick(EVENT, 2, 2, NOW)
    picker.done(EVENT, picks, claimed=True)
    picker.released(EVENT, [numbers(picks)[0]])
    assert numbers(picker.pick(EVENT, 2, 1, NOW)) == [numbers(picks)[0]]


def test_retired_slots_are_never_taken_over(store: FakeClaims, picker: SlotPicker) -> None:
    store.put(0, state="retired", until=None)
    store.put(1, until=EARLIER)
    picker.collided(EVENT, [(0, None), (1, None)], NOW)
    picks = picker.pick(EVENT, 2, 1, NOW)
    assert numbers(picks) == [1]
    with pytest.raises(NoFreeSlots):
        picker.pick(EVENT, 2, 1, NOW)


def test_never_picks_at_or_above_capacity_even_an_expired_claim(store: FakeClaims, picker: SlotPicker) -> None:
    for n in range(6):
        store.put(n, until=EARLIER)  # expired claims everywhere; the capacity was lowered to 3
    picker.collided(EVENT, [(n, None) for n in range(6)], NOW)
    taken_over = [picker.pick(EVENT, 3, 1, NOW)[0] for _ in range(3)]
    assert sorted(n for n, _ in taken_over) == [0, 1, 2]
    assert all(over is not None and over.n == n for n, over in taken_over)
    with pytest.raises(NoFreeSlots):
        picker.pick(EVENT, 3, 1, NOW)


def test_events_are_independent(picker: SlotPicker) -> None:
    a = picker.pick("ev-a", 2, 2, NOW)
    b = picker.pick("ev-b", 2, 2, NOW)
    assert sorted(numbers(a)) == sorted(numbers(b)) == [0, 1]


def test_reread_learns_what_other_processes_took(store: FakeClaims, picker: SlotPicker) -> None:
    for n in range(9):  # another process took 0-8; this one has never seen them
        store.put(n)
    picks = picker.pick(EVENT, 10, 1, NOW, reread=True)
    assert numbers(picks) == [9]
    assert store.full_reads == 1


def test_a_capacity_raised_a_moment_ago_is_never_answered_sold_out(
    store: FakeClaims, picker: SlotPicker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lowered to 2 (slots 2..5 retired), then raised to 5 (2..4 given back): the next pick, well
    within the refresh interval, rereads because the capacity is not the one it last read with."""
    clock = [1000.0]
    monkeypatch.setattr(slots_module, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    store.put(0)
    store.put(1)
    for n in range(2, 6):
        store.put(n, state="retired", until=None)
    with pytest.raises(NoFreeSlots):
        picker.pick(EVENT, 2, 1, NOW, reread=True)  # a reread: 0 and 1 taken, 2..5 retired

    for n in range(2, 5):
        store.by_event[EVENT].pop(n)  # the capacity change gave them back
    assert sorted(numbers(picker.pick(EVENT, 5, 3, NOW))) == [2, 3, 4]
    assert store.full_reads == 2
