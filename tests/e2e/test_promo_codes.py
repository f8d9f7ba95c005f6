"""Promo codes (API.md): what an organiser sets up and what a buyer is charged, uses never above
`max_uses` under a rush, and every use given back when its booking ends."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import Api
from tests.e2e.bookings_helpers import SHORT_HOLDS, shared_stack
from tests.e2e.payments_helpers import (
    assert_problem,
    get_booking,
    get_payment,
    paid,
    sleep_past,
    ts,
    wait_for_status,
)


def add_code(api: Api, admin: str, event_id: str, **body: Any) -> dict[str, Any]:
    response = api.call("POST", f"/v1/events/{event_id}/promo-codes", admin, json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def codes(api: Api, admin: str, event_id: str) -> dict[str, dict[str, Any]]:
    response = api.call("GET", f"/v1/events/{event_id}/promo-codes", admin, params={"limit": 100})
    assert response.status_code == 200, response.text
    return {c["code"]: c for c in response.json()["items"]}


def hold(api: Api, buyer: str, event_id: str, quantity: int, code: str | None, **headers: str) -> Any:
    body: dict[str, Any] = {"quantity": quantity}
    if code is not None:
        body["promo_code"] = code
    return api.call("POST", f"/v1/events/{event_id}/bookings", buyer, json=body, headers=headers)


def test_a_code_is_created_upper_case_once_and_listed_with_its_uses(api: Api) -> None:
    admin, _ = api.register_admin()
    event = api.create_event(admin, capacity=10)
    created = add_code(api, admin, event["id"], code="early-bird_10", percent_off=10, max_uses=3)
    assert created == {
        "code": "EARLY-BIRD_10",
        "percent_off": 10,
        "amount_off": None,
        "max_uses": 3,
        "uses": 0,
        "valid_until": None,
        "active": True,
        "created_at": created["created_at"],
    }
    again = api.call(
        "POST", f"/v1/events/{event['id']}/promo-codes", admin, json={"code": "EARLY-bird_10", "amount_off": 5}
    )
    assert_problem(again, 409, "promo_code_exists")
    assert list(codes(api, admin, event["id"])) == ["EARLY-BIRD_10"]
    audit = api.call("GET", f"/v1/events/{event['id']}/audit", admin).json()["items"]
    assert any(
        e["action"] == "promo_code.created" and e["object"] == {"type": "promo_code", "id": "EARLY-BIRD_10"}
        for e in audit
    )


@pytest.mark.parametrize(
    "body",
    [
        {"code": "BOTH", "percent_off": 10, "amount_off": 100},
        {"code": "NONE"},
        {"code": "AB", "percent_off": 10},
        {"code": "HAS SPACE", "percent_off": 10},
        {"code": "X" * 33, "percent_off": 10},
        {"code": "PCT", "percent_off": 101},
        {"code": "PCT", "percent_off": 0},
        {"code": "AMT", "amount_off": 0},
        {"code": "USES", "percent_off": 5, "max_uses": 0},
        {"code": "NAIVE", "percent_off": 5, "valid_until": "2030-01-01T00:00:00"},
        {"code": "EXTRA", "percent_off": 5, "uses": 3},
    ],
)
def test_bad_codes_are_refused_and_nothing_is_stored(api: Api, body: dict[str, Any]) -> None:
    admin, _ = api.register_admin()
    event = api.create_event(admin)
    assert_problem(api.call("POST", f"/v1/events/{event['id']}/promo-codes", admin, json=body), 422, "validation_error")
    assert codes(api, admin, event["id"]) == {}


def test_only_the_events_admins_manage_codes(api: Api) -> None:
    admin, _ = api.register_admin()
    rival, _ = api.register_admin()
    buyer, _ = api.register_buyer()
    event = api.create_event(admin)
    add_code(api, admin, event["id"], code="MINE", percent_off=10)
    for token in (rival, buyer):
        body = {"code": "THEIRS", "percent_off": 50}
        assert_problem(api.call("POST", f"/v1/events/{event['id']}/promo-codes", token, json=body), 403, "forbidden")
        assert_problem(api.call("GET", f"/v1/events/{event['id']}/promo-codes", token), 403, "forbidden")
        patch = api.call("PATCH", f"/v1/events/{event['id']}/promo-codes/MINE", token, json={"active": False})
        assert_problem(patch, 403, "forbidden")
    assert codes(api, admin, event["id"])["MINE"]["active"] is True


def test_the_discount_follows_the_surge_and_exactly_total_cost_is_charged(api: Api) -> None:
    admin, _ = api.register_admin()
    event = api.create_event(admin, capacity=4, base_price=1999, surge_price=3333, surge_threshold=0.5)
    add_code(api, admin, event["id"], code="PCT15", percent_off=15)
    add_code(api, admin, event["id"], code="FLAT", amount_off=500)
    first_buyer, _ = api.register_buyer()
    first = hold(api, first_buyer, event["id"], 2, "pct15")
    assert first.status_code == 201, first.text
    assert first.json()["unit_price"] == 1999
    assert first.json()["promo_code"] == "PCT15"
    assert first.json()["discount"] == 1999 * 2 * 15 // 100
    assert first.json()["total_cost"] == 1999 * 2 - 1999 * 2 * 15 // 100
    payment = paid(api, first_buyer, first.json()["id"], "pm_card_visa")
    assert payment["amount"] == first.json()["total_cost"]
    wait_for_status(api, first_buyer, first.json()["id"], "confirmed")

    second_buyer, _ = api.register_buyer()
    second = hold(api, second_buyer, event["id"], 2, "FLAT")  # half the tickets are gone: surge price
    assert second.status_code == 201, second.text
    assert (second.json()["unit_price"], second.json()["discount"]) == (3333, 500 * 2)
    assert second.json()["total_cost"] == 3333 * 2 - 1000
    payment = paid(api, second_buyer, second.json()["id"], "pm_card_visa")
    assert get_payment(api, second_buyer, payment["id"])["amount"] == 3333 * 2 - 1000


def test_a_code_that_leaves_less_than_the_smallest_card_payment_is_refused_before_anything_is_held(api: Api) -> None:
    admin, _ = api.register_admin()
    event = api.create_event(admin, capacity=5, base_price=2500, surge_price=2500)
    add_code(api, admin, event["id"], code="NEARLYFREE", percent_off=99, max_uses=5)
    buyer, _ = api.register_buyer()
    # 25 cents is below the smallest card payment of EUR (50): nobody could ever pay it
    assert_problem(hold(api, buyer, event["id"], 1, "nearlyfree"), 422, "promo_code_invalid")
    assert codes(api, admin, event["id"])["NEARLYFREE"]["uses"] == 0
    assert api.call("GET", f"/v1/events/{event['id']}").json()["available_tickets"] == 5
    two = hold(api, buyer, event["id"], 2, "nearlyfree")  # 50 cents can be charged
    assert two.status_code == 201, two.text
    assert (two.json()["total_cost"], two.json()["status"]) == (50, "pending_payment")


def test_a_booking_that_costs_nothing_is_confirmed_at_once_with_its_tickets(api: Api) -> None:
    admin, _ = api.register_admin()
    event = api.create_event(admin, capacity=5, base_price=1500, surge_price=1500)
    add_code(api, admin, event["id"], code="GUEST", percent_off=100, max_uses=1)
    add_code(api, admin, event["id"], code="BIGCUT", amount_off=99_999)
    buyer, _ = api.register_buyer()
    free = hold(api, buyer, event["id"], 2, "guest")
    assert free.status_code == 201, free.text
    assert (free.json()["status"], free.json()["total_cost"], free.json()["discount"]) == ("confirmed", 0, 3000)
    tickets = api.call("GET", f"/v1/bookings/{free.json()['id']}/tickets", buyer).json()["items"]
    assert [t["status"] for t in tickets] == ["valid", "valid"]
    assert_problem(
        api.call("POST", f"/v1/bookings/{free.json()['id']}/payments", buyer, json={}), 409, "booking_not_payable"
    )
    assert codes(api, admin, event["id"])["GUEST"]["uses"] == 1
    assert api.call("GET", f"/v1/events/{event['id']}").json()["available_tickets"] == 3

    other, _ = api.register_buyer()
    capped = hold(api, other, event["id"], 1, "BIGCUT")  # amount_off above the price: never below 0
    assert capped.status_code == 201, capped.text
    assert (capped.json()["total_cost"], capped.json()["discount"], capped.json()["status"]) == (0, 1500, "confirmed")

    refunded = api.call("POST", f"/v1/bookings/{free.json()['id']}/refund", admin)
    assert refunded.status_code == 200, refunded.text
    assert refunded.json()["status"] == "refunded"
    assert codes(api, admin, event["id"])["GUEST"]["uses"] == 0  # the use came back
    tickets = api.call("GET", f"/v1/bookings/{free.json()['id']}/tickets", buyer).json()["items"]
    assert [t["status"] for t in tickets] == ["revoked", "revoked"]
    assert api.call("GET", f"/v1/events/{event['id']}").json()["available_tickets"] == 4


def test_a_rush_never_takes_more_uses_than_max_uses(api: Api) -> None:
    admin, _ = api.register_admin()
    event = api.create_event(admin, capacity=50)
    add_code(api, admin, event["id"], code="RUSH", percent_off=20, max_uses=5)
    buyers = [api.register_buyer()[0] for _ in range(20)]
    answers: list[Any] = []
    start = threading.Barrier(len(buyers))

    def one(token: str) -> None:
        start.wait()
        answers.append(hold(api, token, event["id"], 1, "RUSH"))

    threads = [threading.Thread(target=one, args=(b,)) for b in buyers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [201] * 5 + [409] * 15, [r.text for r in answers if r.status_code not in (201, 409)]
    assert {r.json()["code"] for r in answers if r.status_code == 409} == {"promo_code_exhausted"}
    assert codes(api, admin, event["id"])["RUSH"]["uses"] == 5
    assert api.call("GET", f"/v1/events/{event['id']}").json()["available_tickets"] == 45  # the refused hold nothing


def test_a_cancelled_booking_gives_its_use_back(api: Api) -> None:
    admin, _ = api.register_admin()
    event = api.create_event(admin, capacity=10)
    add_code(api, admin, event["id"], code="ONLYONE", amount_off=100, max_uses=1)
    first, _ = api.register_buyer()
    second, _ = api.register_buyer()
    booking = hold(api, first, event["id"], 1, "ONLYONE").json()
    assert_problem(hold(api, second, event["id"], 1, "ONLYONE"), 409, "promo_code_exhausted")
    assert api.call("POST", f"/v1/bookings/{booking['id']}/cancel", first).status_code == 200
    assert codes(api, admin, event["id"])["ONLYONE"]["uses"] == 0
    again = hold(api, second, event["id"], 1, "onlyone")
    assert again.status_code == 201, again.text
    assert again.json()["discount"] == 100


def test_unknown_inactive_expired_or_foreign_codes_are_invalid(api: Api) -> None:
    admin, _ = api.register_admin()
    event = api.create_event(admin, capacity=10)
    other_event = api.create_event(admin, capacity=10)
    add_code(api, admin, other_event["id"], code="ELSEWHERE", percent_off=10)
    add_code(api, admin, event["id"], code="OFF", percent_off=10, active=False)
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    add_code(api, admin, event["id"], code="OLD", percent_off=10, valid_until=past)
    buyer, _ = api.register_buyer()
    for code in ("NOPE", "OFF", "OLD", "ELSEWHERE"):
        assert_problem(hold(api, buyer, event["id"], 1, code), 422, "promo_code_invalid")
    for malformed in ("no!", "AB", "a/b", "__x__"):
        assert_problem(hold(api, buyer, event["id"], 1, malformed), 422, "promo_code_invalid")
    assert_problem(hold(api, buyer, event["id"], 1, "X" * 65), 422, "validation_error")
    assert api.call("GET", f"/v1/events/{event['id']}").json()["available_tickets"] == 10


def test_changing_a_code(api: Api) -> None:
    admin, _ = api.register_admin()
    event = api.create_event(admin, capacity=10)
    add_code(api, admin, event["id"], code="LIMITED", percent_off=10, max_uses=3)
    add_code(api, admin, event["id"], code="OPEN", percent_off=10)
    buyers = [api.register_buyer()[0] for _ in range(3)]
    for buyer in buyers[:2]:
        assert hold(api, buyer, event["id"], 1, "LIMITED").status_code == 201
    path = f"/v1/events/{event['id']}/promo-codes"
    assert_problem(api.call("PATCH", f"{path}/LIMITED", admin, json={"max_uses": 1}), 409, "invalid_state")
    lowered = api.call("PATCH", f"{path}/limited", admin, json={"max_uses": 2})
    assert lowered.status_code == 200, lowered.text
    assert (lowered.json()["max_uses"], lowered.json()["uses"]) == (2, 2)
    assert_problem(hold(api, buyers[2], event["id"], 1, "LIMITED"), 409, "promo_code_exhausted")
    raised = api.call("PATCH", f"{path}/LIMITED", admin, json={"max_uses": 3})
    assert raised.status_code == 200, raised.text
    assert hold(api, buyers[2], event["id"], 1, "LIMITED").status_code == 201
    off = api.call("PATCH", f"{path}/LIMITED", admin, json={"active": False, "max_uses": None})
    assert off.status_code == 200, off.text
    assert (off.json()["active"], off.json()["max_uses"], off.json()["uses"]) == (False, None, 3)
    assert_problem(api.call("PATCH", f"{path}/OPEN", admin, json={"max_uses": 5}), 409, "invalid_state")
    assert_problem(api.call("PATCH", f"{path}/OPEN", admin, json={"code": "NEW"}), 422, "validation_error")
    assert_problem(api.call("PATCH", f"{path}/OPEN", admin, json={}), 422, "validation_error")
    assert_problem(api.call("PATCH", f"{path}/MISSING", admin, json={"active": False}), 404, "not_found")
    assert_problem(api.call("PATCH", f"{path}/__x__", admin, json={"active": False}), 404, "not_found")
    reserved = api.call("POST", path, admin, json={"code": "__x__", "percent_off": 5})  # no id may look so
    assert_problem(reserved, 422, "validation_error")


def test_the_same_key_with_another_code_is_a_reused_key(api: Api) -> None:
    admin, _ = api.register_admin()
    event = api.create_event(admin, capacity=10)
    add_code(api, admin, event["id"], code="KEYED", percent_off=10)
    buyer, _ = api.register_buyer()
    first = hold(api, buyer, event["id"], 1, "keyed", **{"Idempotency-Key": "k-1"})
    assert first.status_code == 201, first.text
    replay = hold(api, buyer, event["id"], 1, "KEYED", **{"Idempotency-Key": "k-1"})
    assert (replay.status_code, replay.json()["id"]) == (201, first.json()["id"])
    assert_problem(hold(api, buyer, event["id"], 1, None, **{"Idempotency-Key": "k-1"}), 422, "idempotency_key_reused")


@pytest.fixture(scope="module")
def short_holds_api(pytestconfig: pytest.Config) -> Api:
    return Api(shared_stack(pytestconfig, "short-holds", SHORT_HOLDS).url)


def test_an_expired_hold_gives_its_use_back(short_holds_api: Api) -> None:
    api = short_holds_api
    admin, _ = api.register_admin()
    event = api.create_event(admin, capacity=10)
    add_code(api, admin, event["id"], code="BRIEF", percent_off=50, max_uses=1)
    first, _ = api.register_buyer()
    second, _ = api.register_buyer()
    booking = hold(api, first, event["id"], 1, "BRIEF").json()
    assert_problem(hold(api, second, event["id"], 1, "BRIEF"), 409, "promo_code_exhausted")
    sleep_past(ts(booking["expires_at"]))
    assert codes(api, admin, event["id"])["BRIEF"]["uses"] == 0
    taken = hold(api, second, event["id"], 1, "BRIEF")
    assert taken.status_code == 201, taken.text
    wait_for_status(api, first, booking["id"], "expired")
    assert get_booking(api, first, booking["id"])["promo_code"] == "BRIEF"


def test_a_booking_without_a_code_has_no_discount(api: Api) -> None:
    admin, _ = api.register_admin()
    event = api.create_event(admin, capacity=10, base_price=1200)
    add_code(api, admin, event["id"], code="UNUSED", percent_off=10)
    buyer, _ = api.register_buyer()
    plain = hold(api, buyer, event["id"], 2, None)
    assert plain.status_code == 201, plain.text
    assert (plain.json()["promo_code"], plain.json()["discount"], plain.json()["total_cost"]) == (None, 0, 2400)
    assert codes(api, admin, event["id"])["UNUSED"]["uses"] == 0
