"""Holds run out: on time by their Cloud Task, and correctly whatever the task does (twice, early,
late after the sweep, or never).

Two extra stacks with 3-second holds (shared with the rush tests): one with the Cloud Tasks
emulator, one where no task can be created (CLOUD_TASKS_EMULATOR_HOST points nowhere). The local
scheduler's sweep is pushed out to an hour on both, so the only things that expire a hold here are
the task and the calls the tests make.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from dev.stack import Stack
from tests.e2e.bookings_helpers import (
    NO_TASKS,
    SHORT_HOLDS,
    Http,
    assert_problem,
    claim_docs,
    firestore_for,
    live_claims,
    poll,
    shared_stack,
    stored_booking,
    ts,
    wait_until,
)

Person = tuple[str, dict[str, Any]]


class Env:
    """One stack seen by a test: HTTP, its Firestore, and an admin."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.http = Http(stack.url)
        self.db = firestore_for(stack)
        self.admin = self.http.register("admin")

    def event(self, capacity: int) -> dict[str, Any]:
        return self.http.create_event(self.admin[0], capacity=capacity)

    def hold(self, event_id: str, quantity: int) -> tuple[str, dict[str, Any]]:
        token, _ = self.http.register()
        response = self.http.hold(token, event_id, quantity)
        assert response.status_code == 201, response.text
        return token, dict(response.json())

    def snapshot(self, booking_id: str) -> Any:
        snap = self.db.collection("bookings").document(booking_id).get()
        assert snap.exists, f"booking {booking_id} was deleted"
        return snap


@pytest.fixture(scope="module")
def with_tasks(pytestconfig: pytest.Config) -> Env:
    return Env(shared_stack(pytestconfig, "short-holds", SHORT_HOLDS))


@pytest.fixture(scope="module")
def without_tasks(pytestconfig: pytest.Config) -> Env:
    return Env(shared_stack(pytestconfig, "no-tasks", NO_TASKS))


def test_hold_lasts_the_configured_time(with_tasks: Env) -> None:
    event = with_tasks.event(10)
    _token, booking = with_tasks.hold(event["id"], 1)
    assert (ts(booking["expires_at"]) - ts(booking["booking_time"])).total_seconds() == 3


def test_the_expiry_task_expires_the_hold_on_time(with_tasks: Env) -> None:
    env = with_tasks
    event = env.event(10)
    token, booking = env.hold(event["id"], 2)
    expires_at = ts(booking["expires_at"])
    assert env.http.available(event["id"]) == 8
    assert len(live_claims(env.db, event["id"])) == 2

    def stored_expired() -> dict[str, Any] | None:
        stored = stored_booking(env.db, booking["id"])
        assert stored is not None, "the booking was deleted"
        return stored if stored["status"] == "expired" else None

    wait_until(expires_at, margin=0)
    stored = poll(stored_expired, timeout=10)
    assert stored is not None, "the Cloud Task did not expire the booking within 10 s of expires_at"

    assert stored["updated_at"] >= expires_at  # not before its time
    assert [h["status"] for h in stored["history"]] == ["pending_payment", "expired"]
    assert stored["quantity"] == 2
    assert stored["total_cost"] == booking["total_cost"]
    assert claim_docs(env.db, event["id"]) == []  # the claims are deleted, not left to linger
    assert env.http.available(event["id"]) == 10
    assert env.http.booking(token, booking["id"]).json()["status"] == "expired"
    assert [b["id"] for b in env.http.call("GET", "/v1/bookings", token).json()["items"]] == [booking["id"]]
    again = env.http.hold(token, event["id"], 1)  # the expired hold no longer counts against the buyer
    assert again.status_code == 201, again.text
    assert env.http.available(event["id"]) == 9


@pytest.fixture(scope="module")
def long_holds(stack: Stack) -> Env:
    """The main stack: holds last 10 minutes, so "early" stays early on however busy a machine."""
    return Env(stack)


def test_an_early_expiry_task_changes_nothing(long_holds: Env) -> None:
    env = long_holds
    event = env.event(10)
    token, booking = env.hold(event["id"], 3)
    before = env.snapshot(booking["id"])

    response = env.http.expire_task(booking["id"])
    assert response.status_code == 200, response.text
    assert response.json() == {"booking_id": booking["id"], "expired": False}

    after = env.snapshot(booking["id"])
    assert after.update_time == before.update_time
    assert after.get("status") == "pending_payment"
    assert env.http.booking(token, booking["id"]).json()["status"] == "pending_payment"
    assert len(live_claims(env.db, event["id"])) == 3
    assert env.http.available(event["id"]) == 7


def test_an_expiry_task_for_an_unknown_booking_is_a_no_op(without_tasks: Env) -> None:
    response = without_tasks.http.expire_task("no-such-booking")
    assert response.status_code == 200, response.text
    assert response.json()["expired"] is False


def test_an_expiry_task_delivered_twice_releases_once(without_tasks: Env) -> None:
    env = without_tasks
    event = env.event(5)
    _token, booking = env.hold(event["id"], 3)
    wait_until(ts(booking["expires_at"]))

    first = env.http.expire_task(booking["id"])
    assert first.status_code == 200, first.text
    assert first.json() == {"booking_id": booking["id"], "expired": True}
    expired = env.snapshot(booking["id"])
    assert expired.get("status") == "expired"
    assert env.http.available(event["id"]) == 5
    assert claim_docs(env.db, event["id"]) == []

    _other_token, other = env.hold(event["id"], 4)  # someone buys the released tickets
    assert env.http.available(event["id"]) == 1

    second = env.http.expire_task(booking["id"])
    assert second.status_code == 200, second.text
    assert second.json() == {"booking_id": booking["id"], "expired": False}
    assert env.snapshot(booking["id"]).update_time == expired.update_time
    claims = live_claims(env.db, event["id"])
    assert len(claims) == 4
    assert {c["booking_id"] for c in claims} == {other["id"]}
    assert env.http.available(event["id"]) == 1


def test_an_expiry_task_after_the_sweep_is_a_no_op(without_tasks: Env) -> None:
    env = without_tasks
    event = env.event(5)
    token, booking = env.hold(event["id"], 2)
    wait_until(ts(booking["expires_at"]))

    swept = env.http.sweep()
    assert swept.status_code == 200, swept.text
    assert swept.json()["expired"] >= 1
    expired = env.snapshot(booking["id"])
    assert expired.get("status") == "expired"
    assert [h["status"] for h in expired.get("history")] == ["pending_payment", "expired"]
    assert env.http.available(event["id"]) == 5

    late = env.http.expire_task(booking["id"])
    assert late.status_code == 200, late.text
    assert late.json()["expired"] is False
    assert env.snapshot(booking["id"]).update_time == expired.update_time
    assert env.http.available(event["id"]) == 5
    assert env.http.booking(token, booking["id"]).json()["status"] == "expired"


def test_a_hold_whose_task_never_runs_still_expires_and_its_tickets_sell_again(without_tasks: Env) -> None:
    env = without_tasks
    http = env.http
    event = env.event(3)
    first_token, first = env.hold(event["id"], 3)
    assert http.available(event["id"]) == 0
    assert_problem(http.hold(http.register()[0], event["id"], 1), 409, "sold_out")

    wait_until(ts(first["expires_at"]))
    # Expired on every read, although nothing has stored it.
    assert http.booking(first_token, first["id"]).json()["status"] == "expired"
    assert http.booking(env.admin[0], first["id"]).json()["status"] == "expired"
    listed = http.call("GET", f"/v1/events/{event['id']}/bookings", env.admin[0]).json()["items"]
    assert [(b["id"], b["status"]) for b in listed] == [(first["id"], "expired")]
    assert env.snapshot(first["id"]).get("status") == "pending_payment"
    assert http.available(event["id"]) == 3
    assert_problem(http.cancel(first_token, first["id"]), 409, "invalid_state")
    assert env.snapshot(first["id"]).get("status") == "pending_payment"

    # A new buyer takes over two of the expired claims.
    second_token, second = env.hold(event["id"], 2)
    assert http.available(event["id"]) == 1
    assert len(claim_docs(env.db, event["id"])) == 3  # taken over in place, not added
    live = live_claims(env.db, event["id"])
    assert len(live) == 2
    assert {c["booking_id"] for c in live} == {second["id"]}

    # The sweep stores the expiry and releases only what the expired booking still held.
    swept = http.sweep()
    assert swept.status_code == 200, swept.text
    assert swept.json()["expired"] >= 1
    stored = env.snapshot(first["id"])
    assert stored.get("status") == "expired"
    assert [h["status"] for h in stored.get("history")] == ["pending_payment", "expired"]
    claims = claim_docs(env.db, event["id"])
    assert len(claims) == 2
    assert {c["booking_id"] for c in claims} == {second["id"]}
    assert http.available(event["id"]) == 1
    assert http.booking(second_token, second["id"]).json()["status"] == "pending_payment"

    # What is left is exactly one ticket, and the first buyer may book again.
    again = http.hold(first_token, event["id"], 1)
    assert again.status_code == 201, again.text
    assert http.available(event["id"]) == 0
    assert_problem(http.hold(http.register()[0], event["id"], 1), 409, "sold_out")
    assert datetime.now(UTC) < ts(second["expires_at"]), "the test ran too slowly to prove the last steps"
