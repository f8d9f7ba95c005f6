"""Many buyers rush one event over HTTP at once: never oversold, never a ticket lost.

Buyers are registered before each rush (registration is not part of the race); then every attempt
is sent from its own thread (50 at a time) by its own buyer. What is checked afterwards is what the
buyers were told (status codes) against what is stored (bookings and slot claims) and what the
event shows. `pytest -s` prints the figures of each rush; wall time is printed, never asserted.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from dev.stack import Stack
from tests.e2e.bookings_helpers import (
    SHORT_HOLDS,
    Http,
    claim_docs,
    code_of,
    firestore_for,
    live_claims,
    rush,
    shared_stack,
    stored_bookings,
    tally,
    ts,
    wait_until,
)

Person = tuple[str, dict[str, Any]]
SOLD_OUT = "409 sold_out"


@pytest.fixture(scope="module")
def http(stack: Stack) -> Http:
    return Http(stack.url)


@pytest.fixture(scope="module")
def admin(http: Http) -> Person:
    return http.register("admin")


def report(name: str, answers: list[requests.Response], wall: float, **figures: Any) -> None:
    holds = sum(1 for r in answers if r.status_code == 201)
    extra = " ".join(f"{k}={v}" for k, v in figures.items())
    rate = holds / wall if wall else 0.0
    print(
        f"\n[rush {name}] attempts={len(answers)} holds={holds} answers={tally(answers)} "
        f"wall={wall:.2f}s holds/s={rate:.0f} {extra}"
    )


def held_bookings(answers: list[requests.Response]) -> dict[str, dict[str, Any]]:
    return {r.json()["id"]: r.json() for r in answers if r.status_code == 201}


def assert_claims_match_bookings(
    claims: list[dict[str, Any]], bookings: dict[str, dict[str, Any]], capacity: int
) -> None:
    """Every live claim belongs to one of `bookings`, below capacity, and each booking has exactly
    `quantity` claims."""
    numbers = [c["n"] for c in claims]
    assert len(numbers) == len(set(numbers)), "two claims on one slot"
    assert all(0 <= n < capacity for n in numbers), sorted(numbers)
    per_booking = Counter(c["booking_id"] for c in claims)
    assert set(per_booking) <= set(bookings), set(per_booking) - set(bookings)
    for booking_id, booking in bookings.items():
        assert per_booking.get(booking_id, 0) == booking["quantity"], (booking_id, booking["quantity"])


def test_rush_of_single_tickets_sells_exactly_the_capacity(http: Http, admin: Person, firestore_client: Any) -> None:
    capacity, attempts = 40, 120
    event = http.create_event(admin[0], capacity=capacity)
    buyers = http.buyers(attempts)

    answers, wall = rush(lambda b: http.hold(b[0], event["id"], 1), buyers)
    report("a: 120 x 1 on 40", answers, wall)

    codes = Counter(code_of(r) for r in answers)
    assert codes == {"201": capacity, SOLD_OUT: attempts - capacity}, codes
    held = held_bookings(answers)
    assert len(held) == capacity
    assert {b["user_id"] for b in held.values()} == {
        b[1]["id"] for b, r in zip(buyers, answers, strict=True) if r.status_code == 201
    }

    stored = stored_bookings(firestore_client, event["id"])
    assert set(stored) == set(held)
    assert all(s["status"] == "pending_payment" and s["quantity"] == 1 for s in stored.values())
    claims = claim_docs(firestore_client, event["id"])
    assert all(c["state"] == "held" for c in claims)
    assert len(claims) == capacity
    assert sorted(c["n"] for c in claims) == list(range(capacity))
    assert_claims_match_bookings(claims, held, capacity)
    assert sum(b["quantity"] for b in held.values()) == capacity
    assert http.event(event["id"])["available_tickets"] == 0


def test_rush_of_mixed_quantities_never_oversells_nor_refuses_what_is_left(
    http: Http, admin: Person, firestore_client: Any
) -> None:
    capacity, attempts = 60, 70
    event = http.create_event(admin[0], capacity=capacity, max_tickets_per_booking=4)
    rng = random.Random(20260501)
    buyers = [(token, user, rng.randint(1, 4)) for token, user in http.buyers(attempts)]

    answers, wall = rush(lambda b: http.hold(b[0], event["id"], b[2]), buyers)
    held = held_bookings(answers)
    held_quantity = sum(b["quantity"] for b in held.values())
    report("b: 70 x 1-4 on 60", answers, wall, tickets_held=held_quantity)

    codes = Counter(code_of(r) for r in answers)
    assert set(codes) <= {"201", SOLD_OUT}, codes
    for (_token, _user, quantity), answer in zip(buyers, answers, strict=True):
        if answer.status_code == 201:
            assert answer.json()["quantity"] == quantity
    claims = live_claims(firestore_client, event["id"])
    assert len(claims) == held_quantity <= capacity
    assert_claims_match_bookings(claims, held, capacity)
    assert set(stored_bookings(firestore_client, event["id"])) == set(held)
    available = http.available(event["id"])
    assert available == capacity - held_quantity
    # Nothing is released during this rush, so what is left only shrinks: a request refused as
    # sold out asked for more than was left then, hence more than is left now.
    refused = [q for (_t, _u, q), a in zip(buyers, answers, strict=True) if code_of(a) == SOLD_OUT]
    assert all(available < q for q in refused), (available, sorted(refused))


def test_rush_with_cancellations_gives_the_cancelled_tickets_back(
    http: Http, admin: Person, firestore_client: Any
) -> None:
    capacity, attempts = 30, 90
    event = http.create_event(admin[0], capacity=capacity, max_tickets_per_booking=3)
    rng = random.Random(7)
    plan = [(token, user, rng.randint(1, 3), i % 3 == 0) for i, (token, user) in enumerate(http.buyers(attempts))]

    def attempt(entry: tuple[str, dict[str, Any], int, bool]) -> tuple[requests.Response, requests.Response | None]:
        token, _user, quantity, cancels = entry
        answer = http.hold(token, event["id"], quantity)
        if answer.status_code == 201 and cancels:
            return answer, http.cancel(token, answer.json()["id"])
        return answer, None

    results, wall = rush(attempt, plan)
    answers = [a for a, _ in results]
    cancel_answers = [c for _, c in results if c is not None]
    held = held_bookings(answers)
    cancelled_ids = {c.json()["id"] for c in cancel_answers if c.status_code == 200}
    kept = {k: v for k, v in held.items() if k not in cancelled_ids}
    kept_quantity = sum(b["quantity"] for b in kept.values())
    report("c: 90 x 1-3 on 30, every third cancels", answers, wall, cancelled=len(cancelled_ids), kept=kept_quantity)

    assert set(Counter(code_of(r) for r in answers)) <= {"201", SOLD_OUT}
    assert all(c.status_code == 200 and c.json()["status"] == "cancelled" for c in cancel_answers), [
        code_of(c) for c in cancel_answers
    ]
    assert cancelled_ids, "no buyer got to cancel: the test proved nothing"
    claims = live_claims(firestore_client, event["id"])
    assert len(claims) == kept_quantity <= capacity
    assert_claims_match_bookings(claims, kept, capacity)
    stored = stored_bookings(firestore_client, event["id"])
    assert set(stored) == set(held)
    assert {k for k, v in stored.items() if v["status"] == "cancelled"} == cancelled_ids
    assert http.available(event["id"]) == capacity - kept_quantity


@pytest.fixture(scope="module")
def short_holds(pytestconfig: pytest.Config) -> Stack:
    return shared_stack(pytestconfig, "short-holds", SHORT_HOLDS)


def test_rush_after_holds_ran_out_takes_over_their_tickets(short_holds: Stack) -> None:
    """Holds last 3 s: a second wave after the first wave's holds ran out buys the same tickets,
    whether the expiry tasks have run yet or not; at no moment are more tickets live than exist."""
    http = Http(short_holds.url)
    client = firestore_for(short_holds)
    capacity, per_wave = 20, 40
    admin_token, _ = http.register("admin")
    event = http.create_event(admin_token, capacity=capacity)
    first_buyers, second_buyers = http.buyers(per_wave), http.buyers(per_wave)

    most_live = 0
    watching = threading.Event()

    def watch() -> None:
        nonlocal most_live
        while not watching.is_set():
            most_live = max(most_live, len(live_claims(client, event["id"])))
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        first, wall1 = rush(lambda b: http.hold(b[0], event["id"], 1), first_buyers)
        first_held = held_bookings(first)
        report("d: wave 1, 40 x 1 on 20", first, wall1)
        assert Counter(code_of(r) for r in first) == {"201": capacity, SOLD_OUT: per_wave - capacity}
        assert http.available(event["id"]) == 0

        wait_until(max(ts(b["expires_at"]) for b in first_held.values()))
        assert http.available(event["id"]) == capacity  # expired on read, task or no task

        second, wall2 = rush(lambda b: http.hold(b[0], event["id"], 1), second_buyers)
        second_held = held_bookings(second)
        report("d: wave 2, 40 x 1 on 20", second, wall2)
    finally:
        watching.set()
        watcher.join(timeout=5)

    # On a slow machine a wave can outlast a 3 s hold: a second-wave hold that ran out during the
    # wave freed its ticket for a later buyer of the same wave. Never more live than exist, though.
    wave_ended = datetime.now(UTC)
    lapsed = {bid for bid, b in second_held.items() if ts(b["expires_at"]) <= wave_ended}
    codes = Counter(code_of(r) for r in second)
    assert set(codes) <= {"201", SOLD_OUT}
    assert capacity <= codes["201"] <= capacity + len(lapsed), (codes, len(lapsed))
    now = datetime.now(UTC)
    still_held = {bid: b for bid, b in second_held.items() if ts(b["expires_at"]) > now}
    live = live_claims(client, event["id"], now)
    assert_claims_match_bookings(live, still_held, capacity)
    assert len(claim_docs(client, event["id"])) == capacity  # taken over or recreated, never doubled
    assert most_live <= capacity
    owners = {r.json()["id"]: b[0] for b, r in zip(first_buyers, first, strict=True) if r.status_code == 201}
    for booking_id, token in owners.items():
        assert http.booking(token, booking_id).json()["status"] == "expired"
    before = datetime.now(UTC)
    available = http.available(event["id"])
    after = datetime.now(UTC)
    held_at = [sum(1 for b in second_held.values() if ts(b["expires_at"]) > t) for t in (before, after)]
    assert capacity - held_at[0] <= available <= capacity - held_at[1]  # 0 while every hold lasts


def _rush_while_changing_capacity(
    http: Http, admin: Person, start: int, change: Any, attempts: int, after: int
) -> tuple[list[requests.Response], dict[str, Any], float, requests.Response]:
    """Rush `attempts` single-ticket holds; once `after` of them were answered, `change` the capacity."""
    event = http.create_event(admin[0], capacity=start)
    buyers = http.buyers(attempts)
    answered = threading.Semaphore(0)
    outcome: dict[str, requests.Response] = {}

    def attempt(buyer: Person) -> requests.Response:
        response = http.hold(buyer[0], event["id"], 1)
        answered.release()
        return response

    def admin_changes() -> None:
        for _ in range(after):
            answered.acquire(timeout=30)
        outcome["patch"] = change(event["id"])

    changer = threading.Thread(target=admin_changes)
    changer.start()
    answers, wall = rush(attempt, buyers)
    changer.join(timeout=60)
    return answers, event, wall, outcome["patch"]


def test_raising_capacity_during_a_rush(http: Http, admin: Person, firestore_client: Any) -> None:
    answers, event, wall, patch = _rush_while_changing_capacity(
        http, admin, 40, lambda eid: http.set_capacity(admin[0], eid, 60), attempts=150, after=5
    )
    report("e: 150 x 1 on 40 raised to 60", answers, wall, patch=code_of(patch))
    assert patch.status_code == 200, patch.text
    assert patch.json()["capacity"] == 60
    assert set(Counter(code_of(r) for r in answers)) <= {"201", SOLD_OUT}, tally(answers)

    held = held_bookings(answers)
    claims = live_claims(firestore_client, event["id"])
    assert len(claims) == len(held) <= 60
    assert_claims_match_bookings(claims, held, 60)
    assert http.available(event["id"]) == 60 - len(held)
    if len(held) < 60:  # the raise landed late in the rush: what it added is still for sale
        late, _ = http.register()
        assert http.hold(late, event["id"], 1).status_code == 201
        assert http.available(event["id"]) == 59 - len(held)


def test_lowering_capacity_during_a_rush_above_every_possible_hold(
    http: Http, admin: Person, firestore_client: Any
) -> None:
    """80 buyers, capacity 100 lowered to 85 while they rush: the change always fits, slots
    85-99 are retired (live claims there are moved below 85) and every buyer still gets a ticket."""
    answers, event, wall, patch = _rush_while_changing_capacity(
        http, admin, 100, lambda eid: http.set_capacity(admin[0], eid, 85), attempts=80, after=10
    )
    report("e: 80 x 1 on 100 lowered to 85", answers, wall, patch=code_of(patch))
    assert patch.status_code == 200, patch.text
    assert Counter(code_of(r) for r in answers) == {"201": 80}, tally(answers)

    held = held_bookings(answers)
    claims = live_claims(firestore_client, event["id"])
    assert len(claims) == 80
    assert_claims_match_bookings(claims, held, 85)
    retired = [c for c in claim_docs(firestore_client, event["id"]) if c["state"] == "retired"]
    assert sorted(c["n"] for c in retired) == list(range(85, 100))
    final = http.event(event["id"])
    assert (final["capacity"], final["available_tickets"]) == (85, 5)


def test_lowering_capacity_during_a_rush_that_may_get_there_first(
    http: Http, admin: Person, firestore_client: Any
) -> None:
    start = 60
    targets: list[int] = []

    def lower(event_id: str) -> requests.Response:
        held_now = start - http.available(event_id)
        targets.append(min(start - 1, held_now + 10))  # above what is held at this moment
        return http.set_capacity(admin[0], event_id, targets[-1])

    answers, event, wall, patch = _rush_while_changing_capacity(http, admin, start, lower, attempts=100, after=5)
    report("e: 100 x 1 on 60 lowered", answers, wall, patch=code_of(patch), target=targets[-1])
    if patch.status_code == 409:  # the holds got there first
        assert patch.json()["code"] == "capacity_below_sold"
    else:
        assert patch.status_code == 200, patch.text
    final = http.event(event["id"])
    capacity = targets[-1] if patch.status_code == 200 else start
    assert final["capacity"] == capacity
    assert set(Counter(code_of(r) for r in answers)) <= {"201", SOLD_OUT}, tally(answers)

    held = held_bookings(answers)
    claims = live_claims(firestore_client, event["id"])
    assert len(claims) == len(held) <= capacity
    assert_claims_match_bookings(claims, held, capacity)
    retired = [c for c in claim_docs(firestore_client, event["id"]) if c["state"] == "retired"]
    assert sorted(c["n"] for c in retired) == list(range(capacity, start))
    assert final["available_tickets"] == capacity - len(held)


def test_concurrent_requests_with_one_idempotency_key_make_one_booking(
    http: Http, admin: Person, firestore_client: Any
) -> None:
    event = http.create_event(admin[0], capacity=50)
    token, user = http.register()

    answers, wall = rush(lambda _i: http.hold(token, event["id"], 2, key="checkout-42"), range(20))
    report("f: 20 x same key", answers, wall)

    assert Counter(code_of(r) for r in answers) == {"201": 20}, tally(answers)
    assert len({r.json()["id"] for r in answers}) == 1
    stored = stored_bookings(firestore_client, event["id"])
    assert len(stored) == 1
    assert next(iter(stored.values()))["user_id"] == user["id"]
    assert len(live_claims(firestore_client, event["id"])) == 2
    assert http.available(event["id"]) == 48


def test_concurrent_requests_of_one_buyer_respect_the_per_buyer_cap(
    http: Http, admin: Person, firestore_client: Any
) -> None:
    event = http.create_event(admin[0], capacity=50)
    token, _user = http.register()

    answers, wall = rush(lambda _i: http.hold(token, event["id"], 1), range(20))
    report("g: 20 x one buyer, no key", answers, wall)

    assert Counter(code_of(r) for r in answers) == {"201": 1, "409 booking_limit_reached": 19}, tally(answers)
    assert len(stored_bookings(firestore_client, event["id"])) == 1
    assert len(live_claims(firestore_client, event["id"])) == 1
    assert http.available(event["id"]) == 49


def test_concurrent_cancels_of_one_booking_all_answer_cancelled_and_release_once(
    http: Http, admin: Person, firestore_client: Any
) -> None:
    """A double-clicked (or retried) cancel: API.md makes cancelling a cancelled booking a 200."""
    event = http.create_event(admin[0], capacity=10)
    token, _ = http.register()
    booking = http.hold(token, event["id"], 3).json()
    other_token, _ = http.register()
    other = http.hold(other_token, event["id"], 2).json()

    answers, wall = rush(lambda _i: http.cancel(token, booking["id"]), range(10))
    report("cancel: 10 x one booking", answers, wall)

    assert Counter(code_of(r) for r in answers) == {"200": 10}, tally(answers)
    assert all(r.json()["status"] == "cancelled" for r in answers)
    stored = stored_bookings(firestore_client, event["id"])[booking["id"]]
    assert [h["status"] for h in stored["history"]] == ["pending_payment", "cancelled"]
    claims = live_claims(firestore_client, event["id"])
    assert {c["booking_id"] for c in claims} == {other["id"]}
    assert http.available(event["id"]) == 8
