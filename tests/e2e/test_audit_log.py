"""The audit log (`GET /v1/events/{id}/audit`): the event's domain-event stream, as its admins read it.

Every change of the event, its bookings and payments is one entry, written in the same commit as the
change, with who made it and a sequence per object; newest first, paged, for the owning company only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from tests.conftest import Api
from tests.e2e.payments_helpers import assert_problem, book, paid, poll, stays, ts, wait_for_status


def audit(api: Api, token: str, event_id: str, **params: Any) -> dict[str, Any]:
    response = api.call("GET", f"/v1/events/{event_id}/audit", token, params=params)
    assert response.status_code == 200, response.text
    return dict(response.json())


def all_entries(api: Api, token: str, event_id: str, limit: int = 2) -> list[dict[str, Any]]:
    """Every entry, page by page."""
    entries: list[dict[str, Any]] = []
    token_param: dict[str, Any] = {}
    for _ in range(100):
        page = audit(api, token, event_id, limit=limit, **token_param)
        assert len(page["items"]) <= limit
        entries += page["items"]
        if not page["next_page_token"]:
            return entries
        token_param = {"page_token": page["next_page_token"]}
    raise AssertionError("the audit log did not end")


def patch_name(api: Api, token: str, event: dict[str, Any], name: str) -> dict[str, Any]:
    response = api.call(
        "PATCH", f"/v1/events/{event['id']}", token, json={"name": name}, headers={"If-Match": f'"{event["version"]}"'}
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


@pytest.fixture
def sold(api: Api) -> dict[str, Any]:
    """An event created, renamed, and one ticket held, paid and confirmed."""
    admin_token, admin = api.register_admin()
    event = api.create_event(admin_token, name="Audit Night", capacity=5)
    event = patch_name(api, admin_token, event, "Audit Night II")
    buyer_token, buyer = api.register_buyer()
    booking = book(api, buyer_token, event["id"])
    payment = paid(api, buyer_token, booking["id"], "pm_card_visa")
    wait_for_status(api, buyer_token, booking["id"], "confirmed")
    return {
        "admin_token": admin_token,
        "admin": admin,
        "buyer_token": buyer_token,
        "buyer": buyer,
        "event": event,
        "booking": booking,
        "payment": payment,
    }


def test_every_change_is_one_entry_with_its_actor_newest_first(api: Api, sold: dict[str, Any]) -> None:
    event, booking, payment = sold["event"], sold["booking"], sold["payment"]
    # the confirmation and the payment's own events land asynchronously (webhook, finaliser)
    entries = poll(
        lambda: (
            (found := all_entries(api, sold["admin_token"], event["id"]))
            and "booking.confirmed" in {e["action"] for e in found}
            and found
        )
    )
    assert entries, "booking.confirmed never reached the audit log"
    by_action: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        assert set(entry) >= {"at", "actor", "action", "object", "sequence"}
        by_action.setdefault(entry["action"], []).append(entry)

    admin, buyer = sold["admin"]["id"], sold["buyer"]["id"]
    (created,) = by_action["event.created"]
    (updated,) = by_action["event.updated"]
    assert created["actor"] == updated["actor"] == {"type": "user", "id": admin}
    assert created["object"] == updated["object"] == {"type": "event", "id": event["id"]}
    assert updated["changes"] == {"name": ["Audit Night", "Audit Night II"]}
    assert created["sequence"] < updated["sequence"]

    (held,) = by_action["booking.held"]
    assert held["actor"] == {"type": "user", "id": buyer}
    assert held["object"] == {"type": "booking", "id": booking["id"]}
    (confirmed,) = by_action["booking.confirmed"]
    assert confirmed["actor"]["type"] == "system"
    assert confirmed["changes"]["status"] == ["pending_payment", "confirmed"]
    assert held["sequence"] < confirmed["sequence"]

    (made,) = by_action["payment.created"]
    assert made["actor"] == {"type": "user", "id": buyer}
    assert made["object"] == {"type": "payment", "id": payment["id"]}
    (succeeded,) = by_action["payment.succeeded"]
    assert succeeded["actor"]["type"] in ("user", "stripe")
    assert succeeded["changes"]["status"][1] == "succeeded"

    payment_sequences = [e["sequence"] for e in entries if e["object"]["id"] == payment["id"]]
    assert len(payment_sequences) == len(set(payment_sequences)), "a payment sequence number was used twice"
    times = [ts(e["at"]) for e in entries]
    assert times == sorted(times, reverse=True), "not newest first"
    assert all(isinstance(ts(e["at"]), datetime) for e in entries)


def test_pages_cover_the_log_once(api: Api, sold: dict[str, Any]) -> None:
    event_id, token = sold["event"]["id"], sold["admin_token"]
    poll(lambda: "booking.confirmed" in {e["action"] for e in audit(api, token, event_id, limit=100)["items"]})
    settled = len(audit(api, token, event_id, limit=100)["items"])
    assert stays(lambda: len(audit(api, token, event_id, limit=100)["items"]) == settled), "the log kept growing"

    whole = audit(api, token, event_id, limit=100)["items"]
    paged = all_entries(api, token, event_id, limit=1)

    assert paged == whole
    assert len(whole) >= 6


def test_a_cancellation_is_recorded_with_the_buyer_as_actor(api: Api) -> None:
    admin_token, _ = api.register_admin()
    event = api.create_event(admin_token, capacity=3)
    buyer_token, buyer = api.register_buyer()
    booking = book(api, buyer_token, event["id"], quantity=2)

    response = api.call("POST", f"/v1/bookings/{booking['id']}/cancel", buyer_token)
    assert response.status_code == 200, response.text

    entries = audit(api, admin_token, event["id"])["items"]
    assert [e["action"] for e in entries] == ["booking.cancelled", "booking.held", "event.created"]
    cancelled = entries[0]
    assert cancelled["actor"] == {"type": "user", "id": buyer["id"]}
    assert cancelled["changes"]["status"] == ["pending_payment", "cancelled"]


def test_only_the_owning_companys_admins_read_it(api: Api) -> None:
    admin_token, _ = api.register_admin()
    event = api.create_event(admin_token)
    draft = api.create_event(admin_token, status="draft")
    buyer_token, _ = api.register_buyer()
    rival_token, _ = api.register_admin()

    assert_problem(api.call("GET", f"/v1/events/{event['id']}/audit", buyer_token), 403, "forbidden")
    assert_problem(api.call("GET", f"/v1/events/{event['id']}/audit", rival_token), 403, "forbidden")
    assert_problem(api.call("GET", f"/v1/events/{draft['id']}/audit", rival_token), 404, "not_found")
    assert_problem(api.call("GET", "/v1/events/no-such-event/audit", admin_token), 404, "not_found")
    assert_problem(api.call("GET", f"/v1/events/{event['id']}/audit"), 401, "unauthenticated")
    assert audit(api, admin_token, draft["id"])["items"][0]["action"] == "event.created"


def test_a_bad_page_token_or_limit_is_a_validation_error(api: Api) -> None:
    admin_token, _ = api.register_admin()
    event = api.create_event(admin_token)
    other = api.create_event(admin_token)
    api.call("PATCH", f"/v1/events/{event['id']}", admin_token, json={"name": "x"}, headers={"If-Match": '"1"'})
    first = audit(api, admin_token, event["id"], limit=1)
    assert first["next_page_token"]

    for params in ({"limit": 0}, {"limit": "many"}, {"page_token": "garbage"}):
        response = api.call("GET", f"/v1/events/{event['id']}/audit", admin_token, params=params)
        assert_problem(response, 422, "validation_error")
    # a cursor of one event's log is not valid for another's
    response = api.call(
        "GET", f"/v1/events/{other['id']}/audit", admin_token, params={"page_token": first["next_page_token"]}
    )
    assert_problem(response, 422, "validation_error")
