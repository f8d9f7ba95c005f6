"""The waitlist rule of the invariant checker judges stored documents (dev/invariants_waitlist.py);
the e2e and fault-injected runs read them from Firestore, these feed it by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from dev.invariants_waitlist import judge

T0 = datetime(2031, 1, 1, 12, tzinfo=UTC)


def offered_pair(offer_ends: datetime, booking_ends: datetime) -> tuple[dict[str, Any], dict[str, Any]]:
    entry = {
        "status": "offered",
        "user_id": "u1",
        "quantity": 1,
        "booking_id": "b1",
        "created_at": T0,
        "offered_at": T0 + timedelta(seconds=5),
        "offer_expires_at": offer_ends,
    }
    booking = {
        "status": "pending_payment",
        "user_id": "u1",
        "quantity": 1,
        "waitlist_entry_id": "w1",
        "booking_time": T0 + timedelta(seconds=5),
        "expires_at": booking_ends,
    }
    return entry, booking


def test_an_offer_in_step_with_its_booking_keeps_the_rule() -> None:
    ends = T0 + timedelta(hours=1)
    entry, booking = offered_pair(ends, ends)
    assert judge("ev", {"w1": entry}, {"u1": "w1"}, {"b1": booking}) == []


def test_an_offer_that_ends_before_its_extended_booking_is_reported() -> None:
    entry, booking = offered_pair(T0 + timedelta(minutes=10), T0 + timedelta(minutes=25))
    found = judge("ev", {"w1": entry}, {"u1": "w1"}, {"b1": booking})
    assert [(rule, subject) for rule, subject, _ in found] == [("waitlist", "waitlist/w1")]
    assert "offer ends" in found[0][2]


def test_two_live_entries_of_one_buyer_are_reported() -> None:
    waiting = {"status": "waiting", "user_id": "u1", "quantity": 1, "created_at": T0}
    found = judge("ev", {"w1": waiting, "w2": {**waiting, "created_at": T0 + timedelta(seconds=1)}}, {"u1": "w1"}, {})
    assert ("waitlist", "event/ev", "buyer u1 has 2 live entries") in found
