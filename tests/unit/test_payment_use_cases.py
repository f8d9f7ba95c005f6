"""Paying, provider events, finalising, refunding and reconciling against recording fakes.

Each test asserts what was committed (payments, bookings, claims), the domain events and what the
relay published, and the money the fake provider moved (charges, refunds, cancellations).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from shared.core.errors import (
    BookingNotPayable,
    Forbidden,
    IdempotencyKeyReused,
    InvalidState,
    InvalidWebhook,
    NotFound,
    PaymentDeclined,
    PaymentInProgress,
    Unavailable,
)
from shared.dal.records import SOLD_UNTIL
from shared.domain_events import BOOKING_CONFIRMED, INTEGRATION_EVENTS, PAYMENT_EVENTS, Actor
from shared.models import Booking, Event, Payment, User
from shared.payments.gateway import Intent
from shared.services.bookings.ports import HoldRequest
from shared.services.identity import Principal
from shared.services.notifications import ConfirmationNotifier
from shared.services.payments.finalising import LATE
from shared.services.payments.paying import PayOutcome, PayRequest
from shared.services.slots import NoFreeSlots
from tests.unit.fakes import Clock, FakeMailer, FakeUserStore, Wired

BUYER = Principal("buyer-1", "user", None)
OTHER = Principal("buyer-2", "user", None)
ADMIN = Principal("admin-1", "admin", "company-1")
TTL = timedelta(minutes=10)
CARD = "pm_card_visa"
FINALISER, RECONCILER = Actor.system("finaliser"), Actor.system("reconciler")


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(monkeypatch)


@pytest.fixture
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    """A request that finds another one's provider call under way answers at once instead of waiting."""
    monkeypatch.setattr("shared.services.payments.paying.WAIT_FOR_OTHER", timedelta(0))
    monkeypatch.setattr("shared.services.payments.refunding.WAIT_FOR_OTHER", timedelta(0))


def wired(clock: Clock, capacity: int = 4, hold_ttl: timedelta = TTL) -> Wired:
    app = Wired(hold_ttl=hold_ttl)
    app.counter.max_age = 0  # count at every hold: tests move the clock, not the monotonic time
    starts = clock.now() + timedelta(days=30)
    app.events.add(
        Event(
            id="ev-1",
            company_id="company-1",
            name="Spring Concert",
            description=None,
            event_date=starts.date(),
            event_time=starts.time().replace(second=0, microsecond=0),
            timezone="UTC",
            venue="Tempodrom",
            location_lat=52.5,
            location_long=13.38,
            capacity=capacity,
            base_price=2500,
            surge_price=2500,
            surge_threshold=1.0,
            currency="EUR",
            max_tickets_per_booking=4,
            status="published",
            version=1,
            created_at=clock.now(),
            updated_at=clock.now(),
        )
    )
    return app


@pytest.fixture
def app(clock: Clock) -> Wired:
    return wired(clock)


def hold(app: Wired, who: Principal = BUYER, quantity: int = 2) -> Booking:
    return app.holding.hold(lambda: who, f"sub-{who.user_id}", HoldRequest("ev-1", quantity))[0]


@pytest.fixture
def booking(app: Wired) -> Booking:
    return hold(app)


def pay(
    app: Wired, booking: Booking, method: str | None = CARD, key: str | None = None, who: Principal = BUYER
) -> tuple[Payment, PayOutcome]:
    return app.paying.pay(who, PayRequest(booking.id, method, key))


def deliver(app: Wired, payment: Payment, status: str | None = None, event_id: str | None = None) -> bool:
    """The provider's webhook about the payment's intent, as it stands at the provider now."""
    assert payment.transaction_id is not None
    return app.intake.take(*app.gateway.webhook(payment.transaction_id, status, event_id))


def paid_late_via_3ds(
    app: Wired, clock: Clock, booking: Booking, meanwhile: Callable[[], object] = lambda: None, expire: bool = True
) -> Payment:
    """The buyer starts paying, the hold runs out (and expires, unless `expire` is False), `meanwhile`
    happens, then 3-D Secure succeeds and the provider says so."""
    app.gateway.will("require_action")
    payment, _ = pay(app, booking)
    clock.advance(TTL)
    if expire:
        assert app.releasing.expire(booking.id) is not None
    meanwhile()
    app.gateway.settle(payment.transaction_id or "")
    assert deliver(app, payment)
    return app.payment_of(payment.id)


def sequences(app: Wired, object_id: str) -> list[int]:
    return [e.sequence for e in app.store.events_of(object_id)]


def assert_increasing(values: list[int]) -> None:
    assert values == sorted(set(values)), values


# ---- paying ---------------------------------------------------------------------------------------


def test_paying_charges_once_and_announces_the_success(app: Wired, booking: Booking) -> None:
    payment, outcome = pay(app, booking)

    assert outcome == "created"
    assert payment == app.payment_of(payment.id)
    assert (payment.status, payment.amount, payment.currency, payment.attempt) == ("succeeded", 5000, "EUR", 1)
    assert payment.idempotency_key == f"{booking.id}:attempt-1"
    assert app.gateway.charges == [(payment.transaction_id, 5000, "EUR")]
    counted = app.booking_of(booking.id)
    assert (counted.status, counted.payment_attempts, counted.latest_payment_id) == ("pending_payment", 1, payment.id)
    events = app.store.events_of(payment.id)
    assert [e.action for e in events] == ["payment.created", "payment.succeeded"]
    assert {e.actor for e in events} == {Actor.user("buyer-1")}
    assert_increasing([e.sequence for e in events])
    assert app.store.published == [
        (
            PAYMENT_EVENTS,
            {
                "type": "payment.succeeded",
                "message_id": events[-1].id,
                "object_type": "payment",
                "object_id": payment.id,
                "sequence": events[-1].sequence,
                "company_id": events[-1].company_id,
                "at": events[-1].at.isoformat(),
                "payment_id": payment.id,
                "booking_id": booking.id,
            },
        )
    ]


def test_the_same_key_replays_the_payment_without_charging_again(app: Wired, booking: Booking) -> None:
    first, _ = pay(app, booking, key="k1")
    again, outcome = pay(app, booking, key="k1")

    assert (again, outcome) == (first, "replayed")
    assert [p.id for p in app.payments.all()] == [first.id]
    assert len(app.gateway.charges) == 1


def test_the_same_key_for_another_payment_method_is_refused(app: Wired, booking: Booking) -> None:
    pay(app, booking, key="k1")
    with pytest.raises(IdempotencyKeyReused):
        pay(app, booking, method="pm_other", key="k1")
    assert len(app.payments.all()) == 1


def test_a_decline_leaves_the_booking_payable_and_a_new_attempt_works(app: Wired, booking: Booking) -> None:
    app.gateway.will("decline")
    with pytest.raises(PaymentDeclined) as raised:
        pay(app, booking)

    assert (raised.value.status, raised.value.code) == (402, "payment_declined")
    [declined] = app.payments.all()
    assert (declined.status, declined.failure_code) == ("failed", "card_declined")
    assert app.gateway.charges == []
    assert app.booking_of(booking.id).status_at(declined.updated_at) == "pending_payment"

    second, outcome = pay(app, booking)

    assert (second.status, second.attempt, outcome) == ("succeeded", 2, "created")
    assert second.idempotency_key == f"{booking.id}:attempt-2", "a new attempt has its own provider key"
    assert app.gateway.charges == [(second.transaction_id, 5000, "EUR")]
    assert app.payment_of(declined.id).status == "failed"


def test_a_second_request_joins_the_attempt_waiting_for_the_buyer(app: Wired, booking: Booking) -> None:
    first, outcome = pay(app, booking, method=None)  # confirmed in the browser
    again, again_outcome = pay(app, booking, method=None)

    assert (first.status, outcome) == ("requires_payment_method", "created")
    assert (again, again_outcome) == (first, "joined")
    assert len(app.payments.all()) == 1
    assert len(app.gateway.intents) == 1


def test_another_payment_method_cancels_the_open_attempt_first(app: Wired, booking: Booking) -> None:
    first, _ = pay(app, booking, method=None)

    second, outcome = pay(app, booking, method=CARD)

    assert (second.status, second.attempt, outcome) == ("succeeded", 2, "created")
    assert app.gateway.cancellations == [first.transaction_id]
    assert app.payment_of(first.id).status == "canceled"
    assert app.gateway.charges == [(second.transaction_id, 5000, "EUR")]


def test_while_money_is_moving_another_payment_method_is_refused(app: Wired, booking: Booking) -> None:
    app.gateway.will("process")
    first, _ = pay(app, booking)

    with pytest.raises(PaymentInProgress) as raised:
        pay(app, booking, method="pm_other")

    assert (raised.value.status, raised.value.code) == (409, "payment_in_progress")
    assert pay(app, booking) == (app.payment_of(first.id), "joined")
    assert [p.id for p in app.payments.all()] == [first.id]
    assert len(app.gateway.intents) == 1


def test_of_two_racing_requests_one_starts_the_attempt_and_the_other_joins_it(app: Wired, booking: Booking) -> None:
    answers: list[tuple[Payment, PayOutcome]] = []
    app.store.before_next_commit(lambda: answers.append(pay(app, booking)))  # both read the booking first

    answers.append(pay(app, booking))

    (winner, first), (joined, second) = answers
    assert (first, second) == ("created", "joined")
    assert joined == winner
    assert [p.id for p in app.payments.all()] == [winner.id]
    assert app.gateway.charges == [(winner.transaction_id, 5000, "EUR")]
    assert app.store.actions(winner.id).count("payment.created") == 1


@pytest.mark.usefixtures("no_waiting")
def test_an_attempt_whose_provider_call_timed_out_is_resumed_with_the_same_key(
    app: Wired, booking: Booking, clock: Clock
) -> None:
    app.gateway.time_out("create_intent")
    with pytest.raises(Unavailable):
        pay(app, booking)
    [stuck] = app.payments.all()
    assert (stuck.status, stuck.transaction_id) == ("creating", None)
    assert app.gateway.intents == {}

    with pytest.raises(PaymentInProgress):  # its call might still be running
        pay(app, booking)

    clock.advance(timedelta(seconds=5))
    resumed, outcome = pay(app, booking)

    assert (resumed.id, resumed.status, outcome) == (stuck.id, "succeeded", "joined")
    assert len(app.gateway.intents) == 1
    assert app.gateway.charges == [(resumed.transaction_id, 5000, "EUR")]


@pytest.mark.usefixtures("no_waiting")
@pytest.mark.parametrize("key", ["k1", None], ids=["same_key", "no_key"])
def test_a_retry_after_the_confirmation_timed_out_completes_the_payment(
    app: Wired, booking: Booking, clock: Clock, key: str | None
) -> None:
    app.gateway.time_out("confirm_intent")
    with pytest.raises(Unavailable):
        pay(app, booking, key=key)
    [unconfirmed] = app.payments.all()
    assert unconfirmed.status == "requires_confirmation"
    assert app.gateway.charges == []

    with pytest.raises(PaymentInProgress):  # the first request might still be confirming it
        pay(app, booking, key=key)
    assert app.gateway.charges == []

    clock.advance(timedelta(seconds=5))
    retried, _ = pay(app, booking, key=key)

    assert (retried.id, retried.status) == (unconfirmed.id, "succeeded")
    assert app.payment_of(unconfirmed.id).status == "succeeded"
    assert app.gateway.charges == [(retried.transaction_id, 5000, "EUR")]
    assert len(app.gateway.intents) == 1, "the same intent is confirmed, no second one is made"


def test_a_replayed_decline_is_declined_again_and_charges_nothing(app: Wired, booking: Booking) -> None:
    app.gateway.will("decline")
    with pytest.raises(PaymentDeclined):
        pay(app, booking, key="k1")

    with pytest.raises(PaymentDeclined) as again:
        pay(app, booking, key="k1")

    assert (again.value.status, again.value.code) == (402, "payment_declined")
    assert len(app.payments.all()) == 1
    assert app.gateway.charges == []


def test_only_the_buyer_pays_a_pending_booking(app: Wired, booking: Booking, clock: Clock) -> None:
    with pytest.raises(NotFound):
        pay(app, booking, who=OTHER)
    clock.advance(TTL)
    with pytest.raises(BookingNotPayable):
        pay(app, booking)
    assert app.payments.all() == []
    assert app.gateway.intents == {}


# ---- provider events ------------------------------------------------------------------------------


def test_a_provider_success_is_recorded_once_and_relayed_to_the_finaliser(app: Wired, booking: Booking) -> None:
    app.gateway.will("require_action")
    payment, _ = pay(app, booking)
    assert payment.status == "requires_action"
    app.gateway.settle(payment.transaction_id or "")
    payload, signature = app.gateway.webhook(payment.transaction_id or "", event_id="evt_1")

    assert app.intake.take(payload, signature) is True
    assert app.intake.take(payload, signature) is False, "a duplicate delivery changes nothing"

    assert app.payment_of(payment.id).status == "succeeded"
    [succeeded] = [e for e in app.store.events_of(payment.id) if e.action == "payment.succeeded"]
    assert (succeeded.actor, succeeded.topics) == (Actor.provider("evt_1"), (PAYMENT_EVENTS,))
    assert app.store.published == [(PAYMENT_EVENTS, succeeded.message())]
    assert app.store.get("webhook_events/evt_1") is not None


def test_two_deliveries_of_one_provider_event_at_once_apply_it_once(app: Wired, booking: Booking) -> None:
    app.gateway.will("require_action")
    payment, _ = pay(app, booking)
    app.gateway.settle(payment.transaction_id or "")
    delivery = app.gateway.webhook(payment.transaction_id or "", event_id="evt_1")
    answers: list[bool] = []
    app.store.before_next_commit(lambda: answers.append(app.intake.take(*delivery)))  # both checked `seen`

    answers.append(app.intake.take(*delivery))

    assert answers == [True, False]
    assert app.store.actions(payment.id).count("payment.succeeded") == 1
    assert app.store.topics() == [PAYMENT_EVENTS]


def test_news_that_changes_nothing_is_taken_in_once_without_a_domain_event(app: Wired, booking: Booking) -> None:
    payment, _ = pay(app, booking)
    before = list(app.store.events)

    assert deliver(app, payment, status="processing", event_id="evt_late")  # older news, arriving late
    assert not deliver(app, payment, status="processing", event_id="evt_late")

    assert app.payment_of(payment.id).status == "succeeded", "a payment never moves backwards"
    assert app.store.events == before


def test_a_provider_event_that_does_not_match_our_records_is_flagged(app: Wired, booking: Booking) -> None:
    app.gateway.will("require_action")
    payment, _ = pay(app, booking)
    intent_id = payment.transaction_id or ""
    app.gateway.intents[intent_id] = Intent(
        intent_id, "succeeded", 1, "EUR", None, app.gateway.intents[intent_id].metadata
    )

    assert deliver(app, payment)

    flagged = app.payment_of(payment.id)
    assert (flagged.status, flagged.attention) == (
        "requires_action",
        "provider amount, currency or booking does not match",
    )
    assert app.store.actions(payment.id)[-1] == "payment.flagged"
    assert app.store.published == []


def test_a_badly_signed_webhook_is_refused(app: Wired, booking: Booking) -> None:
    payment, _ = pay(app, booking)
    payload, _ = app.gateway.webhook(payment.transaction_id or "")
    with pytest.raises(InvalidWebhook):
        app.intake.take(payload, "forged")
    assert app.store.get("webhook_events/evt_1") is None


def test_a_processing_payment_racing_the_expiry_keeps_its_hold(app: Wired, booking: Booking, clock: Clock) -> None:
    app.gateway.will("require_action")
    payment, _ = pay(app, booking)
    clock.advance(TTL)
    app.gateway.settle(payment.transaction_id or "", "process")  # e.g. a bank transfer after 3-D Secure
    app.store.before_next_commit(lambda: deliver(app, payment))  # arrives while the expiry commits

    assert app.releasing.expire(booking.id) is None

    extended = app.booking_of(booking.id)
    assert (extended.status, extended.expires_at) == ("pending_payment", clock.now() + timedelta(minutes=15))
    assert [c.state for c in app.claims_of(booking)] == ["held", "held"]
    assert "booking.expired" not in app.store.actions(booking.id)


# ---- finalising -----------------------------------------------------------------------------------


def test_finalising_confirms_the_booking_once_and_sells_its_tickets(app: Wired, booking: Booking) -> None:
    payment, _ = pay(app, booking)

    assert app.finalising.finalize(payment.id) == "confirmed"

    confirmed = app.booking_of(booking.id)
    assert (confirmed.status, confirmed.paid_by) == ("confirmed", payment.id)
    assert [(c.state, c.held_until) for c in app.claims_of(booking)] == [("sold", SOLD_UNTIL)] * 2
    assert app.bookings.buyer_holds("ev-1", "buyer-1").pending == {}
    event = app.store.events_of(booking.id)[-1]
    assert (event.action, event.actor) == ("booking.confirmed", FINALISER)
    assert event.topics == (BOOKING_CONFIRMED, INTEGRATION_EVENTS)
    assert_increasing(sequences(app, booking.id))
    assert app.store.topics() == [PAYMENT_EVENTS, BOOKING_CONFIRMED, INTEGRATION_EVENTS]
    before = (list(app.store.events), list(app.store.published))

    assert app.finalising.finalize(payment.id) == "already confirmed"
    assert (app.store.events, app.store.published) == before


def test_a_confirmation_issues_quantity_signed_tickets_in_its_commit(app: Wired, booking: Booking) -> None:
    payment, _ = pay(app, booking)
    app.finalising.finalize(payment.id)
    app.finalising.finalize(payment.id)  # a redelivery issues nothing more

    tickets = sorted(app.tickets.all(), key=lambda t: t.number)
    assert [(t.id, t.number, t.status) for t in tickets] == [
        (f"{booking.id}-1", 1, "valid"),
        (f"{booking.id}-2", 2, "valid"),
    ]
    for ticket in tickets:
        claims = app.codes.verify(ticket.code)
        assert (claims.ticket_id, claims.event_id, claims.number) == (ticket.id, "ev-1", ticket.number)
    confirm_commit = [e.action for e in app.store.events[-4:]]  # the last commit (the redelivery made none)
    assert confirm_commit == ["booking.confirmed", "ticket.issued", "ticket.issued", "payment.booked"]


def test_a_late_payment_that_confirms_issues_tickets_and_one_refunded_issues_none(clock: Clock) -> None:
    app = wired(clock, capacity=4)
    late = hold(app, quantity=2)
    payment = paid_late_via_3ds(app, clock, late, lambda: None)
    assert app.finalising.finalize(payment.id) == "confirmed late"
    assert len(app.tickets.of_booking(late.id, 2)) == 2

    gone = hold(app, quantity=2)
    refunded = paid_late_via_3ds(app, clock, gone, lambda: hold(app, Principal("buyer-3", "user", None), 2))
    assert app.finalising.finalize(refunded.id) == "refunded"
    assert app.tickets.of_booking(gone.id, 2) == []


def test_two_finalisers_at_once_confirm_the_booking_once(app: Wired, booking: Booking) -> None:
    payment, _ = pay(app, booking)
    answers: list[str] = []
    app.store.before_next_commit(lambda: answers.append(app.finalising.finalize(payment.id)))

    answers.append(app.finalising.finalize(payment.id))

    assert answers == ["confirmed", "already confirmed"]
    assert app.store.actions(booking.id).count("booking.confirmed") == 1
    assert app.store.topics().count(BOOKING_CONFIRMED) == 1
    assert [c.state for c in app.claims_of(booking)] == ["sold", "sold"]
    assert len(app.tickets.all()) == 2


def test_a_confirmation_reaches_the_buyer_once(app: Wired, booking: Booking) -> None:
    users, mailer = FakeUserStore(app.store), FakeMailer()
    now = booking.booking_time
    users.register(
        User("buyer-1", "idk", "sub", "Ada", "ada@example.com", "ada", "GB", "+447700900123", "user", None, now, now),
        None,
    )
    notifier = ConfirmationNotifier(app.bookings, users, app.events, app.tickets, mailer, mailer)
    payment, _ = pay(app, booking)
    app.finalising.finalize(payment.id)
    [(_, message)] = [m for m in app.store.published if m[0] == BOOKING_CONFIRMED]

    assert notifier.booking_confirmed(message["booking_id"]) == "sent"
    assert notifier.booking_confirmed(message["booking_id"]) == "already sent"

    [(to, subject, body)] = mailer.sent
    assert (to, subject) == ("ada@example.com", "Your tickets for Spring Concert")
    assert booking.id in body
    [attached] = mailer.attachments
    assert [(name, media) for name, media, _ in attached] == [
        ("ticket-1-of-2.png", "image/png"),
        ("ticket-2-of-2.png", "image/png"),
    ]
    assert all(content.startswith(b"\x89PNG") for _, _, content in attached)


def test_a_late_payment_re_acquires_free_tickets(app: Wired, booking: Booking, clock: Clock) -> None:
    payment = paid_late_via_3ds(app, clock, booking)

    assert app.finalising.finalize(payment.id) == "confirmed late"

    confirmed = app.booking_of(booking.id)
    assert (confirmed.status, confirmed.history[-1]["reason"]) == ("confirmed", LATE)
    assert [c.state for c in app.claims_of(booking)] == ["sold", "sold"]
    assert app.payment_of(payment.id).attention == LATE
    assert app.gateway.refunds == []
    assert app.store.actions(booking.id) == ["booking.held", "booking.expired", "booking.confirmed"]
    assert_increasing(sequences(app, booking.id))


def test_a_late_payment_whose_tickets_are_gone_is_refunded_once(clock: Clock) -> None:
    app = wired(clock, capacity=2)
    booking = hold(app, quantity=2)
    others: list[Booking] = []  # the tickets went to someone else meanwhile
    payment = paid_late_via_3ds(app, clock, booking, lambda: others.append(hold(app, OTHER, quantity=2)))
    [theirs] = others

    assert app.finalising.finalize(payment.id) == "refunded"
    assert app.finalising.finalize(payment.id) == "ignored"

    refunded = app.payment_of(payment.id)
    assert refunded.status == "refunded"
    assert refunded.attention == "refunded automatically: paid after the hold ran out; tickets gone"
    assert app.gateway.refunds == [(payment.transaction_id, 5000, f"refund:{payment.id}")]
    assert app.booking_of(booking.id).status == "expired"
    assert [c.booking_id for c in app.inventory.claims("ev-1").values()] == [theirs.id, theirs.id]
    assert {e.actor for e in app.store.events_of(payment.id)[-2:]} == {FINALISER}


def test_a_late_payment_learns_which_slots_others_took_and_confirms(app: Wired, booking: Booking, clock: Clock) -> None:
    """The finaliser's view of the slots is stale (another process sold them): a collision teaches
    it what they hold, so its next try picks free ones instead of colliding on every redelivery."""
    # slots 0 and 1 are sold by another process meanwhile
    payment = paid_late_via_3ds(app, clock, booking, lambda: app.inventory.set_taken("ev-1", 2))
    picker = app.finalising.picker
    picker._events.clear()  # this process never heard of those sales
    picker.rng = AlwaysPicks([0, 1])  # type: ignore[assignment]

    assert app.finalising.finalize(payment.id) == "confirmed late"
    assert sorted(c.n for c in app.claims_of(booking)) == [2, 3]


class AlwaysPicks:
    """A random source that keeps proposing the same slot numbers."""

    def __init__(self, numbers: list[int]) -> None:
        self.numbers, self.i = numbers, 0

    def randrange(self, stop: int) -> int:
        self.i += 1
        return self.numbers[self.i % len(self.numbers)]


def test_a_late_payment_never_counts_its_own_lapsed_claims_twice(clock: Clock) -> None:
    """The hold ran out and no expiry has run: the booking's own claims look free. Someone takes
    one of them; the late payment needs one more slot and must not pick one it owns already."""
    app = wired(clock, capacity=3)
    booking = hold(app, quantity=3)
    others: list[Booking] = []  # takes over one lapsed claim of the booking
    payment = paid_late_via_3ds(app, clock, booking, lambda: others.append(hold(app, OTHER, quantity=1)), expire=False)
    [theirs] = others

    assert app.finalising.finalize(payment.id) == "refunded"

    assert app.booking_of(booking.id).status != "confirmed"
    owners = [c.booking_id for c in app.inventory.claims("ev-1").values() if c.state == "sold"]
    assert owners == [], owners
    assert theirs.id in {c.booking_id for c in app.inventory.claims("ev-1").values()}


def test_a_late_confirmation_and_a_refund_decided_on_a_stale_read_never_both_happen(clock: Clock) -> None:
    """Two deliveries of one success to a booking past its hold: the second reads the booking
    (expired), the first confirms it and sells the last tickets, the second finds none left and
    decides to refund. The payment that confirmed the booking is kept."""
    app = wired(clock, capacity=2)
    booking = hold(app, quantity=2)
    payment = paid_late_via_3ds(app, clock, booking)
    first: list[str] = []
    pick = app.finalising.picker.pick

    def first_delivery_confirms_meanwhile(*args: Any, **kwargs: Any) -> Any:
        app.finalising.picker.pick = pick  # type: ignore[method-assign]
        first.append(app.finalising.finalize(payment.id))
        raise NoFreeSlots()  # what the second one sees now: the first sold the last tickets

    app.finalising.picker.pick = first_delivery_confirms_meanwhile  # type: ignore[method-assign]
    second = app.finalising.finalize(payment.id)

    assert first == ["confirmed late"]
    assert second == "kept: it confirmed its booking"
    assert app.booking_of(booking.id).status == "confirmed"
    kept = app.payment_of(payment.id)
    assert (kept.status, kept.booked, kept.refund_started_at) == ("succeeded", True, None)
    assert app.gateway.refunds == []


@pytest.mark.usefixtures("no_waiting")
def test_a_refund_cut_short_after_it_was_marked_is_finished_by_the_next_delivery(clock: Clock) -> None:
    app = wired(clock, capacity=2)
    booking = hold(app, quantity=2)
    # the tickets go to someone else meanwhile: the payment is to be refunded
    payment = paid_late_via_3ds(app, clock, booking, lambda: hold(app, OTHER, quantity=2))
    refunding = app.finalising.refunding
    at_provider = refunding._at_provider

    def process_dies(*args: Any) -> None:
        raise RuntimeError("the process died after marking the refund")

    refunding._at_provider = process_dies  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        app.finalising.finalize(payment.id)
    refunding._at_provider = at_provider  # type: ignore[method-assign]
    assert app.payment_of(payment.id).refund_started_at is not None

    clock.advance(timedelta(seconds=5))  # Pub/Sub redelivers the success
    assert app.finalising.finalize(payment.id) == "refunded"

    assert app.payment_of(payment.id).status == "refunded"
    assert app.gateway.refunds == [(payment.transaction_id, 5000, f"refund:{payment.id}")]
    assert app.booking_of(booking.id).status == "expired"


def test_a_payment_for_a_cancelled_booking_is_refunded(app: Wired, booking: Booking) -> None:
    payment, _ = pay(app, booking, method=None)
    app.releasing.cancel(BUYER, booking.id)
    app.gateway.settle(payment.transaction_id or "")  # the buyer still finished paying in the browser
    deliver(app, payment)

    assert app.finalising.finalize(payment.id) == "refunded"

    assert app.booking_of(booking.id).status == "cancelled"
    assert app.gateway.refunded(payment.transaction_id or "") == 5000


def test_a_second_successful_payment_of_a_confirmed_booking_is_refunded(app: Wired, booking: Booking) -> None:
    first, _ = pay(app, booking)
    app.finalising.finalize(first.id)
    stray = replace(first, id="pay-stray", transaction_id="pi_stray")  # e.g. an intent paid twice elsewhere
    uow = app.store.new_uow()
    app.payments.stage_create(uow, stray)
    uow.commit()
    app.gateway.intents["pi_stray"] = Intent("pi_stray", "succeeded", 5000, "EUR")

    assert app.finalising.finalize("pay-stray") == "refunded"

    assert app.booking_of(booking.id).paid_by == first.id
    assert app.gateway.refunds == [("pi_stray", 5000, "refund:pay-stray")]
    assert app.payment_of("pay-stray").attention == "refunded automatically: booking already paid by another payment"


# ---- refunding ------------------------------------------------------------------------------------


@pytest.fixture
def confirmed(app: Wired, booking: Booking) -> tuple[Booking, Payment]:
    payment, _ = pay(app, booking)
    app.finalising.finalize(payment.id)
    return app.booking_of(booking.id), app.payment_of(payment.id)


def test_the_organiser_refunds_a_confirmed_booking_once(
    app: Wired, confirmed: tuple[Booking, Payment], clock: Clock
) -> None:
    booking, payment = confirmed

    refunded = app.refunding.refund(ADMIN, booking.id)
    again = app.refunding.refund(ADMIN, booking.id)

    assert again == refunded == app.booking_of(booking.id)
    assert refunded.status == "refunded"
    assert app.payment_of(payment.id).status == "refunded"
    assert app.gateway.refunds == [(payment.transaction_id, 5000, f"refund:{payment.id}")]
    assert app.claims_of(booking) == []
    assert app.inventory.taken("ev-1", clock.now()) == 0
    admin = Actor.user("admin-1")
    tail = [(e.action, e.actor) for e in app.store.events if not e.action.startswith("ticket.")][-3:]
    assert tail == [("payment.refund_started", admin), ("booking.refunded", admin), ("payment.refunded", admin)]
    assert [t.status for t in app.tickets.all()] == ["revoked"] * booking.quantity, "its tickets go with it"
    assert [e.action for e in app.store.events].count("ticket.revoked") == booking.quantity
    assert_increasing(sequences(app, booking.id))
    assert_increasing(sequences(app, payment.id))


@pytest.mark.usefixtures("no_waiting")
def test_a_refund_requested_while_another_is_at_the_provider_refunds_nothing_more(
    app: Wired, confirmed: tuple[Booking, Payment]
) -> None:
    booking, payment = confirmed
    answers: list[object] = []

    def second_request() -> None:  # runs after the first marked the payment and asked the provider
        try:
            answers.append(app.refunding.refund(ADMIN, booking.id))
        except PaymentInProgress as exc:
            answers.append(exc)

    app.store.before_next_commit(lambda: app.store.before_next_commit(second_request))

    app.refunding.refund(ADMIN, booking.id)

    [answer] = answers
    assert isinstance(answer, PaymentInProgress)
    assert app.gateway.refunds == [(payment.transaction_id, 5000, f"refund:{payment.id}")]
    assert app.booking_of(booking.id).status == "refunded"


def test_a_refund_the_provider_could_not_take_can_be_retried(app: Wired, confirmed: tuple[Booking, Payment]) -> None:
    booking, payment = confirmed
    app.gateway.time_out("refund")

    with pytest.raises(Unavailable):
        app.refunding.refund(ADMIN, booking.id)

    failed = app.payment_of(payment.id)
    assert (failed.status, failed.refund_started_at) == ("succeeded", None)
    assert app.store.actions(payment.id)[-2:] == ["payment.refund_started", "payment.refund_failed"]
    assert app.booking_of(booking.id).status == "confirmed"

    assert app.refunding.refund(ADMIN, booking.id).status == "refunded"
    assert app.gateway.refunds == [(payment.transaction_id, 5000, f"refund:{payment.id}")]


def test_only_the_events_company_refunds_and_only_confirmed_bookings(
    app: Wired, booking: Booking, confirmed: tuple[Booking, Payment]
) -> None:
    with pytest.raises(Forbidden):
        app.refunding.refund(BUYER, booking.id)
    with pytest.raises(NotFound):
        app.refunding.refund(Principal("admin-2", "admin", "company-2"), booking.id)
    pending = hold(app, OTHER, quantity=1)
    with pytest.raises(InvalidState):
        app.refunding.refund(ADMIN, pending.id)
    assert app.gateway.refunds == []


def test_refunding_an_unbookable_payment_twice_refunds_once(app: Wired, booking: Booking) -> None:
    payment, _ = pay(app, booking)

    assert app.refunding.refund_unbookable(payment.id, "event cancelled", FINALISER) == "refunded"
    assert app.refunding.refund_unbookable(payment.id, "event cancelled", FINALISER) == "refunded"

    assert app.gateway.refunds == [(payment.transaction_id, 5000, f"refund:{payment.id}")]
    assert app.store.actions(payment.id).count("payment.refunded") == 1


# ---- reconciling ----------------------------------------------------------------------------------


def test_the_reconciler_finalises_a_success_whose_webhook_was_lost(app: Wired, booking: Booking) -> None:
    app.gateway.will("require_action")
    payment, _ = pay(app, booking)
    app.gateway.settle(payment.transaction_id or "")  # 3-D Secure done; the webhook never arrives

    assert app.reconciling.reconcile() == {"synced": 0, "finalized": 1, "flagged": 0, "abandoned": 0, "deferred": 0}

    assert app.payment_of(payment.id).status == "succeeded"
    assert app.booking_of(booking.id).status == "confirmed"
    assert [e.actor for e in app.store.events if e.action == "payment.succeeded"] == [RECONCILER]
    assert app.store.topics() == [PAYMENT_EVENTS, BOOKING_CONFIRMED, INTEGRATION_EVENTS]
    before = list(app.store.events)

    assert app.reconciling.reconcile() == {"synced": 1, "finalized": 0, "flagged": 0, "abandoned": 0, "deferred": 0}
    assert app.store.events == before


def test_the_reconciler_fails_an_attempt_the_provider_never_saw(clock: Clock) -> None:
    app = wired(clock, hold_ttl=timedelta(hours=1))
    booking = hold(app)
    app.gateway.time_out("create_intent")
    with pytest.raises(Unavailable):
        pay(app, booking)
    clock.advance(timedelta(minutes=11))

    assert app.reconciling.reconcile()["abandoned"] == 1

    [abandoned] = app.payments.all()
    assert (abandoned.status, abandoned.failure_code) == ("failed", "never_reached_provider")
    retried, outcome = pay(app, booking)
    assert (retried.status, retried.attempt, outcome) == ("succeeded", 2, "created")
    assert len(app.gateway.charges) == 1


def test_the_reconciler_flags_a_confirmed_booking_the_provider_does_not_call_paid(
    app: Wired, confirmed: tuple[Booking, Payment]
) -> None:
    _, payment = confirmed
    intent_id = payment.transaction_id or ""
    app.gateway.intents[intent_id] = Intent(intent_id, "canceled", 5000, "EUR", None, {"payment_id": payment.id})

    assert app.reconciling.reconcile()["flagged"] == 1

    assert app.payment_of(payment.id).attention == "confirmed but the provider says canceled"
    assert app.gateway.refunds == []
