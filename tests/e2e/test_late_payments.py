"""Payments that arrive after the hold ran out, and payments that are still processing.

Runs on its own stack whose holds last 3 s (the local scheduler's sweep is pushed out of the way, so
what expires a hold is the expiry task or the test). API.md: a payment that succeeds after its booking
expired either re-acquires the tickets (booking confirmed) or, when they are gone, is refunded
automatically; it never leaves money taken with no booking.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from dev.stack import Stack
from tests.conftest import Api
from tests.e2e.payments_helpers import (
    Person,
    assert_problem,
    attention_ids,
    available,
    book,
    confirm_as_stripe_js,
    deliver,
    doc,
    firestore_for,
    get_booking,
    get_payment,
    intent_object,
    paid,
    pay,
    poll,
    refunds_of,
    sleep_past,
    slot_claims,
    stripe_client,
    stripe_event,
    ts,
    wait_for_status,
)

PROCESSING_GRACE = timedelta(seconds=30)
SEPA_DECLINED_IBAN = "DE62370400440532013001"  # localstripe: processing for 0.5 s, then failed


@pytest.fixture(scope="module")
def late_stack() -> Iterator[Stack]:
    env = {
        "HOLD_TTL_SECONDS": "3",
        "SWEEP_INTERVAL_SECONDS": "3600",
        "PROCESSING_GRACE_SECONDS": str(int(PROCESSING_GRACE.total_seconds())),
        "WAITLIST_OFFER_SECONDS": "10",  # shorter than the grace: an offer's hold can be extended
    }
    with Stack.for_tests(**env) as running:
        yield running


@pytest.fixture(scope="module")
def late_api(late_stack: Stack) -> Api:
    return Api(late_stack.url)


@pytest.fixture(scope="module")
def late_db(late_stack: Stack) -> Any:
    return firestore_for(late_stack)


@pytest.fixture(scope="module")
def admin(late_api: Api) -> Person:
    return late_api.register_admin()


@pytest.fixture
def buyer(late_api: Api) -> Person:
    return late_api.register_buyer()


def expire(api: Api, booking: dict[str, Any]) -> None:
    """Wait out the hold and make sure it has been released (the task may have done it already)."""
    sleep_past(ts(booking["expires_at"]))
    response = api.call("POST", "/tasks/expire-booking", json={"booking_id": booking["id"]})
    assert response.status_code == 200, response.text


def test_an_expired_booking_is_not_payable(late_api: Api, admin: Person, buyer: Person) -> None:
    event = late_api.create_event(admin[0], capacity=5)
    booking = book(late_api, buyer[0], event["id"], 1)
    sleep_past(ts(booking["expires_at"]))

    # Expired on read, before anything has released it, and after.
    assert_problem(pay(late_api, buyer[0], booking["id"], "pm_card_visa"), 409, "booking_not_payable")
    expire(late_api, booking)
    assert_problem(pay(late_api, buyer[0], booking["id"]), 409, "booking_not_payable")
    assert get_booking(late_api, buyer[0], booking["id"])["payment"] is None


def test_a_late_payment_re_acquires_free_tickets(
    late_api: Api, late_stack: Stack, late_db: Any, admin: Person, buyer: Person
) -> None:
    event = late_api.create_event(admin[0], capacity=10)
    booking = book(late_api, buyer[0], event["id"], 2)
    payment = paid(late_api, buyer[0], booking["id"])
    expire(late_api, booking)
    assert doc(late_db, "bookings", booking["id"])["status"] == "expired"  # type: ignore[index]
    assert available(late_api, event["id"]) == 10

    confirm_as_stripe_js(late_stack, payment["transaction_id"])

    confirmed, _took = wait_for_status(late_api, buyer[0], booking["id"], "confirmed")
    assert confirmed["payment"]["status"] == "succeeded"
    assert available(late_api, event["id"]) == 8
    mine = [c for c in slot_claims(late_db, event["id"]) if c.get("booking_id") == booking["id"]]
    assert sorted(c["state"] for c in mine) == ["sold", "sold"]
    flagged = poll(lambda: attention_ids(late_api, admin[0]).get(payment["id"]))
    assert flagged is not None, "the admin is told the booking was paid late"
    assert "re-acquired" in flagged["attention"]
    assert refunds_of(late_stack, payment["transaction_id"]) == []


def test_a_late_payment_whose_tickets_are_gone_is_refunded(
    late_api: Api, late_stack: Stack, late_db: Any, admin: Person, buyer: Person
) -> None:
    event = late_api.create_event(admin[0], capacity=2)
    booking = book(late_api, buyer[0], event["id"], 2)
    payment = paid(late_api, buyer[0], booking["id"])
    expire(late_api, booking)
    rival_token, _ = late_api.register_buyer()
    rival = book(late_api, rival_token, event["id"], 2)
    paid(late_api, rival_token, rival["id"], "pm_card_visa")
    wait_for_status(late_api, rival_token, rival["id"], "confirmed")

    confirm_as_stripe_js(late_stack, payment["transaction_id"])

    refunded = poll(lambda: (p := get_payment(late_api, buyer[0], payment["id"]))["status"] == "refunded" and p)
    assert refunded, f"the late payment was not refunded: {get_payment(late_api, buyer[0], payment['id'])}"
    refunds = refunds_of(late_stack, payment["transaction_id"])
    assert len(refunds) == 1
    assert refunds[0].amount == booking["total_cost"]
    assert get_booking(late_api, buyer[0], booking["id"])["status"] == "expired"
    assert get_booking(late_api, rival_token, rival["id"])["status"] == "confirmed"
    assert available(late_api, event["id"]) == 0
    flagged = attention_ids(late_api, admin[0]).get(payment["id"])
    assert flagged is not None, "the admin sees the automatic refund"
    assert flagged["status"] == "refunded"
    assert "refunded automatically" in flagged["attention"]
    stored = doc(late_db, "bookings", booking["id"])
    assert stored is not None
    assert stored["status"] == "expired"
    assert stored.get("paid_by") is None


def sepa_method_that_declines(stack: Stack) -> str:
    method = stripe_client(stack).v1.payment_methods.create(
        params={"type": "sepa_debit", "sepa_debit": {"iban": SEPA_DECLINED_IBAN}}
    )
    return str(method.id)


def test_a_processing_payment_extends_the_hold_once(
    late_api: Api, late_stack: Stack, late_db: Any, admin: Person, buyer: Person
) -> None:
    event = late_api.create_event(admin[0], capacity=5)
    booking = book(late_api, buyer[0], event["id"], 1)
    original_end = ts(booking["expires_at"])

    first = pay(late_api, buyer[0], booking["id"], sepa_method_that_declines(late_stack))

    assert first.status_code == 201, first.text
    assert first.json()["status"] == "processing"
    extended = get_booking(late_api, buyer[0], booking["id"])
    extended_end = ts(extended["expires_at"])
    assert extended_end >= original_end + PROCESSING_GRACE - timedelta(seconds=5)
    stored = doc(late_db, "bookings", booking["id"])
    assert stored is not None
    assert [h["reason"] for h in stored["history"]].count("payment processing") == 1
    held = [c for c in slot_claims(late_db, event["id"]) if c.get("booking_id") == booking["id"]]
    assert [ts(c["held_until"].isoformat()) for c in held] == [extended_end], "the ticket is held as long"

    # localstripe fails the debit after 0.5 s and says so by webhook; the hold outlives its first end.
    failed = poll(lambda: get_payment(late_api, buyer[0], first.json()["id"])["status"] == "failed")
    assert failed, "the payment_failed webhook was not applied"
    sleep_past(original_end)
    assert get_booking(late_api, buyer[0], booking["id"])["status"] == "pending_payment"
    assert available(late_api, event["id"]) == 4

    second = pay(late_api, buyer[0], booking["id"], sepa_method_that_declines(late_stack))

    assert second.status_code == 201, second.text
    assert second.json()["status"] == "processing"
    assert ts(get_booking(late_api, buyer[0], booking["id"])["expires_at"]) == extended_end, "once only"


def test_an_offer_whose_payment_is_processing_keeps_its_entry_in_step_with_the_extended_hold(
    late_api: Api, late_stack: Stack, admin: Person, buyer: Person
) -> None:
    event = late_api.create_event(admin[0], capacity=1)
    holder = late_api.register_buyer()[0]
    held = book(late_api, holder, event["id"], 1)
    joined = late_api.call("POST", f"/v1/events/{event['id']}/waitlist", buyer[0], json={"quantity": 1})
    assert joined.status_code == 201, joined.text
    assert late_api.call("POST", f"/v1/bookings/{held['id']}/cancel", holder).status_code == 200

    def entry() -> dict[str, Any]:
        items = late_api.call("GET", "/v1/waitlist", buyer[0]).json()["items"]
        return dict(next(e for e in items if e["id"] == joined.json()["id"]))

    assert poll(lambda: entry()["status"] == "offered")
    offer = entry()
    paying = pay(late_api, buyer[0], offer["booking_id"], sepa_method_that_declines(late_stack))

    assert paying.status_code == 201, paying.text
    assert paying.json()["status"] == "processing"
    extended = get_booking(late_api, buyer[0], offer["booking_id"])
    assert ts(extended["expires_at"]) > ts(offer["offer_expires_at"])
    after = entry()
    assert (after["status"], after["offer_expires_at"]) == ("offered", extended["expires_at"])


def test_a_processing_event_from_client_side_confirmation_extends_the_hold(
    late_api: Api, late_stack: Stack, admin: Person, buyer: Person
) -> None:
    """Stripe.js confirms an async method (SEPA): the server hears `processing` only by webhook."""
    event = late_api.create_event(admin[0], capacity=5)
    booking = book(late_api, buyer[0], event["id"], 1)
    original_end = ts(booking["expires_at"])
    payment = paid(late_api, buyer[0], booking["id"])

    response = deliver(
        late_api,
        late_stack.webhook_secret,
        stripe_event("payment_intent.processing", intent_object(payment, "processing")),
    )

    assert response.status_code == 200, response.text
    assert get_payment(late_api, buyer[0], payment["id"])["status"] == "processing"
    extended_end = ts(get_booking(late_api, buyer[0], booking["id"])["expires_at"])
    assert extended_end > original_end, "a processing payment keeps its hold a little longer"
    sleep_past(original_end)
    assert get_booking(late_api, buyer[0], booking["id"])["status"] == "pending_payment"
