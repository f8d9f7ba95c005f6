"""The race matrix: every write route raced against itself and against the routes it conflicts with.

Each race is played in several rounds. In a round the racing requests are released together by a
barrier (one thread and one HTTP session each), then three rules are checked, as a user sees them:

- no answer is ever a 5xx, and every refusal is problem+json with one of API.md's stable codes;
- each answer is one the contract allows for that race;
- the stored state, read back over the API (and from localstripe where money is involved), is
  exactly one of the outcomes the contract allows.

Once a race's rounds are over, the invariants (dev/invariants.py) are checked over the events the
race created, read from the stores once the system has come to rest.

A round that breaks a rule is recorded and the remaining rounds still run, so a failing race says
how many of its rounds failed and how (`pytest -s` prints every round). The number of rounds is
chosen so that a race fails reliably when its guard is removed.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from dev import invariants
from dev.stack import Stack
from tests.e2e.bookings_helpers import (
    NO_TASKS,
    Http,
    code_of,
    firestore_for,
    shared_stack,
    stored_booking,
    tally,
    ts,
)
from tests.e2e.payments_helpers import deliver, intent_object, intents_of_booking, poll, refunds_of, stripe_event

Person = tuple[str, dict[str, Any]]
Call = Callable[[], requests.Response]

# API.md's stable codes, and the one the payment race adds (a payment of the booking is in flight).
STABLE_CODES = {
    "validation_error",
    "unauthenticated",
    "not_registered",
    "forbidden",
    "not_found",
    "already_registered",
    "sold_out",
    "booking_limit_reached",
    "booking_not_payable",
    "invalid_state",
    "capacity_below_sold",
    "version_conflict",
    "precondition_required",
    "idempotency_key_reused",
    "payload_too_large",
    "invalid_webhook",
    "payment_declined",
    "event_cancelled",
    "promo_code_invalid",
    "promo_code_exhausted",
    "promo_code_exists",
    "already_waiting",
    "tickets_available",
    "invalid_ticket",
    "wrong_event",
    "already_checked_in",
    "ticket_revoked",
    "invalid_invitation",
    "rate_limited",
    "unavailable",
    "payment_in_progress",
}
IN_PROGRESS = "409 payment_in_progress"
SETTLE = 10.0  # seconds for what happens after the answers (Pub/Sub, the finaliser, refunds)
QUIET = 20.0  # seconds for the system to come to rest before the invariants are judged
RACE_EVENTS: list[str] = []  # the events the race being played created (new_event adds to it)
_CLIENTS: dict[str, tuple[Any, Any]] = {}  # stack url -> (Firestore client, Stripe client)


# ---- firing and judging -------------------------------------------------------------------------


def fire(*calls: Call) -> list[requests.Response]:
    """Run every call on its own thread, all released at the same instant; answers in call order."""
    barrier = threading.Barrier(len(calls))

    def run(call: Call) -> requests.Response:
        barrier.wait(timeout=30)
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def after(delay: float, call: Call) -> Call:
    """`call`, `delay` seconds after the barrier (to land inside another request's work)."""

    def delayed() -> requests.Response:
        time.sleep(delay)
        return call()

    return delayed


def sane(response: requests.Response) -> str:
    """The answer as `201` or `409 sold_out`, once it has passed the rules every answer obeys."""
    where = f"{response.request.method} {response.request.path_url}"
    assert response.status_code < 500, f"{where} -> {response.status_code}: {response.text[:400]}"
    if response.status_code >= 400:
        kind = response.headers.get("Content-Type", "")
        assert kind.startswith("application/problem+json"), f"{where} -> {response.status_code} as {kind}"
        body = response.json()
        assert {"type", "title", "status", "detail", "code"} <= set(body), f"{where} -> {body}"
        assert body["status"] == response.status_code, f"{where} -> {body}"
        assert body["code"] in STABLE_CODES, f"{where} -> unknown code {body}"
    return code_of(response)


def answers_in(responses: Iterable[requests.Response], allowed: set[str]) -> Counter[str]:
    """Every answer sane and one of `allowed`; returns the tally."""
    codes = Counter(sane(r) for r in responses)
    assert set(codes) <= allowed, f"answers {dict(codes)}, allowed only {sorted(allowed)}"
    return codes


Check = Callable[[], None]


def play_rounds(race: str, rounds: int, play: Callable[[int], Check | None], settle: float = 0.0, *, on: Stack) -> None:
    """Play `rounds` rounds of a race; fail at the end with every round that broke a rule, and with
    every invariant the race's events (RACE_EVENTS, on the stack `on`) break once it is over.

    `play(i)` races and checks round i; it may return a check to run once every round has been
    played and `settle` seconds have passed (for outcomes that take a while to show)."""
    started = time.monotonic()
    failed: dict[int, str] = {}
    later: dict[int, Check] = {}
    for number in range(rounds):
        try:
            check = play(number)
        except AssertionError as exc:
            failed[number] = str(exc)
        else:
            if check is not None:
                later[number] = check
    if later:
        time.sleep(settle)
    for number, check in later.items():
        try:
            check()
        except AssertionError as exc:
            failed[number] = str(exc)
    print(f"\n[{race}] {rounds - len(failed)}/{rounds} rounds passed in {time.monotonic() - started:.1f}s")
    for number, reason in sorted(failed.items()):
        print(f"[{race}] round {number} FAILED: {reason}")
    checked_at = time.monotonic()
    broken = broken_invariants(on, RACE_EVENTS)
    took = time.monotonic() - checked_at
    print(f"[{race}] invariants over {len(RACE_EVENTS)} event(s): {len(broken)} violation(s) in {took:.1f}s")
    for violation in broken:
        print(f"[{race}] {violation}")
    summary = "\n".join(f"round {n}: {reason.splitlines()[0][:300]}" for n, reason in sorted(failed.items()))
    summary += "".join(f"\ninvariant {v}"[:300] for v in broken)
    counts = f"{len(failed)} of {rounds} rounds failed, {len(broken)} invariant violation(s)"
    ok = not failed and not broken
    assert ok, f"{race}: {counts}\n{summary}"


def broken_invariants(stack: Stack, event_ids: list[str]) -> list[invariants.Violation]:
    """The invariants' violations over these events of the stack, once it has come to rest."""
    if stack.url not in _CLIENTS:
        _CLIENTS[stack.url] = invariants.clients_for(stack)
    db, provider = _CLIENTS[stack.url]
    return invariants.check(db, provider, event_ids=event_ids, mail_dir=stack.mail_dir, settle=QUIET)


def report(race: str, number: int, **figures: Any) -> None:
    print(f"[{race}] round {number}: " + " ".join(f"{k}={v}" for k, v in figures.items()))


# ---- reading the outcome ------------------------------------------------------------------------


def read(http: Http, path: str, token: str | None = None) -> dict[str, Any]:
    response = http.call("GET", path, token)
    assert response.status_code == 200, f"GET {path} -> {response.status_code}: {response.text[:300]}"
    return dict(response.json())


def all_items(http: Http, path: str, token: str) -> list[dict[str, Any]]:
    """Every item of a paginated list."""
    items: list[dict[str, Any]] = []
    page: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 100, **({"page_token": page} if page else {})}
        response = http.call("GET", path, token, params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        items.extend(body["items"])
        page = body["next_page_token"]
        if not page:
            return items


class Money:
    """What localstripe holds for one booking: its succeeded PaymentIntents and their refunds."""

    def __init__(self, stack: Stack, booking_id: str) -> None:
        intents = intents_of_booking(stack, booking_id)
        self.succeeded = [i.id for i in intents if i.status == "succeeded"]
        self.refunds = {intent_id: len(refunds_of(stack, intent_id)) for intent_id in self.succeeded}

    @property
    def kept(self) -> list[str]:
        """Succeeded intents whose money was not given back."""
        return [i for i in self.succeeded if self.refunds[i] == 0]

    def __repr__(self) -> str:
        return f"Money(succeeded={self.succeeded}, refunds={self.refunds})"


# ---- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def race_events() -> Iterator[list[str]]:
    """Each race starts with no event of its own."""
    RACE_EVENTS.clear()
    yield RACE_EVENTS
    RACE_EVENTS.clear()


@pytest.fixture(scope="module")
def http(stack: Stack) -> Http:
    return Http(stack.url)


@pytest.fixture(scope="module")
def admin(http: Http) -> Person:
    return http.register("admin")


@pytest.fixture(scope="module")
def buyers(http: Http) -> list[Person]:
    """Buyers for every race of this module (the per-buyer cap is per event, so they are reused)."""
    return http.buyers(60)


def new_event(http: Http, admin: Person, capacity: int = 10, **overrides: Any) -> dict[str, Any]:
    name = f"Race {secrets.token_hex(3)}"
    event = http.create_event(admin[0], name=name, capacity=capacity, base_price=2500, surge_threshold=1.0, **overrides)
    RACE_EVENTS.append(event["id"])
    return event


def hold(http: Http, token: str, event_id: str, quantity: int = 1) -> dict[str, Any]:
    response = http.hold(token, event_id, quantity)
    assert response.status_code == 201, response.text
    return dict(response.json())


def pay(http: Http, token: str, booking_id: str, method: str = "pm_card_visa", key: str | None = None) -> Call:
    headers = {"Idempotency-Key": key} if key else {}
    body = {"payment_method": method}
    return lambda: http.call("POST", f"/v1/bookings/{booking_id}/payments", token, json=body, headers=headers)


def refund(http: Http, admin_token: str, booking_id: str) -> Call:
    return lambda: http.call("POST", f"/v1/bookings/{booking_id}/refund", admin_token)


def patch_event(http: Http, token: str, event_id: str, version: int, body: dict[str, Any]) -> Call:
    headers = {"If-Match": f'"{version}"'}
    return lambda: http.call("PATCH", f"/v1/events/{event_id}", token, json=body, headers=headers)


def confirmed_booking(http: Http, admin: Person, buyer: Person, quantity: int = 2) -> tuple[dict, dict, dict]:
    """A fresh event of capacity 10 and a booking of it paid server-side, read back `confirmed`."""
    event = new_event(http, admin)
    booking = hold(http, buyer[0], event["id"], quantity)
    paid = pay(http, buyer[0], booking["id"])()
    assert paid.status_code == 201, paid.text
    confirmed = poll(lambda: read(http, f"/v1/bookings/{booking['id']}", buyer[0])["status"] == "confirmed", SETTLE)
    assert confirmed, f"booking {booking['id']} was not confirmed"
    return event, booking, dict(paid.json())


# ---- 1. PATCH x PATCH ---------------------------------------------------------------------------


@pytest.mark.parametrize("events", ["fresh event per round", "same event every round"])
def test_patch_x_patch_one_wins_the_rest_get_412(http: Http, stack: Stack, admin: Person, events: str) -> None:
    """Six admin clients PATCH one event with the same If-Match, each a different name and capacity:
    one 200, five `412 version_conflict`, and the event is at version + 1 with the winner's change.
    (The clients share the company's admin token: one company has one admin in this API version.)"""
    race, clients = f"PATCH x PATCH, {events}", 6
    shared = new_event(http, admin, capacity=100) if events.startswith("same") else None

    def play(number: int) -> None:
        event = shared or new_event(http, admin, capacity=100)
        before = read(http, f"/v1/events/{event['id']}", admin[0])
        bodies = [{"name": f"Round {number} by client {i}", "capacity": 100 - i} for i in range(clients)]
        answers = fire(*(patch_event(http, admin[0], event["id"], before["version"], b) for b in bodies))
        report(race, number, answers=tally(answers))
        codes = answers_in(answers, {"200", "412 version_conflict"})
        assert codes["200"] == 1, f"{codes['200']} PATCHes with one If-Match won: {dict(codes)}"
        winner = next(i for i, a in enumerate(answers) if a.status_code == 200)
        won = answers[winner].json()
        assert won["version"] == before["version"] + 1
        assert answers[winner].headers["ETag"] == f'"{before["version"] + 1}"'
        after_race = read(http, f"/v1/events/{event['id']}", admin[0])
        assert after_race["version"] == before["version"] + 1, after_race
        assert (after_race["name"], after_race["capacity"]) == (bodies[winner]["name"], bodies[winner]["capacity"])
        assert after_race["available_tickets"] == after_race["capacity"], "nobody holds a ticket of this event"

    play_rounds(race, 10, play, on=stack)


# ---- 2 and 3. pay x pay -------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["no Idempotency-Key", "one Idempotency-Key", "after a decline"])
def test_pay_x_pay_charges_the_card_once(
    http: Http, stack: Stack, admin: Person, buyers: list[Person], variant: str
) -> None:
    """A double click on "pay": five concurrent payments of one booking with a card. The card is
    charged once; every 2xx answer is the same payment; the booking ends confirmed. Without a key a
    request may instead be told `409 payment_in_progress`, or, once the first payment has confirmed
    the booking, `409 booking_not_payable` (API.md's answer for paying a confirmed booking); with one
    key every answer is the payment."""
    race, clicks = f"pay x pay, {variant}", 5
    no_key = {"201", "200", IN_PROGRESS, "409 booking_not_payable"}
    allowed = {"201", "200"} if variant == "one Idempotency-Key" else no_key

    def play(number: int) -> None:
        token = buyers[number][0]
        event = new_event(http, admin)
        booking = hold(http, token, event["id"], 2)
        if variant == "after a decline":
            declined = pay(http, token, booking["id"], "pm_card_chargeCustomerFail")()
            assert code_of(declined) == "402 payment_declined", declined.text
        key = f"checkout-{secrets.token_hex(6)}" if variant == "one Idempotency-Key" else None
        answers = fire(*(pay(http, token, booking["id"], key=key) for _ in range(clicks)))

        payment_ids = {a.json()["id"] for a in answers if a.status_code in (200, 201)}
        money = Money(stack, booking["id"])
        report(race, number, answers=tally(answers), payments=len(payment_ids), charges=len(money.succeeded))
        codes = answers_in(answers, allowed)
        assert codes["201"] >= 1, f"nobody was told the payment was made: {dict(codes)}"
        assert len(money.succeeded) == 1, f"the card was charged {len(money.succeeded)} times: {money}"
        assert len(payment_ids) == 1, f"{len(payment_ids)} different payments for one booking: {dict(codes)}"

        payment_id = payment_ids.pop()
        done = poll(lambda: read(http, f"/v1/bookings/{booking['id']}", token)["status"] == "confirmed", SETTLE)
        final = read(http, f"/v1/bookings/{booking['id']}", token)
        assert done, f"booking is {final['status']}, not confirmed"
        assert final["payment"]["id"] == payment_id
        payment = read(http, f"/v1/payments/{payment_id}", token)
        assert payment["status"] == "succeeded", payment
        money = Money(stack, booking["id"])
        assert money.succeeded == [payment["transaction_id"]], money
        assert money.refunds == {payment["transaction_id"]: 0}, f"a charge had to be refunded: {money}"
        assert read(http, f"/v1/events/{event['id']}")["available_tickets"] == 8

    play_rounds(race, 8, play, on=stack)


# ---- 4. pay x cancel ----------------------------------------------------------------------------


def test_pay_x_cancel_ends_paid_or_cancelled_never_both(
    http: Http, stack: Stack, admin: Person, buyers: list[Person]
) -> None:
    """The buyer pays and cancels at once (two tabs); the cancel lands 0-300 ms into the payment.
    Either the booking is confirmed and one charge is kept, or it is cancelled and no charge is kept."""
    race = "pay x cancel"
    delays = [0.0, 0.0, 0.03, 0.06, 0.1, 0.15, 0.2, 0.3]

    def play(number: int) -> Check:
        token = buyers[number][0]
        event = new_event(http, admin, capacity=5)
        booking = hold(http, token, event["id"], 2)
        paid, cancelled = fire(
            pay(http, token, booking["id"]),
            after(delays[number], lambda: http.cancel(token, booking["id"])),
        )
        report(race, number, cancel_delay=delays[number], pay=code_of(paid), cancel=code_of(cancelled))
        answers_in([paid], {"201", "200", "409 booking_not_payable", IN_PROGRESS})
        answers_in([cancelled], {"200", "409 invalid_state"})
        if cancelled.status_code == 200:
            assert cancelled.json()["status"] == "cancelled", cancelled.json()

        def outcome() -> tuple[str, Money] | None:
            status = read(http, f"/v1/bookings/{booking['id']}", token)["status"]
            money = Money(stack, booking["id"])
            if status == "confirmed" and len(money.kept) == 1:
                return status, money
            if status == "cancelled" and not money.kept:
                return status, money
            return None

        def check() -> None:
            settled = poll(outcome, SETTLE, interval=0.3)
            final = read(http, f"/v1/bookings/{booking['id']}", token)
            assert settled, f"not settled after {SETTLE}s: booking {final['status']}, {Money(stack, booking['id'])}"
            status, money = settled
            left = read(http, f"/v1/events/{event['id']}")["available_tickets"]
            if status == "confirmed":
                assert cancelled.status_code == 409, "the buyer was told `cancelled` but the booking is confirmed"
                assert paid.status_code in (200, 201), "the booking is paid although the payment was refused"
                assert final["payment"]["transaction_id"] == money.kept[0]
                assert left == 3
            else:
                assert paid.status_code != 201 or final["payment"]["status"] == "refunded", final["payment"]
                assert left == 5
            report(race, number, outcome=status, charges=len(money.succeeded), refunded=sum(money.refunds.values()))

        return check

    play_rounds(race, len(delays), play, settle=1.0, on=stack)


# ---- 5. cancel x cancel, cancel x expiry --------------------------------------------------------


def test_cancel_x_cancel_all_answer_cancelled(
    http: Http, stack: Stack, admin: Person, buyers: list[Person], firestore_client: Any
) -> None:
    """Six concurrent cancels of one booking: all `200 cancelled`, written once, tickets back once."""
    race = "cancel x cancel"

    def play(number: int) -> None:
        token, bystander = buyers[2 * number][0], buyers[2 * number + 1][0]
        event = new_event(http, admin, capacity=5)
        booking = hold(http, token, event["id"], 2)
        hold(http, bystander, event["id"], 1)
        answers = fire(*(lambda: http.cancel(token, booking["id"]) for _ in range(6)))
        report(race, number, answers=tally(answers))
        answers_in(answers, {"200"})
        assert all(a.json()["status"] == "cancelled" for a in answers), [a.json()["status"] for a in answers]
        assert read(http, f"/v1/bookings/{booking['id']}", token)["status"] == "cancelled"
        assert read(http, f"/v1/events/{event['id']}")["available_tickets"] == 4, "the bystander still holds one"
        stored = stored_booking(firestore_client, booking["id"])
        assert stored is not None
        assert [h["status"] for h in stored["history"]] == ["pending_payment", "cancelled"], stored["history"]

    play_rounds(race, 5, play, on=stack)


@pytest.fixture(scope="module")
def no_tasks(pytestconfig: pytest.Config) -> Stack:
    """Holds of 3 s and no Cloud Task ever fires: the only expiry tasks are the ones the test sends."""
    return shared_stack(pytestconfig, "no-tasks", NO_TASKS)


def test_cancel_x_expiry_task_ends_cancelled_or_expired(no_tasks: Stack) -> None:
    """The buyer cancels while the expiry task runs, around the instant the hold runs out (from
    300 ms before to 1 s after). The booking ends `cancelled` or `expired`, one of them written once,
    the answers agree with it, and the tickets come back exactly once."""
    race = "cancel x expiry task"
    http, db = Http(no_tasks.url), firestore_for(no_tasks)
    admin = http.register("admin")
    offsets = [-0.3, -0.1, -0.03, 0.0, 0.0, 0.03, 0.1, 0.3, 1.0]
    people = http.buyers(3 * len(offsets))
    capacity = 4
    events = [http.create_event(admin[0], capacity=capacity) for _ in offsets]
    RACE_EVENTS.extend(event["id"] for event in events)
    bookings = []
    for number, event in enumerate(events):  # 0.25 s apart, so that each round fires at its own moment
        bookings.append(hold(http, people[3 * number][0], event["id"], 2))
        time.sleep(0.25)

    def play(number: int) -> Check:
        token, again, late = (p[0] for p in people[3 * number : 3 * number + 3])
        event, booking = events[number], bookings[number]
        moment = ts(booking["expires_at"]).timestamp() + offsets[number]
        time.sleep(max(0.0, moment - time.time()))
        fired_at = time.time() - ts(booking["expires_at"]).timestamp()
        cancelled, task = fire(lambda: http.cancel(token, booking["id"]), lambda: http.expire_task(booking["id"]))
        report(race, number, fired=f"{fired_at:+.3f}s", cancel=code_of(cancelled), task=task.text.strip())
        answers_in([cancelled], {"200", "409 invalid_state"})
        answers_in([task], {"200"})
        expired_by_task = task.json()["expired"]

        def check() -> None:  # once every round has fired (the checks would delay the next round)
            late_task = http.expire_task(booking["id"])  # a redelivered task settles an unwritten expiry
            answers_in([late_task], {"200"})
            final = read(http, f"/v1/bookings/{booking['id']}", token)["status"]
            stored = stored_booking(db, booking["id"])
            assert stored is not None
            written = [h["status"] for h in stored["history"]]
            assert final in ("cancelled", "expired"), final
            assert written == ["pending_payment", final], f"history {written}, reads {final}"
            if cancelled.status_code == 200:
                assert final == "cancelled", "the buyer was told `cancelled`"
                assert not expired_by_task, "the task says it expired a booking the buyer cancelled"
            else:
                assert final == "expired", "the cancel was refused but the booking is not expired"
            assert read(http, f"/v1/events/{event['id']}")["available_tickets"] == capacity
            # Released exactly once: the whole capacity can be held again, and not one ticket more.
            assert http.hold(again, event["id"], capacity).status_code == 201, "a ticket was lost"
            assert code_of(http.hold(late, event["id"], 1)) == "409 sold_out", "a ticket was released twice"

        return check

    play_rounds(race, len(offsets), play, on=no_tasks)


# ---- 6. refund x refund -------------------------------------------------------------------------


def test_refund_x_refund_refunds_once(http: Http, stack: Stack, admin: Person, buyers: list[Person]) -> None:
    """Four concurrent refunds of one paid booking by its admin: all `200 refunded`, one refund."""
    race = "refund x refund"

    def play(number: int) -> None:
        event, booking, paid = confirmed_booking(http, admin, buyers[number])
        answers = fire(*(refund(http, admin[0], booking["id"]) for _ in range(4)))
        refunds = refunds_of(stack, paid["transaction_id"])
        report(race, number, answers=tally(answers), refunds=len(refunds))
        answers_in(answers, {"200"})
        assert [a.json()["status"] for a in answers] == ["refunded"] * 4
        assert len(refunds) == 1, f"{len(refunds)} refunds at the provider for one payment"
        assert refunds[0].amount == booking["total_cost"]
        assert read(http, f"/v1/bookings/{booking['id']}", admin[0])["status"] == "refunded"
        assert read(http, f"/v1/payments/{paid['id']}", admin[0])["status"] == "refunded"
        assert read(http, f"/v1/events/{event['id']}")["available_tickets"] == 10

    play_rounds(race, 5, play, on=stack)


# ---- 7. refund x late webhook -------------------------------------------------------------------


def test_refund_x_redelivered_webhook_stays_refunded(
    http: Http, stack: Stack, admin: Person, buyers: list[Person]
) -> None:
    """The admin refunds while Stripe re-delivers `payment_intent.succeeded` for the same intent (once
    under a new event id, once as a duplicate of an event it sent before): the refund stands."""
    race = "refund x late webhook"

    def play(number: int) -> Check:
        token = buyers[number][0]
        event, booking, paid = confirmed_booking(http, admin, buyers[number])
        old = stripe_event("payment_intent.succeeded", intent_object(paid, "succeeded"))
        answers_in([deliver(http, stack.webhook_secret, old)], {"200"})  # delivered once before the race
        new = stripe_event("payment_intent.succeeded", intent_object(paid, "succeeded"))
        refunded, *webhooks = fire(
            refund(http, admin[0], booking["id"]),
            lambda: deliver(http, stack.webhook_secret, new),
            lambda: deliver(http, stack.webhook_secret, old),
        )
        report(race, number, refund=code_of(refunded), webhooks=[code_of(w) for w in webhooks])
        answers_in([refunded], {"200"})
        answers_in(webhooks, {"200"})
        assert refunded.json()["status"] == "refunded"

        def check() -> None:  # after a pause: nothing the webhooks set off has revived the booking
            assert read(http, f"/v1/bookings/{booking['id']}", token)["status"] == "refunded"
            assert read(http, f"/v1/payments/{paid['id']}", token)["status"] == "refunded"
            assert len(refunds_of(stack, paid["transaction_id"])) == 1
            assert read(http, f"/v1/events/{event['id']}")["available_tickets"] == 10

        return check

    play_rounds(race, 5, play, settle=1.5, on=stack)


# ---- 8. capacity change x holds -----------------------------------------------------------------


def test_capacity_changes_x_holds_never_hold_more_than_capacity(
    http: Http, stack: Stack, admin: Person, buyers: list[Person]
) -> None:
    """50 buyers hold one ticket each, arriving over one second, while two admin clients keep
    lowering the capacity to just above what is held at that moment (so the holds in flight race it)
    and raising it again. Each PATCH carries a fresh If-Match and is sent again on 412. Holds end
    at most the final capacity, and what is available is the capacity minus what is held."""
    race = "capacity x holds"
    crowd, admins = buyers[:50], 2

    def admin_client(event_id: str, first: str, rush_over: threading.Event) -> list[requests.Response]:
        """Lower and raise in turn until the holds are answered, each from a fresh read, again on 412."""
        answers: list[requests.Response] = []
        step = first
        while not rush_over.is_set() and len(answers) < 40:
            current = read(http, f"/v1/events/{event_id}", admin[0])
            held_now = current["capacity"] - current["available_tickets"]
            target = held_now + (6 if step == "lower" else 12)
            answers.append(patch_event(http, admin[0], event_id, current["version"], {"capacity": target})())
            if answers[-1].status_code != 412:
                step = "raise" if step == "lower" else "lower"
        return answers

    def play(number: int) -> None:
        event = new_event(http, admin, capacity=50)
        barrier, rush_over = threading.Barrier(len(crowd) + admins), threading.Event()

        def buyer(index: int, token: str) -> requests.Response:
            barrier.wait(timeout=30)
            time.sleep(index * 0.03)
            return http.hold(token, event["id"], 1)

        def manager(first: str) -> list[requests.Response]:
            barrier.wait(timeout=30)
            return admin_client(event["id"], first, rush_over)

        with ThreadPoolExecutor(max_workers=len(crowd) + admins) as pool:
            patches = [pool.submit(manager, first) for first in ("lower", "raise")]
            holds = [pool.submit(buyer, i, token) for i, (token, _) in enumerate(crowd)]
            hold_answers = [f.result() for f in holds]
            rush_over.set()
            patch_answers = [a for f in patches for a in f.result()]

        final = read(http, f"/v1/events/{event['id']}", admin[0])
        report(race, number, holds=tally(hold_answers), patches=tally(patch_answers), final_capacity=final["capacity"])
        held = answers_in(hold_answers, {"201", "409 sold_out"})["201"]
        answers_in(patch_answers, {"200", "409 capacity_below_sold", "412 version_conflict"})
        pending = all_items(http, f"/v1/events/{event['id']}/bookings", admin[0])
        assert all(b["status"] == "pending_payment" for b in pending), Counter(b["status"] for b in pending)
        assert len(pending) == held, f"{held} holds answered 201, {len(pending)} stored"
        assert held <= final["capacity"], f"{held} tickets held of a capacity of {final['capacity']}"
        assert final["available_tickets"] == final["capacity"] - held, final

    play_rounds(race, 3, play, on=stack)


# ---- 9. hold x hold with one Idempotency-Key ----------------------------------------------------


@pytest.mark.parametrize("bodies", ["same body", "two bodies"])
def test_hold_x_hold_with_one_idempotency_key_makes_one_booking(
    http: Http, stack: Stack, admin: Person, buyers: list[Person], bodies: str
) -> None:
    """One buyer sends 16 holds with one Idempotency-Key at once. With the same body: 16 x 201, one
    booking. With two bodies (quantity 1 or 2, half each): the body that won is answered 201 with
    the booking every time, the other `422 idempotency_key_reused`; still one booking."""
    race = f"hold x hold, one key, {bodies}"
    event = new_event(http, admin, capacity=100, max_tickets_per_booking=4)

    def play(number: int) -> None:
        token = buyers[number][0]
        key = f"hold-{secrets.token_hex(6)}"
        quantities = [1] * 16 if bodies == "same body" else [1 + i % 2 for i in range(16)]
        answers = fire(*(lambda q=q: http.hold(token, event["id"], q, key=key) for q in quantities))
        made = {a.json()["id"]: a.json()["quantity"] for a in answers if a.status_code == 201}
        report(race, number, answers=tally(answers), bookings=len(made))
        answers_in(answers, {"201"} if bodies == "same body" else {"201", "422 idempotency_key_reused"})
        assert len(made) == 1, f"{len(made)} different bookings for one key"
        ((booking_id, quantity),) = made.items()
        for asked, answer in zip(quantities, answers, strict=True):
            assert code_of(answer) == ("201" if asked == quantity else "422 idempotency_key_reused"), (asked, quantity)
        mine = [b for b in all_items(http, "/v1/bookings", token) if b["event_id"] == event["id"]]
        assert [(b["id"], b["quantity"], b["status"]) for b in mine] == [(booking_id, quantity, "pending_payment")]
        other = 3 - quantity if bodies == "two bodies" else 3
        assert code_of(http.hold(token, event["id"], other, key=key)) == "422 idempotency_key_reused"

    play_rounds(race, 5, play, on=stack)
    taken = 100 - read(http, f"/v1/events/{event['id']}")["available_tickets"]
    held = all_items(http, f"/v1/events/{event['id']}/bookings", admin[0])
    assert taken == sum(b["quantity"] for b in held), (taken, held)
