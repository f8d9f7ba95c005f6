"""BookingDAL against the Firestore emulator, through the unit of work as production uses it.

A hold is one all-or-nothing commit (claims, booking, the buyer's pending holds, the idempotency
record, the booking's domain event: Holding.commit_hold over the real DALs); a release is
one commit that gives back exactly the claims named, each only if it is still as read.

Each test uses its own random event, user and booking ids, so the shared emulator database never
changes what a test sees. Bookings that are meant to be overdue lie in the far future (the DAL is
asked with a `now` there): the stack's sweep, which expires real overdue bookings every minute,
never touches them while a test looks.
"""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from google.cloud.firestore_v1.base_query import FieldFilter

from shared.core.errors import BookingLimitReached, SoldOut
from shared.core.ticket_codes import TicketCodes, new_key_setting
from shared.dal.bookings import BookingDAL
from shared.dal.idempotency import IdempotencyDAL
from shared.dal.inventory import InventoryDAL
from shared.dal.promo_codes import PromoCodeDAL, PromoUseDAL
from shared.dal.records import (
    BuyerHolds,
    Claim,
    ConcurrentUpdate,
    DocumentExists,
    HoldPlan,
    IdempotencyRecord,
    Revision,
)
from shared.dal.stream import DomainEventDAL
from shared.dal.tickets import TicketDAL
from shared.dal.unit_of_work import FirestoreUnitOfWork
from shared.dal.waitlist import WaitlistDAL
from shared.domain_events import Actor, change
from shared.models import Booking, Event, new_id, utcnow
from shared.services.bookings.holding import Holding
from shared.services.bookings.ports import BookingRules, HoldRequest
from shared.services.bookings.releasing import Releasing
from shared.services.counting import TakenCounter
from shared.services.identity import Principal
from shared.services.promo.uses import PromoUses
from shared.services.slots import SlotPicker
from shared.services.tickets.issuing import TicketIssuer
from shared.services.waitlist.hooks import WaitlistHooks
from shared.services.waitlist.line import WaitingLine

TTL = timedelta(minutes=10)
RULES = BookingRules(hold_ttl=TTL, max_pending_per_buyer=5)
BUYER = Actor.user("buyer-1")
EXPIRY = Actor.system("expiry")


class _Events:
    def __init__(self, event: Event | None = None) -> None:
        self.event = event

    def get(self, event_id: str) -> Event | None:
        return self.event if self.event is not None and event_id == self.event.id else None


class _NoTasks:
    def schedule_expiry(self, booking_id: str, at: datetime) -> None:
        pass


@dataclass
class Stores:
    """The DALs of a hold and a release, over one client, and the service that composes them."""

    client: Any
    bookings: BookingDAL
    inventory: InventoryDAL
    keys: IdempotencyDAL
    stream: DomainEventDAL

    def uow(self) -> FirestoreUnitOfWork:
        return FirestoreUnitOfWork(self.client, self.stream)

    def holding(self, event: Event | None = None, rules: BookingRules = RULES) -> Holding:
        return Holding(
            self.bookings,
            self.keys,
            _Events(event),
            self.inventory,
            SlotPicker(self.inventory),
            TakenCounter(self.inventory.taken),
            _NoTasks(),
            rules,
            self.uow,
            self.promos(),
            TicketIssuer(TicketDAL(self.client), TicketCodes.from_setting(new_key_setting("integration"))),
            WaitingLine(WaitlistDAL(self.client).waiting),
        )

    def waitlist(self) -> WaitlistHooks:
        return WaitlistHooks(WaitlistDAL(self.client), lambda event_id: None)

    def promos(self) -> PromoUses:
        uses = PromoUseDAL(self.client)
        return PromoUses(PromoCodeDAL(self.client), uses, SlotPicker(uses))

    def hold(self, plan: HoldPlan) -> None:
        """The production hold commit: Holding.commit_hold over the real DALs."""
        self.holding().commit_hold(plan, BUYER)

    def release(self, before: Booking, after: Booking, since: Revision, claims: list[Claim]) -> None:
        """What a release commits (Releasing._release): the booking's new state if unchanged
        since `since`, each named claim deleted if still as read, and the domain event."""
        uow = self.uow()
        self.bookings.stage_update(uow, before, after, since=since)
        for claim in claims:
            self.inventory.stage_release(uow, before.event_id, claim)
        uow.record(change(after.status, after, EXPIRY, after.updated_at, before=before))
        uow.commit()


@pytest.fixture
def s(firestore_client: Any) -> Stores:
    return Stores(
        firestore_client,
        BookingDAL(firestore_client),
        InventoryDAL(firestore_client),
        IdempotencyDAL(firestore_client),
        DomainEventDAL(firestore_client),
    )


def rid(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(8)}"


def far_future() -> datetime:
    """A random moment centuries ahead: no real clock (the stack's sweep) reaches it."""
    return datetime(random.randint(2300, 2900), random.randint(1, 12), random.randint(1, 28), 12, tzinfo=UTC)


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


def buyer_doc(s: Stores, event_id: str, user_id: str) -> Any:
    return s.client.collection("events").document(event_id).collection("buyers").document(user_id).get()


def idem_doc(s: Stores, key_id: str) -> Any:
    return s.client.collection("idempotency").document(key_id).get()


def records_of(s: Stores, object_id: str) -> list[dict[str, Any]]:
    """The domain-event records stored for one booking, oldest first: its own records, and the
    `booking.held` that the booking document carries."""
    query = s.client.collection("domain_events").where(filter=FieldFilter("object_id", "==", object_id))
    records = [snap.to_dict() for snap in query.stream()]
    booking = s.client.collection("bookings").document(object_id).get()
    if booking.exists and "domain_event" in (booking.to_dict() or {}):
        records.append(booking.get("domain_event"))
    return sorted(records, key=lambda r: r["sequence"])


def current(s: Stores, booking_id: str) -> tuple[Booking, Revision]:
    found = s.bookings.get(booking_id)
    assert found is not None
    return found


# ---- the hold commit ----------------------------------------------------------------------------


def test_hold_stores_the_booking_claims_buyer_holds_key_and_domain_event(s: Stores) -> None:
    event_id, user_id, key_id = rid("ev"), rid("u"), rid("k")
    booking = make_booking(event_id, user_id, 3)
    s.hold(plan(booking, [0, 4, 9], key=IdempotencyRecord(key_id, "hash-1", booking.id)))

    found = s.bookings.get(booking.id)
    assert found is not None
    assert found[0] == booking
    snap = s.client.collection("bookings").document(booking.id).get()
    assert found[1] == Revision(snap.update_time)
    claims = s.inventory.claims_of(event_id, booking.id)
    assert sorted(c.n for c in claims) == [0, 4, 9]
    assert all(c.state == "held" and c.held_until == booking.expires_at for c in claims)
    holds = s.bookings.buyer_holds(event_id, user_id)
    assert holds.pending == {booking.id: booking.expires_at}
    assert holds.update_time is not None
    assert s.keys.get(key_id) == IdempotencyRecord(key_id, "hash-1", booking.id)
    assert idem_doc(s, key_id).get("created_at") == booking.booking_time
    records = records_of(s, booking.id)
    assert [(r["action"], r["event_id"], r["sequence"], r["actor"]) for r in records] == [
        ("booking.held", event_id, 1, {"type": "user", "id": BUYER.id})
    ]


def test_hold_on_a_taken_slot_writes_nothing_at_all(s: Stores) -> None:
    event_id, user_id, key_id = rid("ev"), rid("u"), rid("k")
    earlier = make_booking(event_id, user_id, 1)
    s.hold(plan(earlier, [5]))  # the buyer's doc exists, holding `earlier`
    other = make_booking(event_id, rid("u"), 1)
    s.hold(plan(other, [2]))  # someone else holds slot 2
    buyer_before = buyer_doc(s, event_id, user_id)

    booking = make_booking(event_id, user_id, 2)
    holds = s.bookings.buyer_holds(event_id, user_id)
    with pytest.raises(DocumentExists):
        s.hold(plan(booking, [1, 2], holds, IdempotencyRecord(key_id, "h", booking.id)))

    assert s.bookings.get(booking.id) is None
    assert s.inventory.claims_at(event_id, [1]) == {}  # the free slot of the plan was not claimed either
    assert s.inventory.claims_at(event_id, [2])[2].booking_id == other.id
    buyer_after = buyer_doc(s, event_id, user_id)
    assert buyer_after.update_time == buyer_before.update_time
    assert buyer_after.to_dict() == buyer_before.to_dict()
    assert s.keys.get(key_id) is None
    assert not idem_doc(s, key_id).exists
    assert records_of(s, booking.id) == []  # nor its domain event


def test_hold_with_stale_buyer_holds_writes_nothing(s: Stores) -> None:
    """The buyer's pending-holds document is the per-buyer cap: two holds read it, one wins."""
    event_id, user_id = rid("ev"), rid("u")
    s.hold(plan(make_booking(event_id, user_id), [0]))
    read = s.bookings.buyer_holds(event_id, user_id)
    s.hold(plan(make_booking(event_id, user_id), [1], read))  # the first of two wins

    loser = make_booking(event_id, user_id)
    with pytest.raises(ConcurrentUpdate):
        s.hold(plan(loser, [2], read))
    assert s.bookings.get(loser.id) is None
    assert s.inventory.claims_at(event_id, [2]) == {}
    assert loser.id not in s.bookings.buyer_holds(event_id, user_id).pending
    assert records_of(s, loser.id) == []


def test_hold_of_a_first_hold_loses_to_a_concurrent_first_hold(s: Stores) -> None:
    event_id, user_id = rid("ev"), rid("u")
    first, second = make_booking(event_id, user_id), make_booking(event_id, user_id)
    s.hold(plan(first, [0], BuyerHolds()))
    with pytest.raises(DocumentExists):  # both read "no document yet"
        s.hold(plan(second, [1], BuyerHolds()))
    assert s.bookings.get(second.id) is None
    assert s.inventory.claims_at(event_id, [1]) == {}
    assert s.bookings.buyer_holds(event_id, user_id).pending == {first.id: first.expires_at}
    assert records_of(s, second.id) == []


def test_hold_with_a_used_idempotency_key_writes_nothing(s: Stores) -> None:
    event_id, key_id = rid("ev"), rid("k")
    first = make_booking(event_id, rid("u"))
    s.hold(plan(first, [0], key=IdempotencyRecord(key_id, "h", first.id)))
    second = make_booking(event_id, rid("u"))
    with pytest.raises(DocumentExists):
        s.hold(plan(second, [1], key=IdempotencyRecord(key_id, "h", second.id)))
    assert s.bookings.get(second.id) is None
    assert s.inventory.claims_at(event_id, [1]) == {}
    assert not buyer_doc(s, event_id, second.user_id).exists
    assert s.keys.get(key_id) == IdempotencyRecord(key_id, "h", first.id)
    assert records_of(s, second.id) == []


def test_hold_keeps_only_unexpired_pending_holds_of_the_buyer(s: Stores) -> None:
    event_id, user_id = rid("ev"), rid("u")
    base = far_future()
    old = make_booking(event_id, user_id, at=base - timedelta(hours=1))
    s.hold(plan(old, [0]))
    new = make_booking(event_id, user_id, at=base)
    s.hold(plan(new, [1], s.bookings.buyer_holds(event_id, user_id)))
    assert s.bookings.buyer_holds(event_id, user_id).pending == {new.id: new.expires_at}


def test_buyer_holds_active_ignores_holds_that_ran_out(s: Stores) -> None:
    event_id, user_id = rid("ev"), rid("u")
    assert s.bookings.buyer_holds(event_id, user_id) == BuyerHolds()
    booking = make_booking(event_id, user_id)
    s.hold(plan(booking, [0]))
    holds = s.bookings.buyer_holds(event_id, user_id)
    assert holds.active(booking.booking_time) == {booking.id: booking.expires_at}
    assert holds.active(booking.expires_at) == {}


def test_idempotency_of_an_unknown_key_is_none(s: Stores) -> None:
    assert s.keys.get(rid("k")) is None


# ---- stage_update: releases and other changes ---------------------------------------------------


def test_release_stores_the_state_frees_the_claims_and_the_buyer(s: Stores) -> None:
    event_id, user_id = rid("ev"), rid("u")
    keep = make_booking(event_id, user_id)
    s.hold(plan(keep, [0]))
    booking = make_booking(event_id, user_id, 2)
    s.hold(plan(booking, [1, 2], s.bookings.buyer_holds(event_id, user_id)))

    before, update_time = current(s, booking.id)
    after = before.moved_to("cancelled", utcnow(), "cancelled by the buyer")
    s.release(before, after, update_time, s.inventory.claims_of(event_id, booking.id))

    stored, _ = current(s, booking.id)
    assert stored == after
    assert [h["status"] for h in stored.history] == ["pending_payment", "cancelled"]
    assert s.inventory.claims_of(event_id, booking.id) == []
    assert set(s.inventory.claims(event_id)) == {0}
    assert s.bookings.buyer_holds(event_id, user_id).pending == {keep.id: keep.expires_at}
    records = records_of(s, booking.id)
    assert [(r["action"], r["sequence"]) for r in records] == [("booking.held", 1), ("booking.cancelled", 2)]
    assert records[1]["changes"]["status"] == ["pending_payment", "cancelled"]


def test_release_of_a_booking_whose_id_needs_quoting_in_a_field_path(s: Stores) -> None:
    """The buyer's pending holds are a map keyed by booking id; ids may hold '-' or start with a
    digit, which a field path must quote. The release removes exactly that entry."""
    event_id, user_id = rid("ev"), rid("u")
    keep = make_booking(event_id, user_id, id=f"keep_{secrets.token_hex(4)}")
    odd = make_booking(event_id, user_id, id=f"9-{secrets.token_hex(4)}-x")
    s.hold(plan(keep, [0]))
    s.hold(plan(odd, [1], s.bookings.buyer_holds(event_id, user_id)))
    assert set(s.bookings.buyer_holds(event_id, user_id).pending) == {keep.id, odd.id}

    before, update_time = current(s, odd.id)
    after = before.moved_to("expired", utcnow(), "hold ran out")
    s.release(before, after, update_time, s.inventory.claims_of(event_id, odd.id))

    assert s.bookings.buyer_holds(event_id, user_id).pending == {keep.id: keep.expires_at}
    assert set(buyer_doc(s, event_id, user_id).to_dict()) == {"pending", "recent"}  # no stray top-level field


def test_extending_a_hold_moves_its_end_in_the_buyers_pending_holds(s: Stores) -> None:
    event_id, user_id = rid("ev"), rid("u")
    booking = make_booking(event_id, user_id)
    s.hold(plan(booking, [0]))
    before, update_time = current(s, booking.id)
    later = before.expires_at + timedelta(minutes=15)
    after = before.changed(utcnow(), expires_at=later)

    uow = s.uow()
    s.bookings.stage_update(uow, before, after, since=update_time)
    uow.commit()

    assert current(s, booking.id)[0] == after
    assert s.bookings.buyer_holds(event_id, user_id).pending == {booking.id: later}


def test_release_of_a_booking_changed_since_read_writes_nothing(s: Stores) -> None:
    event_id, user_id = rid("ev"), rid("u")
    booking = make_booking(event_id, user_id, 2)
    s.hold(plan(booking, [3, 4]))
    before, stale = current(s, booking.id)
    claims = s.inventory.claims_of(event_id, booking.id)
    s.release(before, before.moved_to("expired", utcnow(), "hold ran out"), stale, claims)
    buyer_before = buyer_doc(s, event_id, user_id)

    with pytest.raises(ConcurrentUpdate):  # a second release that read the pending booking
        s.release(before, before.moved_to("cancelled", utcnow(), "cancelled"), stale, claims)
    stored, _ = current(s, booking.id)
    assert stored.status == "expired"
    assert [h["status"] for h in stored.history] == ["pending_payment", "expired"]
    assert buyer_doc(s, event_id, user_id).update_time == buyer_before.update_time
    assert [r["action"] for r in records_of(s, booking.id)] == ["booking.held", "booking.expired"]


def test_release_from_a_stale_booking_revision_alone_writes_nothing(s: Stores) -> None:
    """Only the booking changed since the release read it (its claims did not): the booking's own
    precondition must stop the release, and then nothing else is written either."""
    event_id, user_id = rid("ev"), rid("u")
    booking = make_booking(event_id, user_id, 2)
    s.hold(plan(booking, [3, 4]))
    before, stale = current(s, booking.id)
    claims = s.inventory.claims_of(event_id, booking.id)
    meanwhile = before.changed(utcnow(), payment_attempts=1, latest_payment_id="pay-1")  # a payment began
    uow = s.uow()
    s.bookings.stage_update(uow, before, meanwhile, since=stale)
    uow.commit()

    with pytest.raises(ConcurrentUpdate):
        s.release(before, before.moved_to("expired", utcnow(), "hold ran out"), stale, claims)

    assert current(s, booking.id)[0] == meanwhile
    assert sorted(c.n for c in s.inventory.claims_of(event_id, booking.id)) == [3, 4]
    assert s.bookings.buyer_holds(event_id, user_id).pending == {booking.id: booking.expires_at}
    assert [r["action"] for r in records_of(s, booking.id)] == ["booking.held"]


def test_release_never_frees_a_claim_taken_over_meanwhile(s: Stores) -> None:
    """The DAL does not judge expiry (the service does): whatever the clock, a claim written since
    the release read it is not deleted, and the release's other writes are not made either."""
    event_id = rid("ev")
    old = make_booking(event_id, rid("u"))
    s.hold(plan(old, [6]))
    before, update_time = current(s, old.id)
    claims = s.inventory.claims_of(event_id, old.id)  # read by the expiry ...

    taker = make_booking(event_id, rid("u"))  # ... while a new buyer takes the claim over
    s.hold(HoldPlan(taker, [(6, claims[0])], BuyerHolds()))

    with pytest.raises(ConcurrentUpdate):
        s.release(before, before.moved_to("expired", utcnow(), "hold ran out"), update_time, claims)
    assert s.inventory.claims_at(event_id, [6])[6].booking_id == taker.id
    assert current(s, old.id)[0] == old
    assert s.bookings.buyer_holds(event_id, old.user_id).pending == {old.id: old.expires_at}
    assert [r["action"] for r in records_of(s, old.id)] == ["booking.held"]


def test_a_cancel_through_the_service_commits_the_release_over_the_real_dals(s: Stores) -> None:
    """The production release (Releasing) over these DALs: the same stored outcome as above."""
    event_id, user_id = rid("ev"), rid("u")
    keep = make_booking(event_id, user_id)
    s.hold(plan(keep, [0]))
    booking = make_booking(event_id, user_id, 2)
    s.hold(plan(booking, [1, 2], s.bookings.buyer_holds(event_id, user_id)))
    releasing = Releasing(
        s.bookings,
        s.inventory,
        SlotPicker(s.inventory),
        TakenCounter(s.inventory.taken),
        s.uow,
        s.promos(),
        s.waitlist(),
    )

    cancelled = releasing.cancel(Principal(user_id=user_id, role="user", company_id=None), booking.id)

    assert cancelled.status == "cancelled"
    assert current(s, booking.id)[0] == cancelled
    assert s.inventory.claims_of(event_id, booking.id) == []
    assert s.bookings.buyer_holds(event_id, user_id).pending == {keep.id: keep.expires_at}
    records = records_of(s, booking.id)
    assert [(r["action"], r["actor"]) for r in records] == [
        ("booking.held", {"type": "user", "id": BUYER.id}),
        ("booking.cancelled", {"type": "user", "id": user_id}),
    ]


# ---- page and overdue ---------------------------------------------------------------------------


def test_page_lists_newest_first_and_continues_after_the_cursor(s: Stores) -> None:
    user_id = rid("u")
    base = datetime(2031, 1, 1, 12, 0, tzinfo=UTC)
    times = [base + timedelta(seconds=sec) for sec in (0, 5, 5, 5, 9, 12)]  # ties are ordered by id
    made = []
    for i, at in enumerate(times):
        booking = make_booking(rid("ev"), user_id, at=at)
        s.hold(plan(booking, [i]))
        made.append(booking)
    s.hold(plan(make_booking(rid("ev"), rid("u"), at=base), [0]))  # someone else's

    expected = [b.id for b in sorted(made, key=lambda b: (b.booking_time, b.id), reverse=True)]
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        found, cursor = s.bookings.page("user_id", user_id, 4, cursor)
        seen += [b.id for b in found]
        if cursor is None:
            break
    assert seen == expected
    assert len(s.bookings.page("user_id", user_id, 6, None)[0]) == 6
    assert s.bookings.page("user_id", user_id, 6, None)[1] is None  # exactly one page: no next cursor

    event_id = made[0].event_id
    only, after = s.bookings.page("event_id", event_id, 10, None)
    assert [b.id for b in only] == [made[0].id]
    assert only[0] == made[0]
    assert after is None


def test_overdue_finds_pending_bookings_past_their_hold_only(s: Stores) -> None:
    now = far_future()
    event_id = rid("ev")
    overdue = make_booking(event_id, rid("u"), at=now - timedelta(hours=1))
    running = make_booking(event_id, rid("u"), at=now)
    cancelled = make_booking(event_id, rid("u"), at=now - timedelta(hours=1), status="cancelled")
    for i, b in enumerate((overdue, running, cancelled)):
        s.hold(plan(b, [i]))

    # Every pending booking of the session expires before `now`: a limit above all of them.
    found = set(s.bookings.overdue(now, 10_000))
    assert overdue.id in found
    assert running.id not in found
    assert cancelled.id not in found
    assert running.id in set(s.bookings.overdue(running.expires_at, 10_000))  # expires_at <= now: overdue
    assert len(s.bookings.overdue(now, 1)) == 1


# ---- the service over the real DALs: an idempotent retry racing its original -------------------


class _ReplayRace(IdempotencyDAL):
    """Runs `meanwhile` right after the first idempotency lookup: the original request commits
    between its retry's key lookup and the retry's reading of the buyer's holds."""

    meanwhile: Any = None

    def get(self, key_id: str) -> IdempotencyRecord | None:
        record = super().get(key_id)
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
    s: Stores, capacity: int, max_pending: int, refusal: str
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
    keys = _ReplayRace(s.client)
    racing = replace(s, keys=keys)
    service = racing.holding(event, BookingRules(hold_ttl=TTL, max_pending_per_buyer=max_pending))
    principal = Principal(user_id=rid("u"), role="user", company_id=None)
    request = HoldRequest(event.id, 2, "checkout-1")
    original: list[Booking] = []
    keys.meanwhile = lambda: original.append(service.hold(lambda: principal, "sub", request)[0])

    try:
        retried, created = service.hold(lambda: principal, "sub", request)
    except (BookingLimitReached, SoldOut) as exc:
        pytest.fail(f"the retry of a request with the same Idempotency-Key got {refusal}: {exc}")
    assert retried.id == original[0].id
    assert created is False
    assert len(s.inventory.claims(event.id)) == 2
    assert [r["action"] for r in records_of(s, retried.id)] == ["booking.held"]
