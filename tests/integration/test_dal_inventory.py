"""InventoryDAL against the Firestore emulator: one claim document per ticket slot, and every write
guarded so that two writers can never both win a slot.

Each test works on its own random event id, so the shared emulator database never changes what a
test sees.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.dal.inventory import InventoryDAL, slot_id
from shared.dal.records import SOLD_UNTIL, Claim, ConcurrentUpdate, DocumentExists
from shared.dal.stream import DomainEventDAL
from shared.dal.unit_of_work import FirestoreUnitOfWork

NOW = datetime.now(UTC).replace(microsecond=0)
LATER = NOW + timedelta(minutes=10)
EARLIER = NOW - timedelta(minutes=10)


@pytest.fixture
def inv(firestore_client: Any) -> InventoryDAL:
    return InventoryDAL(firestore_client)


@pytest.fixture
def event_id() -> str:
    return f"ev-{secrets.token_hex(8)}"


def new_uow(inv: InventoryDAL) -> FirestoreUnitOfWork:
    return FirestoreUnitOfWork(inv.client, DomainEventDAL(inv.client))


def hold(inv: InventoryDAL, event_id: str, n: int, booking_id: str, until: datetime, over: Claim | None = None) -> None:
    uow = new_uow(inv)
    inv.stage_claim(uow, event_id, n, booking_id, until, over)
    uow.commit()


def stored(inv: InventoryDAL, event_id: str, n: int) -> dict[str, Any] | None:
    snap = inv.ref(event_id, n).get()
    return snap.to_dict() if snap.exists else None


def one(inv: InventoryDAL, event_id: str, n: int) -> Claim:
    return inv.claims_at(event_id, [n])[n]


# ---- ids and reads ------------------------------------------------------------------------------


def test_slot_ids_are_stable_per_event_and_slot_and_not_sequential() -> None:
    assert slot_id("e1", 5) == slot_id("e1", 5)
    ids = [slot_id("e1", n) for n in range(100)]
    assert len(set(ids)) == 100
    assert slot_id("e1", 5) != slot_id("e2", 5)
    assert ids != sorted(ids)  # hashed: neighbouring slots are not neighbouring keys
    assert all(i != str(n) for n, i in enumerate(ids))


def test_claims_reads_every_claim_with_its_fields(inv: InventoryDAL, event_id: str) -> None:
    hold(inv, event_id, 0, "b-1", LATER)
    hold(inv, event_id, 3, "b-2", EARLIER)
    inv.retire(event_id, 7)

    claims = inv.claims(event_id)
    assert set(claims) == {0, 3, 7}
    assert (claims[0].state, claims[0].booking_id, claims[0].held_until) == ("held", "b-1", LATER)
    assert claims[0].held_until is not None
    assert claims[0].held_until.tzinfo is not None
    assert (claims[7].state, claims[7].booking_id, claims[7].held_until) == ("retired", None, None)
    assert all(c.update_time is not None for c in claims.values())
    assert claims[3].is_free(NOW)
    assert not claims[0].is_free(NOW)
    assert not claims[7].is_free(NOW)
    assert inv.claims(f"ev-{secrets.token_hex(8)}") == {}


def test_claims_at_returns_only_the_slots_asked_for_that_exist(inv: InventoryDAL, event_id: str) -> None:
    for n in (1, 2, 4):
        hold(inv, event_id, n, f"b-{n}", LATER)
    found = inv.claims_at(event_id, [0, 1, 4, 9])
    assert set(found) == {1, 4}
    assert found[4].booking_id == "b-4"
    assert inv.claims_at(event_id, []) == {}


def test_claims_of_returns_the_claims_of_one_booking(inv: InventoryDAL, event_id: str) -> None:
    for n in (0, 1, 2):
        hold(inv, event_id, n, "mine", LATER)
    hold(inv, event_id, 3, "theirs", LATER)
    hold(inv, f"ev-{secrets.token_hex(8)}", 4, "mine", LATER)  # same booking id, other event
    assert sorted(c.n for c in inv.claims_of(event_id, "mine")) == [0, 1, 2]
    assert [c.n for c in inv.claims_of(event_id, "theirs")] == [3]
    assert inv.claims_of(event_id, "nobody") == []


def test_taken_counts_sold_and_unexpired_holds_only(inv: InventoryDAL, event_id: str) -> None:
    hold(inv, event_id, 0, "b-live", LATER)
    hold(inv, event_id, 1, "b-live", LATER)
    hold(inv, event_id, 2, "b-gone", EARLIER)
    inv.retire(event_id, 3)
    hold(inv, event_id, 4, "b-paid", LATER)
    uow = new_uow(inv)
    inv.stage_sell(uow, event_id, one(inv, event_id, 4))
    uow.commit()
    hold(inv, f"ev-{secrets.token_hex(8)}", 0, "elsewhere", LATER)

    assert inv.taken(event_id, NOW) == 3  # two held, one sold
    assert inv.taken(event_id, LATER + timedelta(seconds=1)) == 1  # only the sold one
    assert one(inv, event_id, 4).held_until == SOLD_UNTIL


# ---- claiming -----------------------------------------------------------------------------------


def test_a_second_claim_on_a_slot_fails_and_leaves_the_first(inv: InventoryDAL, event_id: str) -> None:
    hold(inv, event_id, 5, "first", LATER)
    with pytest.raises(DocumentExists):
        hold(inv, event_id, 5, "second", LATER)
    assert stored(inv, event_id, 5) == {"n": 5, "state": "held", "booking_id": "first", "held_until": LATER}


def test_a_batch_of_claims_is_all_or_nothing(inv: InventoryDAL, event_id: str) -> None:
    hold(inv, event_id, 2, "first", LATER)
    uow = new_uow(inv)
    for n in (0, 1, 2):
        inv.stage_claim(uow, event_id, n, "second", LATER)
    with pytest.raises(DocumentExists):
        uow.commit()
    assert set(inv.claims(event_id)) == {2}


def test_an_expired_claim_is_taken_over_only_as_it_was_read(inv: InventoryDAL, event_id: str) -> None:
    hold(inv, event_id, 1, "old", EARLIER)
    expired = one(inv, event_id, 1)

    hold(inv, event_id, 1, "new", LATER, over=expired)
    assert stored(inv, event_id, 1) == {"n": 1, "state": "held", "booking_id": "new", "held_until": LATER}

    with pytest.raises(ConcurrentUpdate):  # a second taker read the same expired claim: too late
        hold(inv, event_id, 1, "third", LATER, over=expired)
    assert one(inv, event_id, 1).booking_id == "new"


def test_a_takeover_of_a_claim_deleted_meanwhile_fails(inv: InventoryDAL, event_id: str) -> None:
    hold(inv, event_id, 1, "old", EARLIER)
    expired = one(inv, event_id, 1)
    inv.remove(event_id, expired)
    with pytest.raises(ConcurrentUpdate):
        hold(inv, event_id, 1, "new", LATER, over=expired)
    assert stored(inv, event_id, 1) is None


def test_release_sell_and_extend_need_the_claim_as_read(inv: InventoryDAL, event_id: str) -> None:
    hold(inv, event_id, 0, "b", LATER)
    read = one(inv, event_id, 0)

    uow = new_uow(inv)
    inv.stage_extend(uow, event_id, read, LATER + timedelta(minutes=5))
    uow.commit()
    assert one(inv, event_id, 0).held_until == LATER + timedelta(minutes=5)

    for stage in (inv.stage_release, inv.stage_sell):
        uow = new_uow(inv)
        stage(uow, event_id, read)  # stale: the extension changed it
        with pytest.raises(ConcurrentUpdate):
            uow.commit()
    assert one(inv, event_id, 0).state == "held"

    fresh = one(inv, event_id, 0)
    uow = new_uow(inv)
    inv.stage_sell(uow, event_id, fresh)
    uow.commit()
    sold = one(inv, event_id, 0)
    assert (sold.state, sold.held_until, sold.booking_id) == ("sold", SOLD_UNTIL, "b")

    uow = new_uow(inv)
    inv.stage_release(uow, event_id, sold)
    uow.commit()
    assert stored(inv, event_id, 0) is None


# ---- capacity changes: retire, remove, move -----------------------------------------------------


def test_retire_creates_a_retired_slot_and_never_overwrites(inv: InventoryDAL, event_id: str) -> None:
    inv.retire(event_id, 9)
    assert stored(inv, event_id, 9) == {"n": 9, "state": "retired", "booking_id": None, "held_until": None}
    with pytest.raises(DocumentExists):
        inv.retire(event_id, 9)

    hold(inv, event_id, 8, "live", LATER)
    with pytest.raises(DocumentExists):
        inv.retire(event_id, 8)
    assert one(inv, event_id, 8).booking_id == "live"


def test_retire_replaces_an_expired_claim_only_as_it_was_read(inv: InventoryDAL, event_id: str) -> None:
    hold(inv, event_id, 4, "old", EARLIER)
    expired = one(inv, event_id, 4)
    hold(inv, event_id, 4, "taker", LATER, over=expired)  # someone takes it over first

    with pytest.raises(ConcurrentUpdate):
        inv.retire(event_id, 4, over=expired)
    assert one(inv, event_id, 4).booking_id == "taker"

    hold(inv, event_id, 5, "old", EARLIER)
    inv.retire(event_id, 5, over=one(inv, event_id, 5))
    assert one(inv, event_id, 5).state == "retired"


def test_retired_between_finds_retired_slots_in_the_range_only(inv: InventoryDAL, event_id: str) -> None:
    for n in (3, 5, 9, 10):
        inv.retire(event_id, n)
    hold(inv, event_id, 6, "live", LATER)
    assert sorted(c.n for c in inv.retired_between(event_id, 4, 10)) == [5, 9]
    assert inv.retired_between(event_id, 11, 20) == []


def test_remove_deletes_only_a_claim_unchanged_since_read(inv: InventoryDAL, event_id: str) -> None:
    inv.retire(event_id, 2)
    retired = one(inv, event_id, 2)
    inv.remove(event_id, retired)
    assert stored(inv, event_id, 2) is None
    with pytest.raises(ConcurrentUpdate):  # gone already
        inv.remove(event_id, retired)

    hold(inv, event_id, 3, "old", EARLIER)
    expired = one(inv, event_id, 3)
    hold(inv, event_id, 3, "new", LATER, over=expired)
    with pytest.raises(ConcurrentUpdate):
        inv.remove(event_id, expired)
    assert one(inv, event_id, 3).booking_id == "new"


def test_move_carries_a_live_claim_to_a_free_slot(inv: InventoryDAL, event_id: str) -> None:
    hold(inv, event_id, 7, "b", LATER)
    inv.move(event_id, one(inv, event_id, 7), 2)
    assert stored(inv, event_id, 7) is None
    assert stored(inv, event_id, 2) == {"n": 2, "state": "held", "booking_id": "b", "held_until": LATER}
    assert [c.n for c in inv.claims_of(event_id, "b")] == [2]


def test_move_onto_a_taken_slot_changes_nothing(inv: InventoryDAL, event_id: str) -> None:
    hold(inv, event_id, 7, "b", LATER)
    hold(inv, event_id, 2, "other", LATER)
    with pytest.raises(DocumentExists):
        inv.move(event_id, one(inv, event_id, 7), 2)
    assert one(inv, event_id, 7).booking_id == "b"
    assert one(inv, event_id, 2).booking_id == "other"


def test_move_of_a_claim_changed_since_read_changes_nothing(inv: InventoryDAL, event_id: str) -> None:
    hold(inv, event_id, 7, "b", EARLIER)
    read = one(inv, event_id, 7)
    hold(inv, event_id, 7, "taker", LATER, over=read)
    with pytest.raises(ConcurrentUpdate):
        inv.move(event_id, read, 2)
    assert stored(inv, event_id, 2) is None  # the create in the same uow did not happen either
    assert one(inv, event_id, 7).booking_id == "taker"
