"""Capacity changes by tens of thousands of tickets: answered (slots retired and freed in chunks),
and the inventory adds up afterwards, with holds on both sides of the new line."""

from __future__ import annotations

from typing import Any

from dev import invariants
from dev.stack import Stack
from tests.conftest import Api
from tests.e2e.payments_helpers import book, slot_claims

RANGE = 20_000  # slots retired and freed again: 50 chunks each way


def patch(api: Api, token: str, event: dict[str, Any], capacity: int) -> dict[str, Any]:
    headers = {"If-Match": f'"{event["version"]}"'}
    response = api.call("PATCH", f"/v1/events/{event['id']}", token, json={"capacity": capacity}, headers=headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_lowering_and_raising_by_the_whole_range(api: Api, stack: Stack) -> None:
    admin, _ = api.register_admin()
    event = api.create_event(admin, capacity=RANGE)
    holds = [book(api, api.register_buyer()[0], event["id"], 1) for _ in range(3)]

    event = patch(api, admin, event, 635)
    assert (event["capacity"], event["available_tickets"]) == (635, 632)
    db, provider = invariants.clients_for(stack)
    claims = slot_claims(db, event["id"])
    retired = sorted(c["n"] for c in claims if c["state"] == "retired")
    assert retired == list(range(635, RANGE)), "every slot above the new capacity, and only those"
    held = sorted(c["booking_id"] for c in claims if c["state"] == "held")
    assert held == sorted(h["id"] for h in holds), "the holds kept their tickets (moved below the line if needed)"
    assert all(c["n"] < 635 for c in claims if c["state"] == "held")

    event = patch(api, admin, event, RANGE)
    assert event["available_tickets"] == RANGE - 3
    assert [c for c in slot_claims(db, event["id"]) if c["state"] == "retired"] == []
    assert invariants.check(db, provider, event_ids=[event["id"]]) == []
