"""Event statistics (API.md): exact at the read, for the event's admins only."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api
from tests.e2e.bookings_helpers import SHORT_HOLDS, shared_stack
from tests.e2e.payments_helpers import assert_problem, book, paid, sleep_past, ts, wait_for_status


def stats(api: Api, token: str, event_id: str) -> dict[str, Any]:
    response = api.call("GET", f"/v1/events/{event_id}/stats", token)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_every_figure_follows_what_happened(api: Api) -> None:
    admin, _ = api.register_admin()
    event = api.create_event(admin, capacity=10, base_price=2000, surge_price=2000)
    empty = stats(api, admin, event["id"])
    assert empty == {
        "capacity": 10,
        "sold": 0,
        "held": 0,
        "available": 10,
        "checked_in": 0,
        "bookings": {"pending_payment": 0, "confirmed": 0, "expired": 0, "cancelled": 0, "refunded": 0},
        "revenue": 0,
        "refunded": 0,
        "currency": event["currency"],
    }

    buyers = [api.register_buyer()[0] for _ in range(4)]
    kept = book(api, buyers[0], event["id"], 3)
    paid(api, buyers[0], kept["id"], "pm_card_visa")
    refunded = book(api, buyers[1], event["id"], 2)
    paid(api, buyers[1], refunded["id"], "pm_card_visa")
    cancelled = book(api, buyers[2], event["id"], 1)
    assert api.call("POST", f"/v1/bookings/{cancelled['id']}/cancel", buyers[2]).status_code == 200
    book(api, buyers[3], event["id"], 2)  # still held
    for token, booking in ((buyers[0], kept), (buyers[1], refunded)):
        wait_for_status(api, token, booking["id"], "confirmed")
    assert api.call("POST", f"/v1/bookings/{refunded['id']}/refund", admin).status_code == 200
    ticket = api.call("GET", f"/v1/bookings/{kept['id']}/tickets", admin).json()["items"][0]
    assert (
        api.call("POST", f"/v1/events/{event['id']}/checkins", admin, json={"code": ticket["code"]}).status_code == 200
    )

    now = stats(api, admin, event["id"])
    assert (now["sold"], now["held"], now["available"], now["checked_in"]) == (3, 2, 5, 1)
    assert now["bookings"] == {"pending_payment": 1, "confirmed": 1, "expired": 0, "cancelled": 1, "refunded": 1}
    assert (now["revenue"], now["refunded"]) == (3 * 2000, 2 * 2000)
    assert now["sold"] + now["held"] + now["available"] == now["capacity"]


@pytest.fixture(scope="module")
def short_holds_api(pytestconfig: pytest.Config) -> Api:
    return Api(shared_stack(pytestconfig, "short-holds", SHORT_HOLDS).url)


def test_a_hold_that_ran_out_counts_as_expired_at_once(short_holds_api: Api) -> None:
    api = short_holds_api
    admin, _ = api.register_admin()
    event = api.create_event(admin, capacity=4)
    buyer, _ = api.register_buyer()
    booking = book(api, buyer, event["id"], 2)
    sleep_past(ts(booking["expires_at"]))

    now = stats(api, admin, event["id"])
    assert (now["held"], now["available"]) == (0, 4)
    assert now["bookings"]["pending_payment"] == 0
    assert now["bookings"]["expired"] == 1


def test_only_the_events_admins_see_them(api: Api) -> None:
    admin, _ = api.register_admin()
    event = api.create_event(admin, capacity=3)
    buyer, _ = api.register_buyer()
    rival, _ = api.register_admin()
    for token in (buyer, rival):
        assert_problem(api.call("GET", f"/v1/events/{event['id']}/stats", token), 403, "forbidden")
    assert_problem(api.call("GET", "/v1/events/nope/stats", admin), 404, "not_found")
