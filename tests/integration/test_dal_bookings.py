"""BookingDAL against the Firestore emulator: a hold is one all-or-nothing batch (claims, booking,
the buyer's pending holds, the idempotency record); a release gives back exactly what is named.

Each test uses its own random event, user and booking ids, so the shared emulator database never
changes what a test sees.
"""

from __future__ import annotations

import secrets
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from shared.dal.outbox import OutboxDAL

from shared.core.errors import BookingLimitReached, SoldOut
from shared.dal.bookings import BookingDAL
from shared.dal.inventory import InventoryDAL
from shared.dal.records import BuyerHolds, ConcurrentUpdate, DocumentExists, HoldPlan, IdempotencyRecord
from shared.models import Booking, Event, new_id, utcnow
from shared.services.bookings import BookingRules, BookingService, HoldRequest
from shared.services.identity import Principal
from shared.services.slots import SlotPicker

TTL = timedelta(minutes=10)


@pytest.fixture
def inv(firestore_client: Any) -> InventoryDAL:
    return InventoryDAL(firestore_client)


@pytest.fixture
def dal(firestore_client: Any, inv: InventoryDAL) -> BookingDAL:
    return BookingDAL(firestore_client, inv, OutboxDAL(firestore_client))


def rid(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(8)}"


def make_booking(event_id: str, user_id: str, quantity: int = 1, at: datetime | None = None, **changes: Any) -> Booking:
    now = at or utcnow()
    booking = Booking(
        id=new_id(),
        event_id=event_id,
        company_id="co-1",
        user_id=user_id,
        buyer_subject=f"sub-{user_id}",
        quantity=quantity,
        unit_price=1500,
        total_cost=1500 * quantity,
        currency="EUR",
        status="pending_payment",
        booking_time=now,
        expires_at=now + TTL,
        updated_at=now,
        history=({"status": "pending_payment", "at": now.isoformat(), "reason": "held"},),
    )
    return replace(booking, **changes)


def plan(
    booking: Booking,
    slots: list[int],
    buyer: BuyerHolds | None = None,
    key: IdempotencyRecord | None = None,
) -> HoldPlan:
    return HoldPlan(booking, [(n, None) for n in slots], buyer or BuyerHolds(), key)


def buyer_doc(dal: BookingDAL, event_id: str, user_id: str) -> Any:
    return dal.client.collection("events").document(event_id).collection("buyers").document(user_id).get()


def idem_doc(dal: BookingDAL, key_id: str) -> Any:
    return dal.client.collection("idempotency").document(key_id).get()


# ---- commit_hold --------------------------------------------------------------------------------


def test_commit_hold_stores_the_booking_claims_buyer_holds_and_key(dal: BookingDAL, inv: InventoryDAL) -> None:
    event_id, user_id, key_id = rid("ev"), rid("u"), rid("k")
    booking = make_booking(event_id, user_id, 3)
    dal.commit_hold(plan(booking, [0, 4, 9], key=IdempotencyRecord(key_id, "hash-1", booking.id)))

    found = dal.get(booking.id)
    assert found is not None
    assert found[0] == booking
    assert found[1] is not None
    claims = inv.claims_of(event_id, booking.id)
    assert sorted(c.n for c in claims) == [0, 4, 9]
    assert all(c.state == "held" and c.held_until == booking.expires_at for c in claims)
    holds = dal.buyer_holds(event_id, user_id)
    assert holds.pending == {booking.id: booking.expires_at}
    assert holds.update_time is not None
    assert dal.idempotency(key_id) == IdempotencyRecord(key_id, "hash-1", booking.id)


def test_commit_hold_on_a_taken_slot_writes_nothing_at_all(dal: BookingDAL, inv: InventoryDAL) -> None:
    event_id, user_id, key_id = rid("ev"), rid("u"), rid("k")
    earlier = make_booking(event_id, user_id, 1)
    dal.commit_hold(plan(earlier, [5]))  # the buyer's doc exists, holding `earlier`
    other = make_booking(event_id, rid("u"), 1)
    dal.commit_hold(plan(other, [2]))  # someone else holds slot 2
    buyer_before = buyer_doc(dal, event_id, user_id)

    booking = make_booking(event_id, user_id, 2)
    holds = dal.buyer_holds(event_id, user_id)
    with pytest.raises(DocumentExists):
        dal.commit_hold(plan(booking, [1, 2], holds, IdempotencyRecord(key_id, "h", booking.id)))

    assert dal.get(booking.id) is None
    assert inv.claims_at(event_id, [1]) == {}  # the free slot of the plan was not claimed either
    assert inv.claims_at(event_id, [2])[2].booking_id == other.id
    buyer_after = buyer_doc(dal, event_id, user_id)
    assert buyer_after.update_time == buyer_before.update_time
    assert buyer_after.to_dict() == buyer_before.to_dict()
    assert dal.idempotency(key_id) is None
    assert not idem_doc(dal, key_id).exists


def test_commit_hold_with_stale_buyer_holds_writes_nothing(dal: BookingDAL, inv: InventoryDAL) -> None:
    """The buyer's pending-holds document is the per-buyer cap: two holds read it, one wins."""
    event_id, user_id = rid("ev"), rid("u")
    dal.commit_hold(plan(make_booking(event_id, user_id), [0]))
    read = dal.buyer_holds(event_id, user_id)
    dal.commit_hold(plan(make_booking(event_id, user_id), [1], read))  # the first of two wins

    loser = make_booking(event_id, user_id)
    with pytest.raises(ConcurrentUpdate):
        dal.commit_hold(plan(loser, [2], read))
    assert dal.get(loser.id) is None
    assert inv.claims_at(event_id, [2]) == {}
    assert loser.id not in dal.buyer_holds(event_id, user_id).pending


def test_commit_hold_of_a_first_hold_loses_to_a_concurrent_first_hold(dal: BookingDAL, inv: InventoryDAL) -> None:
    event_id, user_id = rid("ev"), rid("u")
    first, second = make_booking(event_id, user_id), make_booking(event_id, user_id)
    dal.commit_hold(plan(first, [0], BuyerHolds()))
    with pytest.raises(DocumentExists):  # both read "no document yet"
        dal.commit_hold(plan(second, [1], BuyerHolds()))
    assert dal.get(second.id) is None
    assert inv.claims_at(event_id, [1]) == {}
    assert dal.buyer_holds(event_id, user_id).pending == {first.id: first.expires_at}


def test_commit_hold_with_a_used_idempotency_key_writes_nothing(dal: BookingDAL, inv: InventoryDAL) -> None:
    event_id, key_id = rid("ev"), rid("k")
    first = make_booking(event_id, rid("u"))
    dal.commit_hold(plan(first, [0], key=IdempotencyRecord(key_id, "h", first.id)))
    second = make_booking(event_id, rid("u"))
    with pytest.raises(DocumentExists):
        dal.commit_hold(plan(second, [1], key=IdempotencyRecord(key_id, "h", second.id)))
    assert dal.get(second.id) is None
    assert inv.claims_at(event_id, [1]) == {}
    assert not buyer_doc(dal, event_id, second.user_id).exists
    assert dal.idempotency(key_id) == IdempotencyRecord(key_id, "h", first.id)


def test_commit_hold_keeps_only_unexpired_pending_holds_of_the_buyer(dal: BookingDAL) -> None:
    event_id, user_id = rid("ev"), rid("u")
    long_ago = utcnow() - timedelta(hours=1)
    old = make_booking(event_id, user_id, at=long_ago)
    dal.commit_hold(plan(old, [0]))
    new = make_booking(event_id, user_id)
    dal.commit_hold(plan(new, [1], dal.buyer_holds(event_id, user_id)))
    assert dal.buyer_holds(event_id, user_id).pending == {new.id: new.expires_at}


def test_buyer_holds_active_ignores_holds_that_ran_out(dal: BookingDAL) -> None:
    event_id, user_id = rid("ev"), rid("u")
    assert dal.buyer_holds(event_id, user_id) == BuyerHolds()
    booking = make_booking(event_id, user_id)
    dal.commit_hold(plan(booking, [0]))
    holds = dal.buyer_holds(event_id, user_id)
    assert holds.active(booking.booking_time) == {booking.id: booking.expires_at}
    assert holds.active(booking.expires_at) == {}


def test_idempotency_of_an_unknown_key_is_none(dal: BookingDAL) -> None:
    assert dal.idempotency(rid("k")) is None


# ---- commit_release -----------------------------------------------------------------------------


def test_commit_release_stores_the_state_frees_the_claims_and_the_buyer(dal: BookingDAL, inv: InventoryDAL) -> None:
    event_id, user_id = rid("ev"), rid("u")
    keep = make_booking(event_id, user_id)
    dal.commit_hold(plan(keep, [0]))
    booking = make_booking(event_id, user_id, 2)
    dal.commit_hold(plan(booking, [1, 2], dal.buyer_holds(event_id, user_id)))

    current, update_time = dal.get(booking.id)  # type: ignore[misc]
    after = current.moved_to("cancelled", utcnow(), "cancelled by the buyer")
    dal.commit_release(after, update_time, inv.claims_of(event_id, booking.id))

    stored, _ = dal.get(booking.id)  # type: ignore[misc]
    assert stored.status == "cancelled"
    assert [h["status"] for h in stored.history] == ["pending_payment", "cancelled"]
    assert inv.claims_of(event_id, booking.id) == []
    assert set(inv.claims(event_id)) == {0}
    assert dal.buyer_holds(event_id, user_id).pending == {keep.id: keep.expires_at}


def test_commit_release_of_a_booking_changed_since_read_writes_nothing(dal: BookingDAL, inv: InventoryDAL) -> None:
    event_id, user_id = rid("ev"), rid("u")
    booking = make_booking(event_id, user_id, 2)
    dal.commit_hold(plan(booking, [3, 4]))
    current, stale = dal.get(booking.id)  # type: ignore[misc]
    claims = inv.claims_of(event_id, booking.id)
    dal.commit_release(current.moved_to("expired", utcnow(), "hold ran out"), stale, claims)

    with pytest.raises(ConcurrentUpdate):  # a second release that read the pending booking
        dal.commit_release(current.moved_to("cancelled", utcnow(), "cancelled"), stale, claims)
    stored, _ = dal.get(booking.id)  # type: ignore[misc]
    assert stored.status == "expired"
    assert [h["status"] for h in stored.history] == ["pending_payment", "expired"]


def test_commit_release_never_frees_a_claim_taken_over_meanwhile(dal: BookingDAL, inv: InventoryDAL) -> None:
    event_id = rid("ev")
    then = utcnow() - timedelta(hours=1)
    old = make_booking(event_id, rid("u"), at=then)
    dal.commit_hold(plan(old, [6]))
    current, update_time = dal.get(old.id)  # type: ignore[misc]
    claims = inv.claims_of(event_id, old.id)  # read by the expiry ...

    taker = make_booking(event_id, rid("u"))  # ... while a new buyer takes the expired claim over
    dal.commit_hold(HoldPlan(taker, [(6, claims[0])], BuyerHolds()))

    with pytest.raises(ConcurrentUpdate):
        dal.commit_release(current.moved_to("expired", utcnow(), "hold ran out"), update_time, claims)
    assert inv.claims_at(event_id, [6])[6].booking_id == taker.id
    assert dal.get(old.id)[0].status == "pending_payment"  # type: ignore[index]


# ---- page and overdue ---------------------------------------------------------------------------


def test_page_lists_newest_first_and_continues_after_the_cursor(dal: BookingDAL) -> None:
    user_id = rid("u")
    base = datetime(2031, 1, 1, 12, 0, tzinfo=UTC)
    times = [base + timedelta(seconds=s) for s in (0, 5, 5, 5, 9, 12)]  # ties are ordered by id
    made = []
    for i, at in enumerate(times):
        booking = make_booking(rid("ev"), user_id, at=at)
        dal.commit_hold(plan(booking, [i]))
        made.append(booking)
    dal.commit_hold(plan(make_booking(rid("ev"), rid("u"), at=base), [0]))  # someone else's

    expected = [b.id for b in sorted(made, key=lambda b: (b.booking_time, b.id), reverse=True)]
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        found, cursor = dal.page("user_id", user_id, 4, cursor)
        seen += [b.id for b in found]
        if cursor is None:
            break
    assert seen == expected
    assert len(dal.page("user_id", user_id, 6, None)[0]) == 6
    assert dal.page("user_id", user_id, 6, None)[1] is None  # exactly one page: no next cursor

    event_id = made[0].event_id
    only, after = dal.page("event_id", event_id, 10, None)
    assert [b.id for b in only] == [made[0].id]
    assert after is None


def test_overdue_finds_pending_bookings_past_their_hold_only(dal: BookingDAL) -> None:
    now = utcnow()
    event_id = rid("ev")
    overdue = make_booking(event_id, rid("u"), at=now - timedelta(hours=1))
    running = make_booking(event_id, rid("u"), at=now)
    cancelled = make_booking(event_id, rid("u"), at=now - timedelta(hours=1), status="cancelled")
    for i, b in enumerate((overdue, running, cancelled)):
        dal.commit_hold(plan(b, [i]))

    found = set(dal.overdue(now, 1000))
    assert overdue.id in found
    assert running.id not in found
    assert cancelled.id not in found
    assert running.id in set(dal.overdue(running.expires_at, 1000))
    assert len(dal.overdue(now, 1)) == 1


# ---- the service over the real DAL: an idempotent retry racing its original ---------------------


class _Events:
    def __init__(self, event: Event) -> None:
        self.event = event

    def get(self, event_id: str) -> Event | None:
        return self.event if event_id == self.event.id else None


class _NoTasks:
    def schedule_expiry(self, booking_id: str, at: datetime) -> None:
        pass


class _ReplayRace(BookingDAL):
    """Runs `meanwhile` right after the first idempotency lookup: the original request commits
    between its retry's key lookup and the retry's reading of the buyer's holds."""

    meanwhile: Any = None

    def idempotency(self, key_id: str) -> IdempotencyRecord | None:
        record = super().idempotency(key_id)
        if self.meanwhile is not None:
            run, self.meanwhile = self.meanwhile, None
            run()
        return record


@pytest.mark.parametrize(
    ("capacity", "max_pending", "refusal"),
    [(10, 1, "409 booking_limit_reached"), (2, 5, "409 sold_out")],
    ids=["per-buyer-cap", "last-tickets"],
)
def test_a_retry_with_the_same_key_racing_the_original_gets_the_same_booking(
    firestore_client: Any, inv: InventoryDAL, capacity: int, max_pending: int, refusal: str
) -> None:
    """API.md: the same Idempotency-Key with the same body returns the same booking. A retry that
    looked the key up just before the original committed must still get it, not the refusal the
    original's own hold causes (the buyer's cap, or the tickets it took)."""
    event = Event(
        id=rid("ev"),
        company_id="co-1",
        name="Race",
        description=None,
        event_date=date(2031, 5, 1),
        event_time=time(20, 0),
        timezone="UTC",
        venue="Hall",
        location_lat=0.0,
        location_long=0.0,
        capacity=capacity,
        base_price=1000,
        surge_price=1000,
        surge_threshold=1.0,
        currency="EUR",
        max_tickets_per_booking=4,
        status="published",
        version=1,
        created_at=utcnow(),
        updated_at=utcnow(),
    )
    store = _ReplayRace(firestore_client, inv, OutboxDAL(firestore_client))
    rules = BookingRules(hold_ttl=TTL, max_pending_per_buyer=max_pending)
    service = BookingService(store, _Events(event), inv, SlotPicker(inv), _NoTasks(), rules)
    principal = Principal(user_id=rid("u"), role="user", company_id=None)
    request = HoldRequest(event.id, 2, "checkout-1")
    original: list[Booking] = []
    store.meanwhile = lambda: original.append(service.hold(lambda: principal, "sub", request)[0])

    try:
        retried, _created = service.hold(lambda: principal, "sub", request)
    except (BookingLimitReached, SoldOut) as exc:
        pytest.fail(f"the retry of a request with the same Idempotency-Key got {refusal}: {exc}")
    assert retried.id == original[0].id
    assert len(inv.claims(event.id)) == 2
