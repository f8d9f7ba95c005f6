"""Repairs: the outbox sweep (a crash between a commit and its publish) and the reconciler
(POST /tasks/reconcile: our payments against the provider's intents).

The reconciler tests run on the session stack and stage what a crash or a lost answer leaves behind
by writing the documents the service would have written. Whichever repair comes first (our call,
the local scheduler's, or a webhook localstripe sends about the same intent), the end state is the
same, so the tests assert on the end state. The crash test runs on its own stack with
FAULT_INJECTION=skip_outbox_publish (every publish after a commit is skipped, as if the process died).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dev.stack import Stack
from tests.conftest import Api
from tests.e2e.bookings_helpers import shared_stack
from tests.e2e.payments_helpers import (
    Person,
    attention_ids,
    book,
    deliver,
    doc,
    emails_about,
    firestore_for,
    get_booking,
    get_payment,
    intent_object,
    new_payment_id,
    paid,
    pay,
    payment_doc,
    poll,
    stays,
    stream_about,
    stripe_client,
    stripe_event,
    wait_for_status,
    webhook_seen,
)

COUNTS = {"synced", "finalized", "flagged", "abandoned", "deferred"}


# These tests decide when the reconciler runs. The session stack's local scheduler calls it every
# minute, and "the payment stays pending until the reconciler runs" would race with that call: this
# module runs on a stack whose scheduler waits an hour.
@pytest.fixture(scope="module")
def stack(pytestconfig: pytest.Config) -> Stack:
    return shared_stack(pytestconfig, "no-scheduler", {"SWEEP_INTERVAL_SECONDS": "3600"})


@pytest.fixture(scope="module")
def api(stack: Stack) -> Api:
    return Api(stack.url)


@pytest.fixture(scope="module")
def firestore_client(stack: Stack) -> Any:
    return firestore_for(stack)


@pytest.fixture(scope="module")
def admin(api: Api) -> Person:
    return api.register_admin()


@pytest.fixture
def buyer(api: Api) -> Person:
    return api.register_buyer()


def reconcile(api: Api) -> dict[str, int]:
    response = api.call("POST", "/tasks/reconcile", json={})
    assert response.status_code == 200, response.text
    counts = response.json()
    assert set(counts) == COUNTS, counts
    assert all(isinstance(v, int) and v >= 0 for v in counts.values()), counts
    return dict(counts)


def staged_payment(db: Any, admin: Person, booking: dict[str, Any], status: str, age: timedelta, **fields: Any) -> str:
    """Store a payment (and count the attempt on the booking) as PaymentService.pay would have."""
    payment_id = new_payment_id()
    db.collection("payments").document(payment_id).set(
        payment_doc(payment_id, booking, admin[1]["company_id"], status, age, **fields)
    )
    db.collection("bookings").document(booking["id"]).update({"payment_attempts": 1, "latest_payment_id": payment_id})
    return payment_id


def charged_intent(stack: Stack, booking: dict[str, Any], payment_id: str) -> Any:
    """An intent for the booking that the provider charged (created and confirmed with a test card)."""
    client = stripe_client(stack)
    intent = client.v1.payment_intents.create(
        params={
            "amount": booking["total_cost"],
            "currency": booking["currency"].lower(),
            "payment_method": "pm_card_visa",
            "metadata": {"booking_id": booking["id"], "payment_id": payment_id, "attempt": "1"},
        }
    )
    confirmed = client.v1.payment_intents.confirm(intent.id)
    assert confirmed.status == "succeeded"
    return confirmed


def new_booking(api: Api, admin: Person, buyer: Person, quantity: int = 1) -> dict[str, Any]:
    event = api.create_event(admin[0], capacity=10, base_price=1200, currency="EUR")
    return book(api, buyer[0], event["id"], quantity)


# ---- the reconciler ------------------------------------------------------------------------------


def test_a_charge_whose_answer_was_lost_confirms_the_booking(
    api: Api, stack: Stack, admin: Person, buyer: Person, firestore_client: Any
) -> None:
    """The process died right after calling Stripe: the payment is `creating`, the intent succeeded."""
    booking = new_booking(api, admin, buyer, 2)
    payment_id = staged_payment(firestore_client, admin, booking, "creating", timedelta(0))
    intent = charged_intent(stack, booking, payment_id)

    reconcile(api)

    confirmed, _took = wait_for_status(api, buyer[0], booking["id"], "confirmed")
    assert confirmed["payment"]["id"] == payment_id
    payment = get_payment(api, buyer[0], payment_id)
    assert payment["status"] == "succeeded"
    assert payment["transaction_id"] == intent.id

    # Once localstripe's own webhook has been heard too, a second pass changes nothing.
    assert poll(lambda: webhook_seen(firestore_client, payment_id)), "localstripe's webhook never arrived"
    before = (doc(firestore_client, "payments", payment_id), doc(firestore_client, "bookings", booking["id"]))
    reconcile(api)
    after = (doc(firestore_client, "payments", payment_id), doc(firestore_client, "bookings", booking["id"]))
    assert after == before
    assert get_booking(api, buyer[0], booking["id"])["status"] == "confirmed"


def test_a_confirmed_booking_the_provider_never_charged_is_flagged(
    api: Api, stack: Stack, admin: Person, buyer: Person
) -> None:
    booking = new_booking(api, admin, buyer)
    payment = paid(api, buyer[0], booking["id"])  # an intent nobody confirms
    forged = stripe_event("payment_intent.succeeded", intent_object(payment, "succeeded"))
    assert deliver(api, stack.webhook_secret, forged).status_code == 200
    wait_for_status(api, buyer[0], booking["id"], "confirmed")

    reconcile(api)

    flagged = attention_ids(api, admin[0]).get(payment["id"])
    assert flagged is not None, "the admin is told"
    assert "requires_payment_method" in flagged["attention"]
    assert get_booking(api, buyer[0], booking["id"])["status"] == "confirmed", "a person decides, not the job"


def test_a_payment_stuck_in_processing_is_synced_and_confirms(
    api: Api, stack: Stack, admin: Person, buyer: Person, firestore_client: Any
) -> None:
    """The intent succeeded, but the webhook came before we had stored the payment and was lost."""
    booking = new_booking(api, admin, buyer)
    payment_id = new_payment_id()
    intent = charged_intent(stack, booking, payment_id)
    assert poll(lambda: webhook_seen(firestore_client, payment_id)), "localstripe's webhook never arrived"
    firestore_client.collection("payments").document(payment_id).set(
        payment_doc(
            payment_id,
            booking,
            admin[1]["company_id"],
            "processing",
            timedelta(minutes=15),
            transaction_id=intent.id,
            client_secret=intent.client_secret,
        )
    )
    firestore_client.collection("bookings").document(booking["id"]).update(
        {"payment_attempts": 1, "latest_payment_id": payment_id}
    )
    assert stays(lambda: get_booking(api, buyer[0], booking["id"])["status"] == "pending_payment", 0.5)

    reconcile(api)

    assert get_payment(api, buyer[0], payment_id)["status"] == "succeeded"
    confirmed, _took = wait_for_status(api, buyer[0], booking["id"], "confirmed")
    assert confirmed["payment"]["status"] == "succeeded"


def test_a_payment_that_never_reached_the_provider_is_abandoned(
    api: Api, admin: Person, buyer: Person, firestore_client: Any
) -> None:
    booking = new_booking(api, admin, buyer)
    old = staged_payment(firestore_client, admin, booking, "creating", timedelta(minutes=11))

    reconcile(api)

    stored = doc(firestore_client, "payments", old)
    assert stored is not None
    assert stored["status"] == "failed"
    assert stored["failure_code"] == "never_reached_provider"
    assert get_payment(api, buyer[0], old)["status"] == "failed"
    # The booking is still payable, with a new attempt and a new provider key.
    retry = pay(api, buyer[0], booking["id"], "pm_card_visa")
    assert retry.status_code == 201, retry.text
    assert retry.json()["idempotency_key"].endswith("attempt-2")
    wait_for_status(api, buyer[0], booking["id"], "confirmed")


def test_a_recent_creating_payment_is_left_alone(api: Api, admin: Person, buyer: Person, firestore_client: Any) -> None:
    booking = new_booking(api, admin, buyer)
    young = staged_payment(firestore_client, admin, booking, "creating", timedelta(minutes=1))

    reconcile(api)

    stored = doc(firestore_client, "payments", young)
    assert stored is not None
    assert stored["status"] == "creating", "it may still be talking to the provider"


def test_a_recorded_decline_stays_failed(api: Api, admin: Person, buyer: Person, firestore_client: Any) -> None:
    """The declined intent reads `requires_payment_method` at the provider; our attempt stays `failed`."""
    booking = new_booking(api, admin, buyer)
    declined = pay(api, buyer[0], booking["id"], "pm_card_chargeCustomerFail")
    assert declined.status_code == 402, declined.text
    failed = get_booking(api, buyer[0], booking["id"])["payment"]
    assert failed["status"] == "failed"
    assert poll(lambda: webhook_seen(firestore_client, failed["id"])), "localstripe's webhook never arrived"

    reconcile(api)

    after = get_payment(api, buyer[0], failed["id"])
    assert after["status"] == "failed", "the reconciler moved a failed payment back"
    assert after["failure_code"] == "card_declined"


# ---- a retry with the same Idempotency-Key after a crash -------------------------------------------


def test_a_retry_after_a_crash_before_the_provider_call_charges_the_card(
    api: Api, admin: Person, buyer: Person, firestore_client: Any
) -> None:
    """The first request recorded its attempt and key, then died before calling Stripe. The buyer's
    retry (same key, same body, with a payment method) must finish that request: charge the card.

    White-box staging: the key's record is stored under the id and request hash the service uses."""
    booking = new_booking(api, admin, buyer)
    key = f"crash-{secrets.token_hex(6)}"
    body = {"payment_method": "pm_card_visa"}
    payment_id = staged_payment(
        firestore_client, admin, booking, "creating", timedelta(0), payment_method="pm_card_visa"
    )
    key_id = hashlib.sha256(f"payments\n{buyer[1]['id']}\n{key}".encode()).hexdigest()[:40]
    request_hash = hashlib.sha256(
        json.dumps({"booking_id": booking["id"], **body}, sort_keys=True).encode()
    ).hexdigest()
    firestore_client.collection("idempotency").document(key_id).set(
        {"request_hash": request_hash, "resource_id": payment_id, "created_at": datetime.now(UTC)}
    )

    retry = pay(api, buyer[0], booking["id"], body["payment_method"], key=key)  # taken over after 5 s

    assert retry.status_code == 201, retry.text
    assert retry.json()["id"] == payment_id, "the same request, the same payment"
    assert retry.json()["status"] == "succeeded", "the card given with the request was not charged"
    wait_for_status(api, buyer[0], booking["id"], "confirmed")


# ---- the outbox sweep after a crash between commit and publish ------------------------------------


@pytest.fixture(scope="module")
def crashy() -> Iterator[Stack]:
    env = {"FAULT_INJECTION": "skip_outbox_publish", "OUTBOX_GRACE_SECONDS": "0", "SWEEP_INTERVAL_SECONDS": "3600"}
    with Stack.for_tests(**env) as running:
        yield running


def test_the_sweep_publishes_what_a_crash_left_in_the_outbox(crashy: Stack) -> None:
    api = Api(crashy.url)
    db = firestore_for(crashy)
    admin_token, _ = api.register_admin()
    buyer_token, _ = api.register_buyer()
    event = api.create_event(admin_token, name="Outbox Gala", capacity=10)
    booking = book(api, buyer_token, event["id"], 1)

    payment = paid(api, buyer_token, booking["id"], "pm_card_visa")

    assert payment["status"] == "succeeded"
    assert poll(lambda: webhook_seen(db, payment["id"])), "localstripe's webhook never arrived"
    assert stays(lambda: get_booking(api, buyer_token, booking["id"])["status"] == "pending_payment", 1.0)
    pending = stream_about(db, "payment_id", payment["id"], "payment-events")
    assert [("relay_due" in m, "published_at" in m) for m in pending] == [(True, False)], "awaits the relay"

    response = api.call("POST", "/tasks/sweep", json={})

    assert response.status_code == 200, response.text
    assert response.json()["published"] >= 1
    wait_for_status(api, buyer_token, booking["id"], "confirmed")
    relayed = doc(db, "domain_events", pending[0]["_id"])
    assert relayed is not None
    assert "relay_due" not in relayed
    assert "published_at" in relayed

    # Confirming published nothing either (the same crash): the next sweep sends the email.
    assert emails_about(crashy.mail_dir, booking["id"]) == []
    assert api.call("POST", "/tasks/sweep", json={}).status_code == 200
    assert poll(lambda: emails_about(crashy.mail_dir, booking["id"])), "no confirmation email after the sweep"
