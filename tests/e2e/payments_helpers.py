"""Helpers shared by the payment tests: API calls, Stripe as Stripe.js and as a webhook sender,
stored state, the mail sink and polling.

Every test makes its own company, event and buyers, so the tests (and other modules on the same
stack) never see each other's bookings. localstripe never redelivers a webhook, so the tests sign
their own Stripe events with the stack's webhook secret, exactly as Stripe signs them.
"""

from __future__ import annotations

import base64
import email
import email.policy
import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TypeVar
from unittest import mock

import requests
import stripe

from dev.stack import Stack
from tests.conftest import Api

T = TypeVar("T")
Person = tuple[str, dict[str, Any]]

# API.md's Payment, plus what the implementation adds (a decline's code, a note for admins).
PAYMENT_FIELDS = {
    "id",
    "booking_id",
    "amount",
    "currency",
    "status",
    "provider",
    "transaction_id",
    "client_secret",
    "idempotency_key",
    "created_at",
}
EXTRA_PAYMENT_FIELDS = {"failure_code", "attention"}
ASYNC_TIMEOUT = 10.0  # seconds: Pub/Sub push, localstripe's webhook (~1 s) and the finaliser


# ---- polling ------------------------------------------------------------------------------------


def poll(check: Callable[[], T | None], timeout: float = ASYNC_TIMEOUT, interval: float = 0.1) -> T | None:
    """The first truthy value of check(), or None once `timeout` has passed."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            return None
        time.sleep(interval)


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def sleep_past(instant: datetime, margin: float = 0.3) -> None:
    delay = (instant - datetime.now(UTC)).total_seconds() + margin
    if delay > 0:
        time.sleep(delay)


# ---- API calls ----------------------------------------------------------------------------------


def assert_problem(response: requests.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json"), response.headers
    body = dict(response.json())
    assert {"type", "title", "status", "detail", "code"} <= set(body), body
    assert body["code"] == code, body
    return body


def book(api: Api, token: str, event_id: str, quantity: int = 1) -> dict[str, Any]:
    response = api.call("POST", f"/v1/events/{event_id}/bookings", token, json={"quantity": quantity})
    assert response.status_code == 201, response.text
    return dict(response.json())


def pay(
    api: Api, token: str, booking_id: str, payment_method: str | None = None, key: str | None = None, body: Any = None
) -> requests.Response:
    headers = {"Idempotency-Key": key} if key else {}
    if body is None:
        body = {"payment_method": payment_method} if payment_method else {}
    return api.call("POST", f"/v1/bookings/{booking_id}/payments", token, json=body, headers=headers)


def paid(api: Api, token: str, booking_id: str, payment_method: str | None = None) -> dict[str, Any]:
    response = pay(api, token, booking_id, payment_method)
    assert response.status_code == 201, response.text
    return dict(response.json())


def get_booking(api: Api, token: str, booking_id: str) -> dict[str, Any]:
    response = api.call("GET", f"/v1/bookings/{booking_id}", token)
    assert response.status_code == 200, response.text
    return dict(response.json())


def get_payment(api: Api, token: str, payment_id: str) -> dict[str, Any]:
    response = api.call("GET", f"/v1/payments/{payment_id}", token)
    assert response.status_code == 200, response.text
    return dict(response.json())


def available(api: Api, event_id: str) -> int:
    response = api.call("GET", f"/v1/events/{event_id}")
    assert response.status_code == 200, response.text
    return int(response.json()["available_tickets"])


def attention_ids(api: Api, admin_token: str) -> dict[str, dict[str, Any]]:
    response = api.call("GET", "/v1/attention", admin_token, params={"limit": 100})
    assert response.status_code == 200, response.text
    return {item["id"]: item for item in response.json()["items"]}


def wait_for_status(
    api: Api, token: str, booking_id: str, status: str, timeout: float = ASYNC_TIMEOUT
) -> tuple[dict[str, Any], float]:
    """Poll the booking until it reads `status`; returns it and how long that took."""
    started = time.monotonic()
    found = poll(lambda: (b := get_booking(api, token, booking_id))["status"] == status and b, timeout)
    last = found or get_booking(api, token, booking_id)
    assert last["status"] == status, f"booking {booking_id} is {last['status']}, not {status}, after {timeout}s"
    return last, time.monotonic() - started


def stays(check: Callable[[], bool], seconds: float = 1.5) -> bool:
    """check() holds now and still holds `seconds` later (for 'nothing else happened' claims)."""
    if not check():
        return False
    time.sleep(seconds)
    return check()


# ---- Stripe (localstripe) -----------------------------------------------------------------------


def stripe_client(stack: Stack) -> stripe.StripeClient:
    return stripe.StripeClient("sk_test_local", base_addresses={"api": f"http://{stack.host('stripe')}"})


def confirm_as_stripe_js(stack: Stack, intent_id: str, payment_method: str = "pm_card_visa") -> Any:
    """What Stripe.js does with the client secret: attach the card, then confirm."""
    client = stripe_client(stack)
    client.v1.payment_intents.update(intent_id, params={"payment_method": payment_method})
    return client.v1.payment_intents.confirm(intent_id)


def intents_of_booking(stack: Stack, booking_id: str) -> list[Any]:
    page = stripe_client(stack).v1.payment_intents.list(params={"limit": 100})
    return [i for i in page.auto_paging_iter() if i.to_dict().get("metadata", {}).get("booking_id") == booking_id]


def refunds_of(stack: Stack, intent_id: str) -> list[Any]:
    return list(stripe_client(stack).v1.refunds.list(params={"payment_intent": intent_id, "limit": 100}).data)


def intent_object(payment: dict[str, Any], status: str, amount: int | None = None) -> dict[str, Any]:
    """The payment_intent Stripe would put in an event about this Payment (as the API returned it)."""
    return {
        "id": payment["transaction_id"],
        "object": "payment_intent",
        "amount": payment["amount"] if amount is None else amount,
        "currency": payment["currency"].lower(),
        "status": status,
        "client_secret": payment.get("client_secret"),
        "livemode": False,
        "metadata": {
            "booking_id": payment["booking_id"],
            "payment_id": payment["id"],
            "attempt": payment["idempotency_key"].rsplit("-", 1)[-1],
        },
    }


def stripe_event(event_type: str, obj: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
    return {
        "id": event_id or f"evt_{secrets.token_hex(12)}",
        "object": "event",
        "type": event_type,
        "created": int(time.time()),
        "livemode": False,
        "api_version": "2017-08-15",
        "data": {"object": obj},
    }


def sign(secret: str, payload: bytes, timestamp: int | None = None) -> str:
    """The Stripe-Signature header for `payload`, as Stripe computes it."""
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def deliver(
    api: Api, secret: str, event: dict[str, Any] | bytes, timestamp: int | None = None, signature: str | None = None
) -> requests.Response:
    """POST a signed event to our webhook route, as Stripe does."""
    payload = event if isinstance(event, bytes) else json.dumps(event).encode()
    header = signature if signature is not None else sign(secret, payload, timestamp)
    return api.call(
        "POST",
        "/v1/webhooks/stripe",
        headers={"Stripe-Signature": header, "Content-Type": "application/json; charset=utf-8"},
        data=payload,
    )


# ---- stored state -------------------------------------------------------------------------------


def firestore_for(stack: Stack) -> Any:
    """A Firestore client for one stack's emulator (the emulator host is read when it is built)."""
    from google.cloud import firestore

    with mock.patch.dict(os.environ, {"FIRESTORE_EMULATOR_HOST": stack.host("firestore")}):
        return firestore.Client(project=stack.project)


def doc(client: Any, collection: str, doc_id: str) -> dict[str, Any] | None:
    snap = client.collection(collection).document(doc_id).get()
    return snap.to_dict() if snap.exists else None


def where(client: Any, collection: str, field: str, value: Any) -> list[dict[str, Any]]:
    from google.cloud.firestore_v1.base_query import FieldFilter

    query = client.collection(collection).where(filter=FieldFilter(field, "==", value))
    return [{**(s.to_dict() or {}), "_id": s.id} for s in query.stream()]


def slot_claims(client: Any, event_id: str) -> list[dict[str, Any]]:
    return [s.to_dict() for s in client.collection("events").document(event_id).collection("slots").stream()]


def stream_about(client: Any, key: str, value: str, topic: str) -> list[dict[str, Any]]:
    """Domain events whose data[key] == value and that are relayed to Pub/Sub `topic`."""
    return [e for e in where(client, "domain_events", f"data.{key}", value) if topic in e.get("topics", [])]


def webhook_seen(client: Any, payment_id: str) -> bool:
    return bool(where(client, "webhook_events", "payment_id", payment_id))


def payment_doc(
    payment_id: str, booking: dict[str, Any], company_id: str, status: str, age: timedelta, **fields: Any
) -> dict[str, Any]:
    """A payments document as the service stores it (to stage what a crash or a lost answer leaves)."""
    at = datetime.now(UTC) - age
    return {
        "id": payment_id,
        "booking_id": booking["id"],
        "event_id": booking["event_id"],
        "company_id": company_id,
        "user_id": booking["user_id"],
        "attempt": 1,
        "amount": booking["total_cost"],
        "currency": booking["currency"],
        "status": status,
        "provider": "stripe",
        "idempotency_key": f"{booking['id']}:attempt-1",
        "created_at": at,
        "updated_at": at,
        "transaction_id": None,
        "client_secret": None,
        "failure_code": None,
        "attention": None,
        "needs_attention": False,
        **fields,
    }


def new_payment_id() -> str:
    return secrets.token_urlsafe(15)


# ---- mail and Pub/Sub ---------------------------------------------------------------------------


def emails_about(mail_dir: Path, booking_id: str) -> list[EmailMessage]:
    """Confirmation emails in the sink that name this booking."""
    found: list[EmailMessage] = []
    if not mail_dir.is_dir():
        return found
    for path in sorted(mail_dir.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        body = message.get_body(preferencelist=("plain",))
        if body is not None and booking_id in body.get_content():
            found.append(message)
    return found


def push_envelope(data: dict[str, Any]) -> dict[str, Any]:
    """What a Pub/Sub push subscription POSTs."""
    return {
        "message": {
            "data": base64.b64encode(json.dumps(data).encode()).decode(),
            "messageId": secrets.token_hex(8),
            "attributes": {},
        },
        "subscription": "projects/demo/subscriptions/x",
    }
