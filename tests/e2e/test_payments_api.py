"""Paying, reading and refunding bookings over HTTP, as API.md's Payments section describes them.

Runs on the session stack (holds of 600 s) against localstripe: server-side confirmation with a
test card, a decline and a retry, idempotent replays, client-side confirmation as Stripe.js does it
(localstripe's own webhook then confirms the booking), and the organiser's refund.
"""

from __future__ import annotations

import secrets
from typing import Any

import pytest
import stripe

from dev.stack import Stack
from tests.conftest import Api
from tests.e2e.payments_helpers import (
    EXTRA_PAYMENT_FIELDS,
    PAYMENT_FIELDS,
    Person,
    assert_problem,
    available,
    book,
    confirm_as_stripe_js,
    doc,
    get_booking,
    get_payment,
    intents_of_booking,
    paid,
    pay,
    poll,
    refunds_of,
    slot_claims,
    wait_for_status,
    where,
)


@pytest.fixture(scope="module")
def admin(api: Api) -> Person:
    return api.register_admin()


@pytest.fixture
def buyer(api: Api) -> Person:
    return api.register_buyer()


def new_event(api: Api, admin: Person, **overrides: Any) -> dict[str, Any]:
    body = {"capacity": 10, "base_price": 2500, "surge_price": 4000, "surge_threshold": 0.9, "currency": "EUR"}
    return api.create_event(admin[0], **{**body, **overrides})


def confirmed_booking(api: Api, admin: Person, buyer: Person, quantity: int = 2) -> tuple[dict, dict, dict]:
    """An event, a booking of it paid server-side, and the payment; the booking reads confirmed."""
    event = new_event(api, admin)
    booking = book(api, buyer[0], event["id"], quantity)
    payment = paid(api, buyer[0], booking["id"], "pm_card_visa")
    wait_for_status(api, buyer[0], booking["id"], "confirmed")
    return event, booking, payment


# ---- server-side confirmation ---------------------------------------------------------------------


def test_server_side_payment_succeeds_and_confirms_the_booking(
    api: Api, admin: Person, buyer: Person, stack: Stack, firestore_client: Any
) -> None:
    event = new_event(api, admin)
    booking = book(api, buyer[0], event["id"], 2)
    assert booking["total_cost"] == 5000

    response = pay(api, buyer[0], booking["id"], "pm_card_visa")

    assert response.status_code == 201, response.text
    payment = response.json()
    assert set(payment) >= PAYMENT_FIELDS, payment
    assert set(payment) - PAYMENT_FIELDS <= EXTRA_PAYMENT_FIELDS, payment
    assert payment["booking_id"] == booking["id"]
    assert payment["amount"] == booking["total_cost"]
    assert payment["currency"] == "EUR"
    assert payment["status"] == "succeeded"
    assert payment["provider"] == "stripe"
    assert payment["transaction_id"].startswith("pi_")
    assert payment["idempotency_key"].endswith("attempt-1")
    assert payment["client_secret"], "the buyer sees the client secret"

    confirmed, took = wait_for_status(api, buyer[0], booking["id"], "confirmed")
    print(f"\nserver-side payment -> booking confirmed in {took:.2f}s")
    assert confirmed["payment"]["id"] == payment["id"]
    assert confirmed["payment"]["status"] == "succeeded"

    # The tickets are sold: still gone from the event, and their claims say so.
    assert available(api, event["id"]) == 8
    mine = [c for c in slot_claims(firestore_client, event["id"]) if c["booking_id"] == booking["id"]]
    assert [c["state"] for c in mine] == ["sold", "sold"]
    stored = doc(firestore_client, "bookings", booking["id"])
    assert stored is not None
    assert stored["status"] == "confirmed"
    assert stored["paid_by"] == payment["id"]
    stored_payment = doc(firestore_client, "payments", payment["id"])
    assert stored_payment is not None
    assert stored_payment["status"] == "succeeded"
    assert stored_payment["transaction_id"] == payment["transaction_id"]
    assert [i.id for i in intents_of_booking(stack, booking["id"])] == [payment["transaction_id"]]


def test_payment_is_readable_by_its_buyer_and_the_events_admin_only(api: Api, admin: Person, buyer: Person) -> None:
    _event, booking, payment = confirmed_booking(api, admin, buyer)

    by_buyer = get_payment(api, buyer[0], payment["id"])
    assert by_buyer["id"] == payment["id"]
    assert by_buyer["status"] == "succeeded"
    assert by_buyer["client_secret"] == payment["client_secret"]

    by_admin = get_payment(api, admin[0], payment["id"])
    assert by_admin["id"] == payment["id"]
    assert by_admin["amount"] == booking["total_cost"]
    assert by_admin["client_secret"] is None, "the client secret is the buyer's alone"
    assert get_booking(api, admin[0], booking["id"])["payment"]["client_secret"] is None

    other_buyer, _ = api.register_buyer()
    other_admin, _ = api.register_admin()
    for token in (other_buyer, other_admin):
        assert_problem(api.call("GET", f"/v1/payments/{payment['id']}", token), 404, "not_found")
    assert_problem(api.call("GET", "/v1/payments/no-such-payment", buyer[0]), 404, "not_found")
    assert_problem(api.call("GET", f"/v1/payments/{payment['id']}"), 401, "unauthenticated")


# ---- declines -------------------------------------------------------------------------------------


def test_decline_is_402_and_a_new_attempt_pays(api: Api, admin: Person, buyer: Person, firestore_client: Any) -> None:
    event = new_event(api, admin)
    booking = book(api, buyer[0], event["id"], 1)

    declined = pay(api, buyer[0], booking["id"], "pm_card_chargeCustomerFail")

    assert_problem(declined, 402, "payment_declined")
    after = get_booking(api, buyer[0], booking["id"])
    assert after["status"] == "pending_payment"
    failed = after["payment"]
    assert failed is not None
    assert failed["status"] == "failed"
    assert failed["failure_code"] == "card_declined"
    assert failed["idempotency_key"].endswith("attempt-1")
    stored = doc(firestore_client, "payments", failed["id"])
    assert stored is not None
    assert stored["status"] == "failed"
    assert available(api, event["id"]) == 9, "the hold survives a decline"

    retry = pay(api, buyer[0], booking["id"], "pm_card_visa")

    assert retry.status_code == 201, retry.text
    second = retry.json()
    assert second["id"] != failed["id"]
    assert second["status"] == "succeeded"
    assert second["idempotency_key"].endswith("attempt-2")
    assert second["idempotency_key"] != failed["idempotency_key"]
    confirmed, _took = wait_for_status(api, buyer[0], booking["id"], "confirmed")
    assert confirmed["payment"]["id"] == second["id"]
    assert doc(firestore_client, "payments", failed["id"])["status"] == "failed"  # type: ignore[index]


# ---- idempotency and refusals ---------------------------------------------------------------------


def test_same_idempotency_key_and_body_returns_the_same_payment(
    api: Api, admin: Person, buyer: Person, stack: Stack, firestore_client: Any
) -> None:
    event = new_event(api, admin)
    booking = book(api, buyer[0], event["id"], 1)
    key = f"pay-{secrets.token_hex(8)}"

    first = pay(api, buyer[0], booking["id"], "pm_card_visa", key=key)
    again = pay(api, buyer[0], booking["id"], "pm_card_visa", key=key)

    assert first.status_code == 201, first.text
    assert again.status_code == 201, again.text
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["transaction_id"] == first.json()["transaction_id"]
    assert len(where(firestore_client, "payments", "booking_id", booking["id"])) == 1
    assert len(intents_of_booking(stack, booking["id"])) == 1, "one PaymentIntent: nobody is charged twice"

    other_body = pay(api, buyer[0], booking["id"], key=key, body={})
    assert_problem(other_body, 422, "idempotency_key_reused")
    wait_for_status(api, buyer[0], booking["id"], "confirmed")


def test_idempotency_keys_are_scoped_to_the_caller(api: Api, admin: Person, buyer: Person) -> None:
    event = new_event(api, admin)
    key = f"shared-{secrets.token_hex(8)}"
    mine = book(api, buyer[0], event["id"], 1)
    other_token, _ = api.register_buyer()
    theirs = book(api, other_token, event["id"], 1)

    first = pay(api, buyer[0], mine["id"], key=key)
    second = pay(api, other_token, theirs["id"], key=key)

    assert first.status_code == 201, first.text
    assert second.status_code == 201, second.text
    assert first.json()["id"] != second.json()["id"]
    assert second.json()["booking_id"] == theirs["id"]


def test_client_side_payment_without_a_method_returns_the_client_secret(api: Api, admin: Person, buyer: Person) -> None:
    event = new_event(api, admin)
    booking = book(api, buyer[0], event["id"], 3)

    response = api.call("POST", f"/v1/bookings/{booking['id']}/payments", buyer[0])  # no body at all

    assert response.status_code == 201, response.text
    payment = response.json()
    assert payment["status"] == "requires_payment_method"
    assert payment["amount"] == booking["total_cost"] == 7500
    assert payment["transaction_id"].startswith("pi_")
    assert payment["client_secret"].startswith(payment["transaction_id"])
    assert get_booking(api, buyer[0], booking["id"])["status"] == "pending_payment"


def test_paying_someone_elses_booking_is_404(api: Api, admin: Person, buyer: Person) -> None:
    event = new_event(api, admin)
    booking = book(api, buyer[0], event["id"], 1)
    other_token, _ = api.register_buyer()

    assert_problem(pay(api, other_token, booking["id"], "pm_card_visa"), 404, "not_found")
    assert_problem(pay(api, admin[0], booking["id"], "pm_card_visa"), 404, "not_found")
    assert_problem(pay(api, buyer[0], "no-such-booking", "pm_card_visa"), 404, "not_found")
    assert_problem(pay(api, None, booking["id"], "pm_card_visa"), 401, "unauthenticated")  # type: ignore[arg-type]
    assert get_booking(api, buyer[0], booking["id"])["payment"] is None


def test_confirmed_and_cancelled_bookings_are_not_payable(api: Api, admin: Person, buyer: Person) -> None:
    _event, booking, _payment = confirmed_booking(api, admin, buyer)
    assert_problem(pay(api, buyer[0], booking["id"], "pm_card_visa"), 409, "booking_not_payable")

    other_token, _ = api.register_buyer()
    event = new_event(api, admin)
    cancelled = book(api, other_token, event["id"], 1)
    response = api.call("POST", f"/v1/bookings/{cancelled['id']}/cancel", other_token)
    assert response.status_code == 200, response.text
    assert_problem(pay(api, other_token, cancelled["id"], "pm_card_visa"), 409, "booking_not_payable")
    assert_problem(pay(api, other_token, cancelled["id"]), 409, "booking_not_payable")


@pytest.mark.parametrize(
    "body",
    [
        {"payment_method": "card_4242"},
        {"payment_method": "pm_"},
        {"payment_method": "pm_card visa"},
        {"payment_method": "pm_" + "x" * 101},
        {"payment_method": 42},
        {"payment_method": "pm_card_visa", "amount": 1},
        ["pm_card_visa"],
    ],
)
def test_malformed_payment_requests_are_422(api: Api, admin: Person, buyer: Person, body: Any) -> None:
    event = new_event(api, admin)
    booking = book(api, buyer[0], event["id"], 1)

    assert_problem(pay(api, buyer[0], booking["id"], body=body), 422, "validation_error")
    assert get_booking(api, buyer[0], booking["id"])["payment"] is None


def test_unknown_payment_method_is_refused_without_a_server_error(api: Api, admin: Person, buyer: Person) -> None:
    """A well-formed id Stripe does not know is the caller's mistake (4xx), never a 500."""
    event = new_event(api, admin)
    booking = book(api, buyer[0], event["id"], 1)

    response = pay(api, buyer[0], booking["id"], "pm_no_such_method")

    assert response.status_code in (402, 422), response.text
    assert get_booking(api, buyer[0], booking["id"])["status"] == "pending_payment"
    assert pay(api, buyer[0], booking["id"], "pm_card_visa").status_code == 201


# ---- client-side confirmation (Stripe.js) ---------------------------------------------------------


def test_client_side_confirmation_confirms_through_the_providers_webhook(
    api: Api, admin: Person, buyer: Person, stack: Stack
) -> None:
    event = new_event(api, admin)
    booking = book(api, buyer[0], event["id"], 2)
    payment = paid(api, buyer[0], booking["id"])
    assert payment["status"] == "requires_payment_method"

    intent = confirm_as_stripe_js(stack, payment["transaction_id"])
    assert intent.status == "succeeded"

    confirmed, took = wait_for_status(api, buyer[0], booking["id"], "confirmed")
    print(f"\nclient-side confirmation -> localstripe webhook -> booking confirmed in {took:.2f}s")
    assert confirmed["payment"]["id"] == payment["id"]
    assert confirmed["payment"]["status"] == "succeeded"
    assert get_payment(api, buyer[0], payment["id"])["status"] == "succeeded"
    assert available(api, event["id"]) == 8


# ---- refunds --------------------------------------------------------------------------------------


def test_admin_refund_returns_the_money_and_the_tickets(
    api: Api, admin: Person, buyer: Person, stack: Stack, firestore_client: Any
) -> None:
    event, booking, payment = confirmed_booking(api, admin, buyer, quantity=3)
    assert available(api, event["id"]) == 7

    response = api.call("POST", f"/v1/bookings/{booking['id']}/refund", admin[0])

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == booking["id"]
    assert body["status"] == "refunded"
    assert body["payment"]["id"] == payment["id"]
    assert body["payment"]["status"] == "refunded"
    assert available(api, event["id"]) == 10
    assert get_booking(api, buyer[0], booking["id"])["status"] == "refunded"
    assert get_payment(api, buyer[0], payment["id"])["status"] == "refunded"
    stored = doc(firestore_client, "payments", payment["id"])
    assert stored is not None
    assert stored["status"] == "refunded"
    assert not [c for c in slot_claims(firestore_client, event["id"]) if c.get("booking_id") == booking["id"]]
    refunds = refunds_of(stack, payment["transaction_id"])
    assert len(refunds) == 1
    assert refunds[0].amount == booking["total_cost"]

    again = api.call("POST", f"/v1/bookings/{booking['id']}/refund", admin[0])

    assert again.status_code == 200, again.text
    assert again.json()["status"] == "refunded"
    assert len(refunds_of(stack, payment["transaction_id"])) == 1, "a repeated refund refunds nothing more"
    assert available(api, event["id"]) == 10


def test_refund_is_for_the_events_admin_only(api: Api, admin: Person, buyer: Person) -> None:
    _event, booking, _payment = confirmed_booking(api, admin, buyer)
    other_admin, _ = api.register_admin()

    assert_problem(api.call("POST", f"/v1/bookings/{booking['id']}/refund", buyer[0]), 403, "forbidden")
    assert_problem(api.call("POST", f"/v1/bookings/{booking['id']}/refund", other_admin), 404, "not_found")
    assert_problem(api.call("POST", f"/v1/bookings/{booking['id']}/refund"), 401, "unauthenticated")
    assert get_booking(api, buyer[0], booking["id"])["status"] == "confirmed"


def test_refund_of_an_unpaid_booking_is_409(api: Api, admin: Person, buyer: Person) -> None:
    event = new_event(api, admin)
    booking = book(api, buyer[0], event["id"], 1)

    assert_problem(api.call("POST", f"/v1/bookings/{booking['id']}/refund", admin[0]), 409, "invalid_state")
    assert get_booking(api, buyer[0], booking["id"])["status"] == "pending_payment"
    assert available(api, event["id"]) == 9


# ---- money taken for a booking that cannot use it -------------------------------------------------


def test_an_open_attempt_is_cancelled_before_another_payment_method_is_tried(
    api: Api, admin: Person, buyer: Person, stack: Stack
) -> None:
    """Two tabs: a client-side attempt is left open, then a server-side one pays. The open intent is
    cancelled at the provider first, so the first tab can no longer charge the card as well."""
    event = new_event(api, admin)
    booking = book(api, buyer[0], event["id"], 1)
    first = paid(api, buyer[0], booking["id"])
    second = paid(api, buyer[0], booking["id"], "pm_card_visa")
    wait_for_status(api, buyer[0], booking["id"], "confirmed")

    assert get_payment(api, buyer[0], first["id"])["status"] == "canceled"
    with pytest.raises(stripe.StripeError):  # localstripe refuses it (with a 500 of its own)
        confirm_as_stripe_js(stack, first["transaction_id"])
    statuses = {i.id: i.status for i in intents_of_booking(stack, booking["id"])}
    assert statuses == {first["transaction_id"]: "canceled", second["transaction_id"]: "succeeded"}
    assert refunds_of(stack, second["transaction_id"]) == []
    assert get_booking(api, buyer[0], booking["id"])["status"] == "confirmed"
    assert get_payment(api, buyer[0], second["id"])["status"] == "succeeded"
    assert available(api, event["id"]) == 9


def test_a_payment_completed_after_the_buyer_cancelled_is_refunded(
    api: Api, admin: Person, buyer: Person, stack: Stack
) -> None:
    """API.md: `cancelled` is final. Money taken for a cancelled booking goes back; it is not revived."""
    event = new_event(api, admin)
    booking = book(api, buyer[0], event["id"], 2)
    payment = paid(api, buyer[0], booking["id"])
    response = api.call("POST", f"/v1/bookings/{booking['id']}/cancel", buyer[0])
    assert response.status_code == 200, response.text
    assert available(api, event["id"]) == 10

    confirm_as_stripe_js(stack, payment["transaction_id"])

    def settled() -> bool:  # refunded, or (wrongly) the booking confirmed: whichever happens
        refunded = get_payment(api, buyer[0], payment["id"])["status"] == "refunded"
        return refunded or get_booking(api, buyer[0], booking["id"])["status"] != "cancelled"

    assert poll(settled), get_payment(api, buyer[0], payment["id"])
    assert get_booking(api, buyer[0], booking["id"])["status"] == "cancelled", "a late payment revived it"
    assert get_payment(api, buyer[0], payment["id"])["status"] == "refunded"
    assert len(refunds_of(stack, payment["transaction_id"])) == 1
    assert available(api, event["id"]) == 10
