"""Check-in (API.md, Check-in): exactly one admission per ticket under any concurrency, online and
offline; check-in devices scoped to one event and revocable; what the door refuses, and why."""

from __future__ import annotations

import secrets
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from dev.stack import Stack
from tests.conftest import Api
from tests.e2e.payments_helpers import assert_problem, book, firestore_for, paid, wait_for_status, where


def sold_tickets(api: Api, admin: str, event: dict[str, Any], quantity: int) -> list[dict[str, Any]]:
    buyer, _ = api.register_buyer()
    booking = book(api, buyer, event["id"], quantity=quantity)
    paid(api, buyer, booking["id"], "pm_card_visa")
    wait_for_status(api, buyer, booking["id"], "confirmed")
    response = api.call("GET", f"/v1/bookings/{booking['id']}/tickets", admin)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def check_in(api: Api, token: str, event_id: str, code: str) -> requests.Response:
    return api.call("POST", f"/v1/events/{event_id}/checkins", token, json={"code": code})


def scan(code: str, at: datetime, scan_id: str | None = None) -> dict[str, Any]:
    return {"scan_id": scan_id or secrets.token_hex(6), "code": code, "scanned_at": at.isoformat()}


def upload(api: Api, token: str, event_id: str, scans: list[dict[str, Any]]) -> requests.Response:
    return api.call("POST", f"/v1/events/{event_id}/checkins/batch", token, json={"scans": scans})


@pytest.fixture
def door(api: Api) -> dict[str, Any]:
    admin, _ = api.register_admin()
    event = api.create_event(admin, capacity=20)
    other = api.create_event(admin, capacity=5)
    return {"admin": admin, "event": event, "other": other, "tickets": sold_tickets(api, admin, event, 3)}


def test_a_ticket_is_admitted_once_then_already_checked_in(api: Api, door: dict[str, Any]) -> None:
    event, ticket = door["event"], door["tickets"][0]

    first = check_in(api, door["admin"], event["id"], ticket["code"])
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["ticket"]["id"] == ticket["id"]
    assert body["ticket"]["status"] == "checked_in"
    assert body["checked_in_at"] == body["ticket"]["checked_in_at"]

    again = check_in(api, door["admin"], event["id"], ticket["code"])
    problem = assert_problem(again, 409, "already_checked_in")
    assert problem["checked_in_at"] == body["checked_in_at"]


def test_two_gates_at_the_same_moment_admit_once(api: Api, door: dict[str, Any]) -> None:
    event, ticket = door["event"], door["tickets"][1]
    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(lambda _: check_in(api, door["admin"], event["id"], ticket["code"]), range(10)))
    codes = sorted((r.status_code, r.json().get("code")) for r in answers)
    assert codes == [(200, None)] + [(409, "already_checked_in")] * 9, codes


def test_what_the_door_refuses(api: Api, stack: Stack, door: dict[str, Any]) -> None:
    event, other, code = door["event"], door["other"], door["tickets"][2]["code"]
    payload, signature = code.split(".")
    for bad in (f"{payload}.{signature[::-1]}", code[:40], "A" * 600, "no-dots", f"{code}.x"):
        assert_problem(check_in(api, door["admin"], event["id"], bad), 422, "invalid_ticket")
    assert_problem(check_in(api, door["admin"], event["id"], "A" * 1001), 422, "validation_error")
    assert_problem(check_in(api, door["admin"], other["id"], code), 409, "wrong_event")
    db = firestore_for(stack)
    assert [t["status"] for t in where(db, "tickets", "event_id", other["id"])] == []
    assert where(db, "tickets", "event_id", event["id"])[0]["status"] == "valid", "nothing half-written"


def test_a_refunded_ticket_is_revoked_at_the_door_and_listed(api: Api, door: dict[str, Any]) -> None:
    event, ticket = door["event"], door["tickets"][0]
    response = api.call("POST", f"/v1/bookings/{ticket['booking_id']}/refund", door["admin"])
    assert response.status_code == 200, response.text

    assert_problem(check_in(api, door["admin"], event["id"], ticket["code"]), 409, "ticket_revoked")
    listed = api.call("GET", f"/v1/events/{event['id']}/revocations", door["admin"])
    assert listed.status_code == 200, listed.text
    assert sorted(listed.json()["ticket_ids"]) == sorted(t["id"] for t in door["tickets"])


def test_a_device_checks_in_at_its_event_only_until_revoked(api: Api, door: dict[str, Any]) -> None:
    event, other = door["event"], door["other"]
    created = api.call("POST", f"/v1/events/{event['id']}/checkin-devices", door["admin"], json={"name": "North gate"})
    assert created.status_code == 201, created.text
    device = created.json()
    token = device["token"]

    admitted = check_in(api, token, event["id"], door["tickets"][0]["code"])
    assert admitted.status_code == 200, admitted.text
    assert api.call("GET", f"/v1/events/{event['id']}/revocations", token).status_code == 200
    assert_problem(check_in(api, token, other["id"], door["tickets"][1]["code"]), 403, "forbidden")
    for path in (f"/v1/events/{event['id']}/bookings", f"/v1/events/{event['id']}/checkin-devices"):
        assert_problem(api.call("GET", path, token), 401, "unauthenticated")

    listed = api.call("GET", f"/v1/events/{event['id']}/checkin-devices", door["admin"]).json()["items"]
    assert [(d["id"], d["name"], d["revoked_at"]) for d in listed] == [(device["id"], "North gate", None)]
    assert "token" not in listed[0]
    audit = api.call("GET", f"/v1/events/{event['id']}/audit", door["admin"], params={"limit": 100}).json()
    checked = [e for e in audit["items"] if e["action"] == "ticket.checked_in"]
    assert [e["actor"] for e in checked] == [{"type": "device", "id": device["id"]}]

    revoked = api.call("DELETE", f"/v1/events/{event['id']}/checkin-devices/{device['id']}", door["admin"])
    assert revoked.status_code == 204, revoked.text
    assert_problem(check_in(api, token, event["id"], door["tickets"][1]["code"]), 401, "unauthenticated")
    assert_problem(check_in(api, token[:-2] + "xx", event["id"], door["tickets"][1]["code"]), 401, "unauthenticated")


def test_buyers_and_other_companies_cannot_check_in(api: Api, door: dict[str, Any]) -> None:
    buyer, _ = api.register_buyer()
    rival, _ = api.register_admin()
    for token in (buyer, rival):
        assert_problem(check_in(api, token, door["event"]["id"], door["tickets"][0]["code"]), 403, "forbidden")
        devices = api.call("POST", f"/v1/events/{door['event']['id']}/checkin-devices", token, json={"name": "x"})
        assert_problem(devices, 403, "forbidden")


def test_an_offline_batch_earliest_scan_wins_and_a_resend_gets_its_first_results(
    api: Api, door: dict[str, Any]
) -> None:
    event, other, (a, b, c) = door["event"], door["other"], door["tickets"]
    foreign = sold_tickets(api, door["admin"], other, 1)[0]
    t0 = datetime.now(UTC)  # after the tickets were issued (an earlier scan counts from their issue)
    scans = [
        scan(a["code"], t0 + timedelta(seconds=30), "late-a"),
        scan(a["code"], t0, "early-a"),
        scan(b["code"], t0, "b"),
        scan(foreign["code"], t0, "foreign"),
        scan("forged.code", t0, "forged"),
    ]

    response = upload(api, door["admin"], event["id"], scans)
    assert response.status_code == 200, response.text
    results = {r["scan_id"]: (r["result"], r["ticket_id"]) for r in response.json()["results"]}
    assert [r["scan_id"] for r in response.json()["results"]] == [s["scan_id"] for s in scans]
    assert results == {
        "early-a": ("ok", a["id"]),
        "late-a": ("already_checked_in", a["id"]),
        "b": ("ok", b["id"]),
        "foreign": ("wrong_event", None),
        "forged": ("invalid_ticket", None),
    }
    tickets = api.call("GET", f"/v1/bookings/{a['booking_id']}/tickets", door["admin"]).json()["items"]
    by_id = {t["id"]: t for t in tickets}
    assert datetime.fromisoformat(by_id[a["id"]]["checked_in_at"].replace("Z", "+00:00")) == t0

    online = check_in(api, door["admin"], event["id"], c["code"])
    assert online.status_code == 200, online.text
    resent = upload(api, door["admin"], event["id"], [*scans, scan(c["code"], t0, "c-offline")])
    assert resent.status_code == 200, resent.text
    again = {r["scan_id"]: (r["result"], r["ticket_id"]) for r in resent.json()["results"]}
    assert again == {**results, "c-offline": ("already_checked_in", c["id"])}


@pytest.mark.parametrize(
    "scans",
    [
        [],
        [scan("x.y", datetime(2026, 1, 1, tzinfo=UTC), "same"), scan("x.y", datetime(2026, 1, 1, tzinfo=UTC), "same")],
        [scan("x.y", datetime(2026, 1, 1, tzinfo=UTC)) for _ in range(501)],
        [{"scan_id": "bad id!", "code": "x.y", "scanned_at": "2026-01-01T00:00:00Z"}],
        [{"scan_id": "naive", "code": "x.y", "scanned_at": "2026-01-01T00:00:00"}],
    ],
    ids=["empty", "duplicate scan_id", "over 500", "bad scan_id", "no time zone"],
)
def test_a_bad_batch_is_refused_whole(api: Api, stack: Stack, door: dict[str, Any], scans: list[Any]) -> None:
    response = upload(api, door["admin"], door["event"]["id"], scans)
    assert_problem(response, 422, "validation_error")
    assert where(firestore_for(stack), "checkin_scans", "event_id", door["event"]["id"]) == []


def test_a_full_batch_of_real_sized_codes_is_read_and_a_bigger_body_is_refused(api: Api, door: dict[str, Any]) -> None:
    event, code = door["event"], door["tickets"][0]["code"]
    payload, signature = code.split(".")
    at = datetime.now(UTC)
    scans = [scan(code if i == 0 else f"{payload}.{signature[::-1]}", at, f"s{i}") for i in range(500)]

    response = upload(api, door["admin"], event["id"], scans)
    assert response.status_code == 200, response.text[:300]
    results = Counter(r["result"] for r in response.json()["results"])
    assert results == {"ok": 1, "invalid_ticket": 499}

    huge = [scan("A" * 1000, at, f"h{i}") for i in range(500)] + [{"pad": "x" * 200_000}]
    assert_problem(upload(api, door["admin"], event["id"], huge), 413, "payload_too_large")


@pytest.mark.parametrize(
    "token",
    [
        "chk_",
        "chk_short",
        "chk_aaaaaaaaa/bbbbbbbbbbX" + "s" * 40,
        "chk___aaaaaaaaaaaaaaaa__" + "s" * 40,
        "chk_" + "é" * 30,
    ],
    ids=["empty", "short", "slash", "reserved id", "not ascii"],
)
def test_a_made_up_device_token_is_unauthenticated(api: Api, door: dict[str, Any], token: str) -> None:
    response = check_in(api, token, door["event"]["id"], door["tickets"][0]["code"])
    assert_problem(response, 401, "unauthenticated")


@pytest.mark.parametrize("at", ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+01:00", "1999-12-31T23:59:59Z"])
def test_an_implausible_scan_time_is_refused(api: Api, door: dict[str, Any], at: str) -> None:
    scans = [{"scan_id": "s1", "code": door["tickets"][0]["code"], "scanned_at": at}]
    assert_problem(upload(api, door["admin"], door["event"]["id"], scans), 422, "validation_error")


def test_two_scanners_numbering_their_scans_alike_each_get_their_own_results(api: Api, door: dict[str, Any]) -> None:
    event, (a, b, _c) = door["event"], door["tickets"]
    tokens = []
    for name in ("East", "West"):
        created = api.call("POST", f"/v1/events/{event['id']}/checkin-devices", door["admin"], json={"name": name})
        assert created.status_code == 201, created.text
        tokens.append(created.json()["token"])
    at = datetime.now(UTC)
    east = upload(api, tokens[0], event["id"], [scan(a["code"], at, "1")])
    west = upload(api, tokens[1], event["id"], [scan(b["code"], at, "1")])
    assert [(r["result"], r["ticket_id"]) for r in east.json()["results"]] == [("ok", a["id"])]
    assert [(r["result"], r["ticket_id"]) for r in west.json()["results"]] == [("ok", b["id"])]
