"""Stripe's webhook route: verified on the raw body, applied once, never moving a payment backwards.

localstripe never redelivers and never sends a bad signature, so these tests sign their own events
with the stack's webhook secret (as Stripe signs them) about intents created through the API
(client-side payments, so that localstripe itself sends nothing about them).
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from dev.stack import Stack
from tests.conftest import Api
from tests.e2e.payments_helpers import (
    Person,
    assert_problem,
    attention_ids,
    book,
    deliver,
    doc,
    emails_about,
    get_booking,
    get_payment,
    intent_object,
    new_payment_id,
    paid,
    poll,
    sign,
    stays,
    stream_about,
    stripe_event,
    wait_for_status,
)


@pytest.fixture(scope="module")
def admin(api: Api) -> Person:
    return api.register_admin()


@pytest.fixture
def buyer(api: Api) -> Person:
    return api.register_buyer()


@pytest.fixture
def unpaid(api: Api, admin: Person, buyer: Person) -> tuple[dict[str, Any], dict[str, Any]]:
    """A booking of a fresh event and its client-side payment (an intent nobody has confirmed)."""
    event = api.create_event(admin[0], name="Webhook Night", capacity=10, base_price=1500, currency="EUR")
    booking = book(api, buyer[0], event["id"], 2)
    payment = paid(api, buyer[0], booking["id"])
    assert payment["status"] == "requires_payment_method"
    return booking, payment


def test_a_redelivered_event_changes_things_once(
    api: Api, stack: Stack, buyer: Person, unpaid: tuple[dict, dict], firestore_client: Any
) -> None:
    booking, payment = unpaid
    event = stripe_event("payment_intent.succeeded", intent_object(payment, "succeeded"))

    answers = [deliver(api, stack.webhook_secret, event) for _ in range(3)]

    assert [a.status_code for a in answers] == [200, 200, 200], [a.text for a in answers]
    assert [a.json()["duplicate"] for a in answers] == [False, True, True]
    confirmed, _took = wait_for_status(api, buyer[0], booking["id"], "confirmed")
    assert confirmed["payment"]["status"] == "succeeded"
    assert doc(firestore_client, "webhook_events", event["id"]) is not None
    announced = stream_about(firestore_client, "payment_id", payment["id"], "payment-events")
    assert [e["action"] for e in announced] == ["payment.succeeded"], "one state change, announced once"
    assert announced[0]["actor"] == {"type": "stripe", "id": event["id"]}
    stored = doc(firestore_client, "bookings", booking["id"])
    assert stored is not None
    assert [h["status"] for h in stored["history"]].count("confirmed") == 1
    assert poll(lambda: emails_about(stack.mail_dir, booking["id"])), "no confirmation email"
    assert stays(lambda: len(emails_about(stack.mail_dir, booking["id"])) == 1), "one email per booking"
    confirmations = stream_about(firestore_client, "booking_id", booking["id"], "booking-confirmed")
    assert [e["action"] for e in confirmations] == ["booking.confirmed"]


def test_failure_after_success_never_moves_the_payment_back(
    api: Api, stack: Stack, buyer: Person, unpaid: tuple[dict, dict]
) -> None:
    booking, payment = unpaid
    succeeded = stripe_event("payment_intent.succeeded", intent_object(payment, "succeeded"))
    assert deliver(api, stack.webhook_secret, succeeded).status_code == 200
    wait_for_status(api, buyer[0], booking["id"], "confirmed")

    failed = stripe_event("payment_intent.payment_failed", intent_object(payment, "requires_payment_method"))
    response = deliver(api, stack.webhook_secret, failed)

    assert response.status_code == 200, response.text
    assert get_payment(api, buyer[0], payment["id"])["status"] == "succeeded"
    assert stays(lambda: get_booking(api, buyer[0], booking["id"])["status"] == "confirmed", 1.0)


def tampered(event: dict[str, Any], secret: str) -> tuple[bytes, str]:
    payload = json.dumps(event).encode()
    header = sign(secret, payload)
    return payload.replace(b'"amount": ', b'"amount": 1'), header


REFUSED = {
    "wrong secret": lambda e, s: (json.dumps(e).encode(), sign("whsec_not_the_secret", json.dumps(e).encode())),
    "tampered body": tampered,
    "stale timestamp": lambda e, s: (json.dumps(e).encode(), sign(s, json.dumps(e).encode(), int(time.time()) - 400)),
    "garbage header": lambda e, s: (json.dumps(e).encode(), "this is not a signature"),
    "no v1 signature": lambda e, s: (json.dumps(e).encode(), f"t={int(time.time())}"),
    "empty header": lambda e, s: (json.dumps(e).encode(), ""),
    "signed non-JSON body": lambda e, s: (b"not json at all", sign(s, b"not json at all")),
    "signed non-UTF-8 body": lambda e, s: (b"\xff\xfe{\x00}", sign(s, b"\xff\xfe{\x00}")),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_unverifiable_events_are_400_and_change_nothing(
    api: Api, stack: Stack, buyer: Person, unpaid: tuple[dict, dict], firestore_client: Any, case: str
) -> None:
    booking, payment = unpaid
    event = stripe_event("payment_intent.succeeded", intent_object(payment, "succeeded"))
    payload, header = REFUSED[case](event, stack.webhook_secret)

    response = deliver(api, stack.webhook_secret, payload, signature=header)

    assert_problem(response, 400, "invalid_webhook")
    assert doc(firestore_client, "webhook_events", event["id"]) is None
    assert get_payment(api, buyer[0], payment["id"])["status"] == "requires_payment_method"
    assert get_booking(api, buyer[0], booking["id"])["status"] == "pending_payment"


def test_missing_signature_header_is_400(api: Api, stack: Stack, unpaid: tuple[dict, dict]) -> None:
    _booking, payment = unpaid
    event = stripe_event("payment_intent.succeeded", intent_object(payment, "succeeded"))

    response = api.call("POST", "/v1/webhooks/stripe", data=json.dumps(event).encode())

    assert_problem(response, 400, "invalid_webhook")


def test_a_recent_timestamp_within_tolerance_is_accepted(
    api: Api, stack: Stack, buyer: Person, unpaid: tuple[dict, dict]
) -> None:
    booking, payment = unpaid
    event = stripe_event("payment_intent.succeeded", intent_object(payment, "succeeded"))

    response = deliver(api, stack.webhook_secret, event, timestamp=int(time.time()) - 200)

    assert response.status_code == 200, response.text
    wait_for_status(api, buyer[0], booking["id"], "confirmed")


@pytest.mark.parametrize("mismatch", ["amount", "currency", "booking"])
def test_an_event_that_does_not_match_the_payment_is_flagged_not_applied(
    api: Api, stack: Stack, admin: Person, buyer: Person, unpaid: tuple[dict, dict], mismatch: str
) -> None:
    booking, payment = unpaid
    intent = intent_object(payment, "succeeded")
    if mismatch == "amount":
        intent["amount"] = payment["amount"] - 100
    elif mismatch == "currency":
        intent["currency"] = "usd"
    else:
        intent["metadata"]["booking_id"] = "some-other-booking"

    response = deliver(api, stack.webhook_secret, stripe_event("payment_intent.succeeded", intent))

    assert response.status_code == 200, response.text
    flagged = attention_ids(api, admin[0]).get(payment["id"])
    assert flagged is not None, "the admin is told"
    assert flagged["attention"]
    assert flagged["status"] == "requires_payment_method"
    assert get_payment(api, buyer[0], payment["id"])["attention"] is None, "notes are for admins"
    other_admin, _ = api.register_admin()
    assert payment["id"] not in attention_ids(api, other_admin)
    assert_problem(api.call("GET", "/v1/attention", buyer[0]), 403, "forbidden")
    assert stays(lambda: get_booking(api, buyer[0], booking["id"])["status"] == "pending_payment", 1.5)


@pytest.mark.parametrize("kind", ["unknown payment id", "no metadata", "other object"])
def test_events_about_nothing_we_know_are_acknowledged_and_ignored(
    api: Api, stack: Stack, firestore_client: Any, kind: str
) -> None:
    payment_id = new_payment_id()
    if kind == "other object":
        event = stripe_event("charge.refunded", {"id": "ch_123", "object": "charge", "amount": 100, "currency": "eur"})
    else:
        intent = {
            "id": "pi_unknown",
            "object": "payment_intent",
            "amount": 1000,
            "currency": "eur",
            "status": "succeeded",
            "metadata": {"payment_id": payment_id, "booking_id": "nope", "attempt": "1"}
            if kind != "no metadata"
            else {},
        }
        event = stripe_event("payment_intent.succeeded", intent)

    response = deliver(api, stack.webhook_secret, event)

    assert response.status_code == 200, response.text
    assert response.json()["duplicate"] is False
    assert doc(firestore_client, "payments", payment_id) is None
    assert deliver(api, stack.webhook_secret, event).json()["duplicate"] is True


def test_an_unhandled_event_type_for_a_payment_changes_nothing(
    api: Api, stack: Stack, buyer: Person, unpaid: tuple[dict, dict]
) -> None:
    booking, payment = unpaid
    event = stripe_event("payment_intent.amount_capturable_updated", intent_object(payment, "succeeded"))

    response = deliver(api, stack.webhook_secret, event)

    assert response.status_code == 200, response.text
    assert get_payment(api, buyer[0], payment["id"])["status"] == "requires_payment_method"
    assert get_booking(api, buyer[0], booking["id"])["status"] == "pending_payment"


def _without(obj: dict[str, Any], field: str) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k != field}


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(lambda p: json.dumps([1, 2]).encode(), id="a_json_array"),
        pytest.param(lambda p: b"not json", id="not_json"),
        pytest.param(
            lambda p: json.dumps(
                stripe_event("payment_intent.succeeded", _without(intent_object(p, "succeeded"), "status"))
            ).encode(),
            id="intent_without_status",
        ),
        pytest.param(
            lambda p: json.dumps(
                stripe_event("payment_intent.succeeded", {**intent_object(p, "succeeded"), "amount": "lots"})
            ).encode(),
            id="amount_not_a_number",
        ),
        pytest.param(lambda p: json.dumps({"id": "evt_x", "type": "payment_intent.succeeded"}).encode(), id="no_data"),
    ],
)
def test_a_signed_body_that_is_not_a_readable_event_is_400_and_changes_nothing(
    api: Api, stack: Stack, buyer: Person, unpaid: tuple[dict, dict], body: Any
) -> None:
    booking, payment = unpaid

    response = deliver(api, stack.webhook_secret, body(payment))

    assert_problem(response, 400, "invalid_webhook")
    assert get_payment(api, buyer[0], payment["id"])["status"] == "requires_payment_method"
    assert get_booking(api, buyer[0], booking["id"])["status"] == "pending_payment"
