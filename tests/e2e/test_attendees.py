"""Attendees (API.md, Check-in): an event's tickets with their buyers, as JSON pages or one CSV that
spreadsheets open as they are."""

from __future__ import annotations

import csv
import io
from typing import Any

from tests.conftest import Api
from tests.e2e.payments_helpers import assert_problem, book, paid, wait_for_status


def sell(api: Api, event_id: str, quantity: int, **buyer: Any) -> str:
    token, _ = api.register_buyer(**buyer)
    booking = book(api, token, event_id, quantity=quantity)
    paid(api, token, booking["id"], "pm_card_visa")
    wait_for_status(api, token, booking["id"], "confirmed")
    return str(booking["id"])


def test_attendees_page_by_page_and_as_csv(api: Api) -> None:
    admin, _ = api.register_admin()
    event = api.create_event(admin, capacity=10)
    tricky = 'Zoë "Zed" O\'Neil, Jr.'
    first = sell(api, event["id"], 2, name=tricky)
    second = sell(api, event["id"], 1, name="=HYPERLINK(1)")
    tickets = api.call("GET", f"/v1/bookings/{first}/tickets", admin).json()["items"]
    checked = api.call("POST", f"/v1/events/{event['id']}/checkins", admin, json={"code": tickets[0]["code"]})
    assert checked.status_code == 200, checked.text

    seen: list[dict[str, Any]] = []
    token: str | None = None
    for _ in range(5):
        params: dict[str, Any] = {"limit": 2, **({"page_token": token} if token else {})}
        page = api.call("GET", f"/v1/events/{event['id']}/attendees", admin, params=params)
        assert page.status_code == 200, page.text
        seen += page.json()["items"]
        token = page.json()["next_page_token"]
        if not token:
            break
    assert sorted((a["booking_id"], a["number"]) for a in seen) == sorted([(first, 1), (first, 2), (second, 1)])
    mine = {a["ticket_id"]: a for a in seen}
    assert mine[tickets[0]["id"]]["status"] == "checked_in"
    assert mine[tickets[0]["id"]]["checked_in_at"] is not None
    assert mine[tickets[0]["id"]]["name"] == tricky
    assert "@example.com" in mine[tickets[0]["id"]]["email"]

    response = api.call("GET", f"/v1/events/{event['id']}/attendees", admin, headers={"Accept": "text/csv"})
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in response.headers["Content-Disposition"]
    assert response.content.startswith("\ufeff".encode()), "a BOM: spreadsheets read it as UTF-8"
    assert b"\r\n" in response.content
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0] == ["ticket_id", "booking_id", "number", "name", "email", "status", "checked_in_at"]
    assert len(rows) == 4
    names = sorted(r[3] for r in rows[1:])
    assert names == sorted([tricky, tricky, "'=HYPERLINK(1)"]), "quoted as written; a formula defused"


def test_only_the_events_admins_see_attendees(api: Api) -> None:
    admin, _ = api.register_admin()
    event = api.create_event(admin, capacity=3)
    buyer, _ = api.register_buyer()
    rival, _ = api.register_admin()
    for token in (buyer, rival):
        assert_problem(api.call("GET", f"/v1/events/{event['id']}/attendees", token), 403, "forbidden")
    bad = api.call("GET", f"/v1/events/{event['id']}/attendees", admin, params={"page_token": "nope"})
    assert_problem(bad, 422, "validation_error")


def test_csv_is_what_the_client_accepts_most(api: Api) -> None:
    admin, _ = api.register_admin()
    event = api.create_event(admin, capacity=3)
    path = f"/v1/events/{event['id']}/attendees"
    refused_csv = api.call("GET", path, admin, headers={"Accept": "text/csv;q=0, application/json"})
    assert refused_csv.headers["Content-Type"].startswith("application/json"), refused_csv.headers
    assert refused_csv.headers.get("Vary") == "Accept"
    csv_first = api.call("GET", path, admin, headers={"Accept": "text/csv, application/json;q=0.5"})
    assert csv_first.headers["Content-Type"].startswith("text/csv")
