"""The waitlist (API.md): join only when the quantity cannot be booked, served in join order when
tickets come free (a cancel, a refund, an expiry, a capacity raise), offers as real held bookings,
e-mailed, and freed tickets never sold past the line while anyone waits."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dev import invariants
from dev.stack import Stack
from tests.conftest import Api
from tests.e2e.bookings_helpers import NO_TASKS, Http, shared_stack
from tests.e2e.payments_helpers import (
    assert_problem,
    book,
    emails_about,
    firestore_for,
    paid,
    poll,
    stays,
    wait_for_status,
)


def join(api: Api, token: str, event_id: str, quantity: int = 1) -> Any:
    return api.call("POST", f"/v1/events/{event_id}/waitlist", token, json={"quantity": quantity})


def joined(api: Api, token: str, event_id: str, quantity: int = 1) -> dict[str, Any]:
    response = join(api, token, event_id, quantity)
    assert response.status_code == 201, response.text
    return dict(response.json())


def entry(api: Api, token: str, entry_id: str) -> dict[str, Any]:
    response = api.call("GET", "/v1/waitlist", token, params={"limit": 100})
    assert response.status_code == 200, response.text
    return next(e for e in response.json()["items"] if e["id"] == entry_id)


def offered(api: Api, token: str, entry_id: str, status: str = "offered") -> dict[str, Any]:
    found = poll(lambda: (e := entry(api, token, entry_id))["status"] == status and e, timeout=30)
    assert found, f"entry {entry_id} is {entry(api, token, entry_id)['status']}, not {status}"
    return dict(found)


def mails_to(stack: Stack, address: str) -> list[str]:
    """The plain-text bodies of the messages the stack's mail sink holds for `address`."""
    found = []
    for path in sorted(stack.mail_dir.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        body = message.get_body(preferencelist=("plain",))  # type: ignore[attr-defined]
        if message["To"] == address and body is not None:
            found.append(str(body.get_content()))
    return found


def keeps_invariants(stack: Stack, event_id: str) -> None:
    db, provider = invariants.clients_for(stack)
    found = invariants.check(db, provider, event_ids=[event_id], mail_dir=stack.mail_dir, settle=20)
    assert found == [], "\n".join(str(v) for v in found)


def sold_out_event(api: Api, admin: str, capacity: int = 2) -> tuple[dict[str, Any], list[tuple[str, dict]]]:
    event = api.create_event(admin, capacity=capacity, base_price=2000, surge_price=2000)
    holders = []
    for _ in range(capacity):
        token, _ = api.register_buyer()
        holders.append((token, book(api, token, event["id"], 1)))
    return event, holders


def test_joining_only_when_the_tickets_cannot_be_booked(api: Api) -> None:
    admin, _ = api.register_admin()
    event = api.create_event(admin, capacity=2, max_tickets_per_booking=3)
    buyer, user = api.register_buyer()
    assert_problem(join(api, buyer, event["id"], 2), 409, "tickets_available")
    made = joined(api, buyer, event["id"], 3)  # 3 cannot be booked: 2 exist
    assert made == {
        "id": made["id"],
        "event_id": event["id"],
        "user_id": user["id"],
        "quantity": 3,
        "status": "waiting",
        "booking_id": None,
        "offer_expires_at": None,
        "created_at": made["created_at"],
    }
    assert_problem(join(api, buyer, event["id"], 1), 409, "already_waiting")
    assert_problem(join(api, buyer, event["id"], 4), 422, "validation_error")
    assert [e["id"] for e in api.call("GET", "/v1/waitlist", buyer).json()["items"]] == [made["id"]]
    # Someone waits: the free tickets are the line's, so joining for fewer is allowed too.
    other, _ = api.register_buyer()
    assert joined(api, other, event["id"], 1)["status"] == "waiting"
    assert_problem(api.call("POST", f"/v1/events/{event['id']}/bookings", other, json={"quantity": 1}), 409, "sold_out")


def test_freed_tickets_go_to_the_line_in_join_order_and_an_offer_is_paid_like_a_booking(api: Api, stack: Stack) -> None:
    admin, _ = api.register_admin()
    event, holders = sold_out_event(api, admin, capacity=2)
    first, second, outsider = (api.register_buyer()[0] for _ in range(3))
    first_entry = joined(api, first, event["id"])
    second_entry = joined(api, second, event["id"])

    token, booking = holders[0]
    assert api.call("POST", f"/v1/bookings/{booking['id']}/cancel", token).status_code == 200
    assert_problem(
        api.call("POST", f"/v1/events/{event['id']}/bookings", outsider, json={"quantity": 1}), 409, "sold_out"
    )
    offer = offered(api, first, first_entry["id"])
    assert offer["booking_id"]
    assert offer["offer_expires_at"]
    assert entry(api, second, second_entry["id"])["status"] == "waiting"  # the head is served first
    held = api.call("GET", f"/v1/bookings/{offer['booking_id']}", first).json()
    assert (held["status"], held["quantity"], held["expires_at"]) == ("pending_payment", 1, offer["offer_expires_at"])
    assert poll(lambda: any("waitlist" in str(m.get_body()) for m in emails_about(stack.mail_dir, held["id"])))

    paid(api, first, held["id"], "pm_card_visa")
    wait_for_status(api, first, held["id"], "confirmed")
    assert offered(api, first, first_entry["id"], "fulfilled")["booking_id"] == held["id"]

    order = api.call("GET", f"/v1/events/{event['id']}/waitlist", admin).json()["items"]
    assert [e["id"] for e in order] == [first_entry["id"], second_entry["id"]]
    assert_problem(api.call("GET", f"/v1/events/{event['id']}/waitlist", first), 403, "forbidden")
    keeps_invariants(stack, event["id"])


def test_a_refund_or_a_capacity_raise_serves_the_line(api: Api) -> None:
    admin, _ = api.register_admin()
    event, holders = sold_out_event(api, admin, capacity=1)
    token, booking = holders[0]
    paid(api, token, booking["id"], "pm_card_visa")
    wait_for_status(api, token, booking["id"], "confirmed")
    waiting = [api.register_buyer()[0] for _ in range(2)]
    entries = [joined(api, w, event["id"]) for w in waiting]

    assert api.call("POST", f"/v1/bookings/{booking['id']}/refund", admin).status_code == 200
    offered(api, waiting[0], entries[0]["id"])
    current = api.call("GET", f"/v1/events/{event['id']}", admin)
    raised = api.call(
        "PATCH", f"/v1/events/{event['id']}", admin, json={"capacity": 2}, headers={"If-Match": current.headers["ETag"]}
    )
    assert raised.status_code == 200, raised.text
    offered(api, waiting[1], entries[1]["id"])


def test_leaving_the_line(api: Api) -> None:
    admin, _ = api.register_admin()
    event, _holders = sold_out_event(api, admin, capacity=1)
    buyer, _ = api.register_buyer()
    other, _ = api.register_buyer()
    made = joined(api, buyer, event["id"])
    assert_problem(api.call("DELETE", f"/v1/waitlist/{made['id']}", other), 404, "not_found")
    left = api.call("DELETE", f"/v1/waitlist/{made['id']}", buyer)
    assert (left.status_code, left.json()["status"]) == (200, "left")
    assert_problem(api.call("DELETE", f"/v1/waitlist/{made['id']}", buyer), 409, "invalid_state")
    assert joined(api, buyer, event["id"])["status"] == "waiting"  # a buyer who left may join again


@pytest.fixture(scope="module")
def short_offers(pytestconfig: pytest.Config) -> Stack:
    env = {"HOLD_TTL_SECONDS": "3", "WAITLIST_OFFER_SECONDS": "3", "SWEEP_INTERVAL_SECONDS": "3600"}
    return shared_stack(pytestconfig, "short-offers", env)


def test_an_offer_that_runs_out_goes_to_the_next_in_line(short_offers: Stack) -> None:
    api = Api(short_offers.url)
    admin, _ = api.register_admin()
    event, _holders = sold_out_event(api, admin, capacity=1)  # its hold runs out in 3 s
    first, second = (api.register_buyer()[0] for _ in range(2))
    first_entry = joined(api, first, event["id"])
    second_entry = joined(api, second, event["id"])

    offer = offered(api, first, first_entry["id"])
    assert_problem(api.call("DELETE", f"/v1/waitlist/{first_entry['id']}", first), 409, "invalid_state")
    offered(api, first, first_entry["id"], "expired")
    second_offer = offered(api, second, second_entry["id"])
    assert second_offer["booking_id"] != offer["booking_id"]
    assert api.call("GET", f"/v1/bookings/{offer['booking_id']}", first).json()["status"] == "expired"
    api.call("DELETE", f"/v1/waitlist/{second_entry['id']}", second)  # offered: stays (409)
    keeps_invariants(short_offers, event["id"])


@pytest.fixture(scope="module")
def no_tasks(pytestconfig: pytest.Config) -> Stack:
    return shared_stack(pytestconfig, "no-tasks", NO_TASKS)


def test_the_sweep_serves_a_line_whose_task_was_lost(no_tasks: Stack) -> None:
    """No Cloud Tasks emulator answers on this stack: every serve task is lost; the sweep serves."""
    api, http = Api(no_tasks.url), Http(no_tasks.url)
    admin, _ = api.register_admin()
    event, holders = sold_out_event(api, admin, capacity=1)
    buyer, _ = api.register_buyer()
    waiting = joined(api, buyer, event["id"])
    token, booking = holders[0]
    assert api.call("POST", f"/v1/bookings/{booking['id']}/cancel", token).status_code == 200
    assert stays(lambda: entry(api, buyer, waiting["id"])["status"] == "waiting", seconds=1.0)

    swept = http.sweep()
    assert swept.status_code == 200, swept.text
    assert swept.json()["offers"] >= 1  # this line's, and any other line on the shared stack
    assert entry(api, buyer, waiting["id"])["status"] == "offered"
    keeps_invariants(no_tasks, event["id"])


def test_the_sweep_closes_the_line_of_an_event_that_has_started(no_tasks: Stack) -> None:
    api, http = Api(no_tasks.url), Http(no_tasks.url)
    admin, _ = api.register_admin()
    event, _holders = sold_out_event(api, admin, capacity=1)
    buyer, user = api.register_buyer()
    waiting = joined(api, buyer, event["id"])
    db = firestore_for(no_tasks)
    yesterday = datetime.now(UTC) - timedelta(days=1)
    db.collection("events").document(event["id"]).update(  # the clock moves past the start
        {"event_date": yesterday.date().isoformat(), "starts_at": yesterday.replace(microsecond=0)}
    )

    assert http.sweep().status_code == 200
    assert http.sweep().status_code == 200  # again: nothing more is sent
    assert entry(api, buyer, waiting["id"])["status"] == "expired"
    closed = [m for m in mails_to(no_tasks, user["email"]) if "has started" in m]
    assert len(closed) == 1, closed
    keeps_invariants(no_tasks, event["id"])


def test_a_cancelled_event_closes_its_line_and_tells_everyone_waiting(api: Api, stack: Stack) -> None:
    admin, _ = api.register_admin()
    event, holders = sold_out_event(api, admin, capacity=1)
    (first, _), (second, second_user) = api.register_buyer(), api.register_buyer()
    first_entry = joined(api, first, event["id"])
    second_entry = joined(api, second, event["id"])
    token, booking = holders[0]
    assert api.call("POST", f"/v1/bookings/{booking['id']}/cancel", token).status_code == 200
    offer = offered(api, first, first_entry["id"])

    current = api.call("GET", f"/v1/events/{event['id']}", admin).headers["ETag"]
    cancelled = api.call(
        "POST", f"/v1/events/{event['id']}/cancel", admin, json={"reason": "Storm"}, headers={"If-Match": current}
    )
    assert cancelled.status_code == 202, cancelled.text
    assert offered(api, second, second_entry["id"], "expired")["booking_id"] is None
    assert offered(api, first, first_entry["id"], "expired")["booking_id"] == offer["booking_id"]
    assert api.call("GET", f"/v1/bookings/{offer['booking_id']}", first).json()["status"] == "cancelled"
    assert_problem(join(api, api.register_buyer()[0], event["id"]), 409, "event_cancelled")
    assert_problem(api.call("DELETE", f"/v1/waitlist/{second_entry['id']}", second), 409, "invalid_state")
    closed = [m for m in mails_to(stack, second_user["email"]) if "waitlist is closed" in m]
    assert len(closed) == 1, closed
    keeps_invariants(stack, event["id"])


def test_a_free_event_confirms_the_offer_at_once(api: Api, stack: Stack) -> None:
    """Nothing to pay: the offered booking is confirmed with its tickets and the entry fulfilled."""
    admin, _ = api.register_admin()
    event = api.create_event(admin, capacity=1, base_price=0, surge_price=0)
    holder, _ = api.register_buyer()
    held = book(api, holder, event["id"], 1)
    assert held["status"] == "confirmed"  # free: confirmed by the hold itself
    waiter, _ = api.register_buyer()
    waiting = joined(api, waiter, event["id"])
    assert api.call("POST", f"/v1/bookings/{held['id']}/refund", admin).status_code == 200
    fulfilled = offered(api, waiter, waiting["id"], "fulfilled")
    booking = api.call("GET", f"/v1/bookings/{fulfilled['booking_id']}", waiter).json()
    assert (booking["status"], booking["total_cost"]) == ("confirmed", 0)
    tickets = api.call("GET", f"/v1/bookings/{booking['id']}/tickets", waiter).json()["items"]
    assert [t["status"] for t in tickets] == ["valid"]
    keeps_invariants(stack, event["id"])
