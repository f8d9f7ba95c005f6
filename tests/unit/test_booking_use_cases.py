"""Holding, cancelling and expiring bookings (holding, releasing) against recording fakes.

Each test asserts what was committed (bookings, slot claims, the buyer's pending holds), the domain
events of the commit, and what was scheduled: never which methods were called.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.core.errors import (
    BookingLimitReached,
    Forbidden,
    IdempotencyKeyReused,
    InvalidState,
    NotFound,
    RateLimited,
    SoldOut,
    ValidationFailed,
)
from shared.dal.records import Claim
from shared.domain_events import Actor
from shared.models import Booking, Event
from shared.services.bookings.ports import HoldRequest
from shared.services.identity import Principal
from tests.unit.fakes import Clock, Wired

BUYER = Principal("buyer-1", "user", None)
OTHER = Principal("buyer-2", "user", None)
ADMIN = Principal("admin-1", "admin", "company-1")
TTL = timedelta(minutes=10)


def make_event(clock: Clock, **changes: object) -> Event:
    starts = clock.now() + timedelta(days=30)
    fields: dict[str, object] = {
        "id": "ev-1",
        "company_id": "company-1",
        "name": "Spring Concert",
        "description": None,
        "event_date": starts.date(),
        "event_time": starts.time().replace(second=0, microsecond=0),
        "timezone": "UTC",
        "venue": "Tempodrom",
        "location_lat": 52.5,
        "location_long": 13.38,
        "capacity": 5,
        "base_price": 2500,
        "surge_price": 4000,
        "surge_threshold": 0.8,
        "currency": "EUR",
        "max_tickets_per_booking": 4,
        "status": "published",
        "version": 1,
        "created_at": clock.now(),
        "updated_at": clock.now(),
        **changes,
    }
    return Event(**fields)  # type: ignore[arg-type]


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(monkeypatch)


@pytest.fixture
def app(clock: Clock) -> Wired:
    wired = Wired(hold_ttl=TTL, max_pending=2)
    wired.events.add(make_event(clock))
    return wired


def hold(app: Wired, who: Principal = BUYER, quantity: int = 2, key: str | None = None) -> tuple[Booking, bool]:
    return app.holding.hold(lambda: who, f"sub-{who.user_id}", HoldRequest("ev-1", quantity, key))


def claims(app: Wired, booking: Booking) -> list[Claim]:
    return app.claims_of(booking)


# ---- hold -----------------------------------------------------------------------------------------


def test_a_hold_commits_the_booking_its_claims_the_buyers_holds_and_booking_held(app: Wired, clock: Clock) -> None:
    booking, created = hold(app, quantity=2)

    assert created
    stored = app.booking_of(booking.id)
    assert stored == booking
    assert (stored.status, stored.quantity, stored.unit_price, stored.total_cost) == ("pending_payment", 2, 2500, 5000)
    assert (stored.user_id, stored.buyer_subject, stored.company_id) == ("buyer-1", "sub-buyer-1", "company-1")
    assert stored.expires_at == clock.now() + TTL
    held = claims(app, booking)
    assert [(c.state, c.booking_id, c.held_until) for c in held] == [("held", booking.id, stored.expires_at)] * 2
    assert app.bookings.buyer_holds("ev-1", "buyer-1").pending == {booking.id: stored.expires_at}
    assert app.inventory.taken("ev-1", clock.now()) == 2
    [event] = app.store.events
    assert (event.action, event.object_id, event.actor, event.sequence) == (
        "booking.held",
        booking.id,
        Actor.user("buyer-1"),
        1,
    )
    assert (event.event_id, event.company_id, event.topics) == ("ev-1", "company-1", ())
    assert app.store.published == []
    assert app.expiry.scheduled == {booking.id: stored.expires_at}


def test_the_same_idempotency_key_replays_the_same_booking(app: Wired) -> None:
    first, created = hold(app, key="key-1")
    again, created_again = hold(app, key="key-1")

    assert (created, created_again) == (True, False)
    assert again == first
    assert [b.id for b in app.bookings.all()] == [first.id]
    assert len(claims(app, first)) == 2
    assert app.store.actions() == ["booking.held"]


def test_the_same_key_replays_even_when_the_event_sold_out_since(app: Wired) -> None:
    first, _ = hold(app, quantity=4, key="key-1")
    hold(app, OTHER, quantity=1)  # the last ticket

    again, created = hold(app, quantity=4, key="key-1")

    assert (again, created) == (first, False)


def test_the_same_key_with_another_body_is_refused(app: Wired) -> None:
    first, _ = hold(app, quantity=2, key="key-1")

    with pytest.raises(IdempotencyKeyReused) as raised:
        hold(app, quantity=3, key="key-1")

    assert (raised.value.status, raised.value.code) == (422, "idempotency_key_reused")
    assert [b.id for b in app.bookings.all()] == [first.id]
    assert app.store.actions() == ["booking.held"]


def test_keys_belong_to_their_caller(app: Wired) -> None:
    mine, _ = hold(app, BUYER, key="key-1")
    theirs, created = hold(app, OTHER, key="key-1")

    assert created
    assert theirs.id != mine.id
    assert theirs.user_id == "buyer-2"


def test_a_hold_for_more_than_is_left_is_sold_out_and_commits_nothing(app: Wired, clock: Clock) -> None:
    hold(app, BUYER, quantity=4)
    committed = list(app.store.events)

    with pytest.raises(SoldOut) as raised:
        hold(app, OTHER, quantity=2)

    assert (raised.value.status, raised.value.code) == (409, "sold_out")
    assert app.store.events == committed
    assert app.inventory.taken("ev-1", clock.now()) == 4
    last, _ = hold(app, OTHER, quantity=1)
    assert last.unit_price == 4000, "4 of 5 taken: the surge price applies"
    with pytest.raises(SoldOut):
        hold(app, OTHER, quantity=1)


def test_a_hold_whose_answer_was_lost_is_counted_for_the_next_price(app: Wired, clock: Clock) -> None:
    """The process cannot add what it does not know it took: it counts again instead."""
    hold(app, OTHER, quantity=1)  # a count is cached: 0 taken, then 1 added
    app.store.answers_to_lose = 1
    with pytest.raises(ConnectionError):
        hold(app, BUYER, quantity=3)  # committed all the same: 4 of 5 taken

    last, _ = hold(app, Principal("buyer-3", "user", None), quantity=1)

    assert last.unit_price == 4000, "4 of 5 taken: the surge price applies"


@pytest.mark.parametrize("counted", ["before it ran out", "after it ran out"])
def test_expiring_a_hold_takes_it_off_the_count_only_if_the_count_had_it(
    app: Wired, clock: Clock, counted: str
) -> None:
    app.counter.max_age = 60  # one count, then only what this process adds and gives back
    lapsed, _ = hold(app, BUYER, quantity=1)  # counted here: 0, then 1 added
    clock.advance(TTL + timedelta(seconds=1))
    if counted == "after it ran out":
        app.counter.forget("ev-1")  # the next hold counts again: 0 live
    hold(app, OTHER, quantity=4)
    app.releasing.expire(lapsed.id)

    last, _ = hold(app, Principal("buyer-3", "user", None), quantity=1)

    assert last.unit_price == 4000, "4 of 5 taken: the surge price applies"


def test_two_processes_racing_for_the_last_ticket_give_it_to_one(app: Wired, clock: Clock) -> None:
    app.events.add(make_event(clock, capacity=1))
    other_process = Wired(hold_ttl=TTL, store=app.store)
    won: list[Booking] = []
    app.store.before_next_commit(lambda: won.append(hold(other_process, OTHER, quantity=1)[0]))

    with pytest.raises(SoldOut):
        hold(app, BUYER, quantity=1)

    [winner] = won
    assert [b.id for b in app.bookings.all()] == [winner.id]
    assert [c.booking_id for c in app.inventory.claims("ev-1").values()] == [winner.id]
    assert app.store.actions() == ["booking.held"]


def test_a_buyer_holds_at_most_the_limit_of_unpaid_bookings_per_event(app: Wired) -> None:
    first, _ = hold(app, quantity=1)
    second, _ = hold(app, quantity=1)

    with pytest.raises(BookingLimitReached) as raised:
        hold(app, quantity=1)

    assert (raised.value.status, raised.value.code) == (409, "booking_limit_reached")
    assert {b.id for b in app.bookings.all()} == {first.id, second.id}
    hold(app, OTHER, quantity=1)  # the limit is per buyer
    app.releasing.cancel(BUYER, first.id)
    third, created = hold(app, quantity=1)
    assert created, "a cancelled booking no longer counts"
    assert set(app.bookings.buyer_holds("ev-1", "buyer-1").pending) == {second.id, third.id}


def test_holding_and_cancelling_in_a_loop_is_rate_limited_per_buyer_and_event(app: Wired, clock: Clock) -> None:
    started = clock.now()
    for _ in range(5):
        booking, _ = hold(app, quantity=1)
        app.releasing.cancel(BUYER, booking.id)
        clock.advance(timedelta(seconds=2))

    with pytest.raises(RateLimited) as raised:
        hold(app, quantity=1)

    assert (raised.value.status, raised.value.code) == (429, "rate_limited")
    assert raised.value.headers["Retry-After"] == "50", "the oldest of the five (10 s ago) leaves the window in 50 s"
    assert len(app.bookings.all()) == 5
    assert app.inventory.taken("ev-1", clock.now()) == 0
    hold(app, OTHER, quantity=1)  # other buyers are not affected

    clock.advance(started + timedelta(minutes=1, seconds=1) - clock.now())
    assert hold(app, quantity=1)[1], "one more once the oldest hold left the window"


def test_the_rate_cap_holds_when_another_process_holds_meanwhile(clock: Clock) -> None:
    app = Wired(hold_ttl=TTL, max_pending=5, max_holds_per_minute=2)
    app.events.add(make_event(clock))
    other_process = Wired(hold_ttl=TTL, max_pending=5, max_holds_per_minute=2, store=app.store)
    hold(app, quantity=1)
    app.store.before_next_commit(lambda: hold(other_process, quantity=1))

    with pytest.raises(RateLimited):
        hold(app, quantity=1)

    assert len(app.bookings.all()) == 2, "the other process took the last hold of the minute"


def test_expired_holds_no_longer_count_against_the_limit(app: Wired, clock: Clock) -> None:
    hold(app, quantity=1)
    hold(app, quantity=1)
    clock.advance(TTL)

    booking, created = hold(app, quantity=1)

    assert created
    assert app.bookings.buyer_holds("ev-1", "buyer-1").pending == {booking.id: booking.expires_at}


def test_expired_claims_are_taken_over_and_the_old_booking_releases_nothing(app: Wired, clock: Clock) -> None:
    app.events.add(make_event(clock, capacity=2))
    app.counter.max_age = 0  # count at every hold (the cache would still say 2 taken)
    old, _ = hold(app, BUYER, quantity=2)
    clock.advance(TTL + timedelta(seconds=1))

    new, _ = hold(app, OTHER, quantity=2)
    app.releasing.expire(old.id)

    assert [c.booking_id for c in app.inventory.claims("ev-1").values()] == [new.id, new.id]
    assert app.booking_of(old.id).status == "expired"
    assert app.inventory.taken("ev-1", clock.now()) == 2


@pytest.mark.parametrize(
    ("changes", "error"),
    [({"status": "draft"}, NotFound), ({"max_tickets_per_booking": 1}, ValidationFailed)],
)
def test_holds_only_what_the_event_allows(app: Wired, clock: Clock, changes: dict[str, object], error: type) -> None:
    app.events.add(make_event(clock, **changes))
    with pytest.raises(error):
        hold(app, quantity=2)
    assert app.store.events == []


def test_no_hold_once_the_event_has_started(app: Wired, clock: Clock) -> None:
    started = clock.now() - timedelta(hours=1)
    app.events.add(make_event(clock, event_date=started.date(), event_time=started.time()))
    with pytest.raises(InvalidState):
        hold(app)
    assert app.store.events == []


# ---- cancel ---------------------------------------------------------------------------------------


def test_cancel_releases_the_tickets_and_records_booking_cancelled(app: Wired, clock: Clock) -> None:
    booking, _ = hold(app, quantity=2)

    cancelled = app.releasing.cancel(BUYER, booking.id)

    assert cancelled == app.booking_of(booking.id)
    assert cancelled.status == "cancelled"
    assert cancelled.history[-1]["reason"] == "cancelled by the buyer"
    assert claims(app, booking) == []
    assert app.inventory.taken("ev-1", clock.now()) == 0
    assert app.bookings.buyer_holds("ev-1", "buyer-1").pending == {}
    held, event = app.store.events_of(booking.id)
    assert (event.action, event.actor, event.changes["status"]) == (
        "booking.cancelled",
        Actor.user("buyer-1"),
        ["pending_payment", "cancelled"],
    )
    assert held.sequence < event.sequence


def test_cancelling_twice_changes_nothing_more(app: Wired) -> None:
    booking, _ = hold(app)
    first = app.releasing.cancel(BUYER, booking.id)

    assert app.releasing.cancel(BUYER, booking.id) == first
    assert app.store.actions(booking.id) == ["booking.held", "booking.cancelled"]


def test_released_tickets_can_be_held_again(app: Wired) -> None:
    booking, _ = hold(app, BUYER, quantity=4)
    app.releasing.cancel(BUYER, booking.id)

    again, created = hold(app, OTHER, quantity=4)

    assert created
    assert len(claims(app, again)) == 4


@pytest.mark.parametrize(("who", "error"), [(OTHER, NotFound), (ADMIN, Forbidden)])
def test_only_the_buyer_cancels(app: Wired, who: Principal, error: type) -> None:
    booking, _ = hold(app)
    with pytest.raises(error):
        app.releasing.cancel(who, booking.id)
    assert app.booking_of(booking.id).status == "pending_payment"


def test_a_booking_whose_hold_ran_out_cannot_be_cancelled(app: Wired, clock: Clock) -> None:
    booking, _ = hold(app)
    clock.advance(TTL)
    with pytest.raises(InvalidState):
        app.releasing.cancel(BUYER, booking.id)
    assert app.store.actions(booking.id) == ["booking.held"]


def test_a_cancel_racing_another_cancel_answers_cancelled(app: Wired) -> None:
    booking, _ = hold(app)
    app.store.before_next_commit(lambda: app.releasing.cancel(BUYER, booking.id))

    assert app.releasing.cancel(BUYER, booking.id).status == "cancelled"
    assert app.store.actions(booking.id) == ["booking.held", "booking.cancelled"]


# ---- expiry ---------------------------------------------------------------------------------------


def test_a_hold_that_has_not_run_out_is_not_expired(app: Wired, clock: Clock) -> None:
    booking, _ = hold(app)
    clock.advance(TTL - timedelta(seconds=1))

    assert app.releasing.expire(booking.id) is None
    assert app.booking_of(booking.id).status == "pending_payment"
    assert app.store.actions(booking.id) == ["booking.held"]


def test_expiry_releases_the_tickets_and_records_booking_expired_by_the_system(app: Wired, clock: Clock) -> None:
    booking, _ = hold(app, quantity=3)
    clock.advance(TTL)

    expired = app.releasing.expire(booking.id)

    assert expired is not None
    assert expired == app.booking_of(booking.id)
    assert (expired.status, expired.history[-1]["reason"]) == ("expired", "hold ran out")
    assert claims(app, booking) == []
    assert app.bookings.buyer_holds("ev-1", "buyer-1").pending == {}
    held, event = app.store.events_of(booking.id)
    assert (event.action, event.actor) == ("booking.expired", Actor.system("expiry"))
    assert held.sequence < event.sequence


def test_expiring_twice_changes_nothing_more(app: Wired, clock: Clock) -> None:
    booking, _ = hold(app)
    clock.advance(TTL)
    app.releasing.expire(booking.id)

    assert app.releasing.expire(booking.id) is None
    assert app.store.actions(booking.id) == ["booking.held", "booking.expired"]


def test_the_sweep_expires_every_overdue_booking(app: Wired, clock: Clock) -> None:
    early, _ = hold(app, BUYER, quantity=1)
    clock.advance(TTL / 2)
    late, _ = hold(app, OTHER, quantity=1)
    clock.advance(TTL / 2)

    assert app.releasing.sweep(limit=10) == 1
    assert app.releasing.sweep(limit=10) == 0

    assert [app.booking_of(b.id).status for b in (early, late)] == ["expired", "pending_payment"]
    assert app.store.events_of(early.id)[-1].actor == Actor.system("sweep")
