"""Cancelling an event over HTTP, as API.md's "Cancelling an event" describes it, against the real
emulators and localstripe.

The session stack runs Cloud Tasks: the fan-out runs by itself there. The stack without Cloud Tasks
(NO_TASKS) shows the crash recovery: a cancel that dies right after its commit leaves the bookings
as they were, and the sweep settles them.
"""

from __future__ import annotations

import email
import email.policy
import secrets
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import stripe

from dev.invariants import check
from dev.stack import Stack
from tests.conftest import Api
from tests.e2e.bookings_helpers import NO_TASKS, shared_stack
from tests.e2e.payments_helpers import (
    Person,
    assert_problem,
    attention_ids,
    book,
    confirm_as_stripe_js,
    deliver,
    firestore_for,
    get_booking,
    get_payment,
    intent_object,
    paid,
    pay,
    poll,
    refunds_of,
    stripe_client,
    stripe_event,
    wait_for_status,
)

SETTLE = 40.0  # seconds for a fan-out of a few bookings (Cloud Tasks, the provider, the mail)


@pytest.fixture(scope="module")
def admin(api: Api) -> Person:
    return api.register_admin()


def new_event(api: Api, admin: Person, **overrides: Any) -> dict[str, Any]:
    body = {"name": f"Gala {secrets.token_hex(4)}", "capacity": 20, "base_price": 2500, "surge_price": 2500}
    return api.create_event(admin[0], **{**body, **overrides})


def etag(api: Api, event_id: str, token: str | None = None) -> str:
    response = api.call("GET", f"/v1/events/{event_id}", token)
    assert response.status_code == 200, response.text
    return str(response.headers["ETag"])


def cancel(api: Api, token: str, event_id: str, if_match: str | None, reason: str = "The venue flooded") -> Any:
    headers = {"If-Match": if_match} if if_match is not None else {}
    return api.call("POST", f"/v1/events/{event_id}/cancel", token, json={"reason": reason}, headers=headers)


def confirmed(api: Api, buyer: Person, event_id: str, quantity: int = 1) -> tuple[dict[str, Any], dict[str, Any]]:
    booking = book(api, buyer[0], event_id, quantity)
    payment = paid(api, buyer[0], booking["id"], "pm_card_visa")
    wait_for_status(api, buyer[0], booking["id"], "confirmed")
    return booking, payment


def cancellation_of(api: Api, event_id: str) -> dict[str, Any]:
    response = api.call("GET", f"/v1/events/{event_id}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "cancelled", body
    return dict(body["cancellation"])


def settles(api: Api, event_id: str, done: int, failed: int = 0, timeout: float = SETTLE) -> dict[str, Any]:
    want = {"refunds_pending": 0, "refunds_done": done, "refunds_failed": failed}
    found = poll(
        lambda: (c := cancellation_of(api, event_id)) and all(c[k] == v for k, v in want.items()) and c, timeout
    )
    assert found, f"cancellation of {event_id} is {cancellation_of(api, event_id)}, not {want}"
    return dict(found)


def cancellation_mails(mail_dir: Path, booking_id: str) -> list[EmailMessage]:
    found: list[EmailMessage] = []
    for path in sorted(mail_dir.glob("*.eml")) if mail_dir.is_dir() else []:
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        body = message.get_body(preferencelist=("plain",))
        if str(message["Subject"]).startswith("Cancelled:") and body and booking_id in body.get_content():
            found.append(message)
    return found


def tickets(api: Api, token: str, booking_id: str) -> list[dict[str, Any]]:
    response = api.call("GET", f"/v1/bookings/{booking_id}/tickets", token)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


# ---- the whole story --------------------------------------------------------------------------------


def test_a_cancelled_event_refunds_each_confirmed_booking_once_and_cancels_the_rest(
    api: Api, admin: Person, stack: Stack, firestore_client: Any
) -> None:
    event = new_event(api, admin)
    eid = event["id"]
    buyers = [api.register_buyer() for _ in range(5)]
    paid_two, payment_two = confirmed(api, buyers[0], eid, 2)
    paid_one, payment_one = confirmed(api, buyers[1], eid, 1)
    pending = book(api, buyers[2][0], eid)
    code = api.call("POST", f"/v1/events/{eid}/promo-codes", admin[0], json={"code": "FREE", "percent_off": 100})
    assert code.status_code == 201, code.text
    free = api.call("POST", f"/v1/events/{eid}/bookings", buyers[3][0], json={"quantity": 1, "promo_code": "FREE"})
    assert free.status_code == 201, free.text
    assert free.json()["status"] == "confirmed", free.text
    late = book(api, buyers[4][0], eid)
    late_payment = paid(api, buyers[4][0], late["id"])  # client-side: the buyer confirms after the cancel
    old_tag = etag(api, eid)

    response = cancel(api, admin[0], eid, old_tag)

    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "cancelled", body
    assert body["version"] == event["version"] + 1, body
    assert response.headers["ETag"] == f'"{body["version"]}"'
    progress = body["cancellation"]
    assert progress["reason"] == "The venue flooded", progress
    assert progress["cancelled_at"], progress
    assert progress["refunds_pending"] + progress["refunds_done"] + progress["refunds_failed"] == 3, progress

    again = cancel(api, admin[0], eid, old_tag, reason="Another reason")  # a retry after a lost answer
    assert again.status_code == 202, again.text
    assert again.json()["version"] == body["version"]
    assert again.json()["cancellation"]["reason"] == "The venue flooded"
    assert again.json()["cancellation"]["cancelled_at"] == progress["cancelled_at"]
    assert cancel(api, admin[0], eid, None).status_code == 202  # whatever its If-Match

    # From now on: nothing is booked, paid or changed; the event leaves search but can be read.
    assert_problem(
        api.call("POST", f"/v1/events/{eid}/bookings", buyers[2][0], json={"quantity": 1}), 409, "event_cancelled"
    )
    assert_problem(pay(api, buyers[2][0], pending["id"], "pm_card_visa"), 409, "event_cancelled")
    current = etag(api, eid)
    patch = api.call("PATCH", f"/v1/events/{eid}", admin[0], json={"name": "Back on"}, headers={"If-Match": current})
    assert_problem(patch, 409, "event_cancelled")
    assert_problem(api.call("PATCH", f"/v1/events/{eid}", admin[0], json={"name": "Back on"}), 409, "event_cancelled")
    search = api.call("GET", "/v1/events", params={"q": event["name"]})
    assert search.status_code == 200, search.text
    assert [e["id"] for e in search.json()["items"]] == [], search.text
    anonymous = api.call("GET", f"/v1/events/{eid}")
    assert anonymous.status_code == 200
    assert anonymous.json()["cancellation"]["reason"] == "The venue flooded"

    # A payment that succeeds afterwards (client-side) is refunded automatically.
    confirm_as_stripe_js(stack, late_payment["transaction_id"])
    assert poll(lambda: get_payment(api, buyers[4][0], late_payment["id"])["status"] == "refunded", SETTLE)

    final = settles(api, eid, done=3)
    assert final["reason"] == "The venue flooded"
    assert get_booking(api, buyers[0][0], paid_two["id"])["status"] == "refunded"
    assert get_booking(api, buyers[1][0], paid_one["id"])["status"] == "refunded"
    assert get_booking(api, buyers[3][0], free.json()["id"])["status"] == "refunded"
    wait_for_status(api, buyers[2][0], pending["id"], "cancelled")
    wait_for_status(api, buyers[4][0], late["id"], "cancelled")
    for payment in (payment_two, payment_one, late_payment):
        assert len(refunds_of(stack, payment["transaction_id"])) == 1, payment
    for buyer, booking in ((buyers[0], paid_two), (buyers[1], paid_one), (buyers[3], free.json())):
        assert {t["status"] for t in tickets(api, buyer[0], booking["id"])} == {"revoked"}
    for booking in (paid_two, paid_one, pending, free.json(), late):
        assert poll(lambda b=booking: cancellation_mails(stack.mail_dir, b["id"]), SETTLE), booking["id"]
        assert len(cancellation_mails(stack.mail_dir, booking["id"])) == 1, booking["id"]

    # The fan-out run again, as a retried task or the sweep would: nothing more happens.
    rerun = api.call("POST", "/tasks/cancel-event", json={"event_id": eid})
    assert rerun.status_code == 200, rerun.text
    assert api.call("POST", "/tasks/sweep", json={}).status_code == 200
    for payment in (payment_two, payment_one, late_payment):
        assert len(refunds_of(stack, payment["transaction_id"])) == 1, payment
    assert len(cancellation_mails(stack.mail_dir, paid_two["id"])) == 1
    assert settles(api, eid, done=3) == final
    violations = check(firestore_client, stripe_client(stack), event_ids=[eid], mail_dir=stack.mail_dir, settle=SETTLE)
    assert violations == [], "\n".join(map(str, violations))


# ---- who may cancel, and with which If-Match ------------------------------------------------------


def test_cancel_needs_the_current_version_and_an_admin_of_the_company(api: Api, admin: Person) -> None:
    event = new_event(api, admin)
    eid, tag = event["id"], f'"{event["version"]}"'
    buyer, rival = api.register_buyer(), api.register_admin()

    assert_problem(cancel(api, admin[0], eid, None), 428, "precondition_required")
    assert_problem(cancel(api, admin[0], eid, f'"{event["version"] + 5}"'), 412, "version_conflict")
    assert_problem(cancel(api, admin[0], eid, '"abc"'), 422, "validation_error")
    assert_problem(cancel(api, buyer[0], eid, tag), 403, "forbidden")
    assert_problem(cancel(api, rival[0], eid, tag), 403, "forbidden")
    assert_problem(cancel(api, admin[0], "no-such-event", tag), 404, "not_found")
    assert_problem(api.call("POST", f"/v1/events/{eid}/cancel", admin[0], json={}), 422, "validation_error")
    bad = api.call("POST", f"/v1/events/{eid}/cancel", admin[0], json={"reason": "x", "status": "published"})
    assert_problem(bad, 422, "validation_error")
    assert_problem(api.call("POST", f"/v1/events/{eid}/cancel", json={"reason": "x"}), 401, "unauthenticated")
    assert etag(api, eid) == tag  # none of these changed it

    draft = new_event(api, admin, status="draft")
    assert_problem(cancel(api, admin[0], draft["id"], '"1"'), 409, "invalid_state")
    assert_problem(cancel(api, rival[0], draft["id"], '"1"'), 404, "not_found")

    assert cancel(api, admin[0], eid, tag).status_code == 202
    assert_problem(cancel(api, buyer[0], eid, tag), 403, "forbidden")  # who may still comes first


# ---- a refund the provider refuses ------------------------------------------------------------------


def test_a_refund_the_provider_refuses_is_counted_as_failed_and_listed_for_attention(
    api: Api, admin: Person, stack: Stack
) -> None:
    """A payment we hold as succeeded whose intent localstripe never charged (its `succeeded` event
    came signed, but the buyer never confirmed): localstripe refuses to refund it."""
    event = new_event(api, admin)
    eid = event["id"]
    ok_buyer, odd_buyer = api.register_buyer(), api.register_buyer()
    ok_booking, ok_payment = confirmed(api, ok_buyer, eid)
    odd = book(api, odd_buyer[0], eid)
    odd_payment = paid(api, odd_buyer[0], odd["id"])  # client-side: the intent waits for the buyer
    delivered = deliver(
        api, stack.webhook_secret, stripe_event("payment_intent.succeeded", intent_object(odd_payment, "succeeded"))
    )
    assert delivered.status_code == 200, delivered.text
    wait_for_status(api, odd_buyer[0], odd["id"], "confirmed")

    response = cancel(api, admin[0], eid, etag(api, eid))
    assert response.status_code == 202, response.text
    counts = response.json()["cancellation"]
    assert counts["refunds_pending"] + counts["refunds_done"] + counts["refunds_failed"] == 2, counts

    settles(api, eid, done=1, failed=1)
    assert get_booking(api, ok_buyer[0], ok_booking["id"])["status"] == "refunded"
    assert len(refunds_of(stack, ok_payment["transaction_id"])) == 1
    assert get_booking(api, odd_buyer[0], odd["id"])["status"] == "confirmed"  # its money is not back yet
    listed = attention_ids(api, admin[0])
    assert odd_payment["id"] in listed, listed
    assert "refused" in str(listed[odd_payment["id"]]["attention"])
    assert api.call("POST", "/tasks/sweep", json={}).status_code == 200  # not asked again, still visible
    assert cancellation_of(api, eid)["refunds_failed"] == 1


# ---- resuming after a crash -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def no_tasks(pytestconfig: pytest.Config) -> Stack:
    return shared_stack(pytestconfig, "no-tasks", NO_TASKS)


def test_a_cancel_that_crashed_after_its_commit_is_finished_by_the_sweep(no_tasks: Stack) -> None:
    """No Cloud Tasks on this stack, and the cancel dies before it could ask for one: the sweep is
    what settles the bookings, and sweeping again refunds nothing twice."""
    api = Api(no_tasks.url)
    admin = api.register_admin()
    event = new_event(api, admin)
    eid = event["id"]
    buyer, other = api.register_buyer(), api.register_buyer()
    booking, payment = confirmed(api, buyer, eid, 2)
    pending = book(api, other[0], eid)

    crashed = api.call(
        "POST",
        f"/v1/events/{eid}/cancel",
        admin[0],
        json={"reason": "Storm"},
        headers={"If-Match": f'"{event["version"]}"', "X-Fault-Inject": "crash_after_commit=1"},
    )
    assert crashed.status_code == 502, crashed.text
    assert cancellation_of(api, eid)["refunds_pending"] == 1  # committed; nothing settled yet
    assert get_booking(api, buyer[0], booking["id"])["status"] == "confirmed"
    assert cancel(api, admin[0], eid, f'"{event["version"]}"').status_code == 202  # the app's retry

    for _ in range(3):
        assert api.call("POST", "/tasks/sweep", json={}).status_code == 200

    assert cancellation_of(api, eid) | {"cancelled_at": None} == {
        "reason": "Storm",
        "cancelled_at": None,
        "refunds_pending": 0,
        "refunds_done": 1,
        "refunds_failed": 0,
    }
    assert get_booking(api, buyer[0], booking["id"])["status"] == "refunded"
    assert get_booking(api, other[0], pending["id"])["status"] in ("cancelled", "expired")
    assert len(refunds_of(no_tasks, payment["transaction_id"])) == 1
    db = firestore_for(no_tasks)
    violations = check(
        db,
        stripe.StripeClient("sk_test_local", base_addresses={"api": f"http://{no_tasks.host('stripe')}"}),
        event_ids=[eid],
        mail_dir=no_tasks.mail_dir,
    )
    assert violations == [], "\n".join(map(str, violations))
