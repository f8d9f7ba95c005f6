"""Holding, reading and cancelling bookings over HTTP, as API.md's Bookings section describes them.

Runs on the session stack (HOLD_TTL_SECONDS 600, one unpaid booking per buyer and event). Every test
makes its own events and buyers, so what other tests do never changes what one sees.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from dev.stack import Stack
from tests.e2e.bookings_helpers import (
    BOOKING_FIELDS,
    EXTRA_BOOKING_FIELDS,
    Http,
    assert_problem,
    claim_docs,
    live_claims,
    stored_bookings,
    ts,
)

HOLD_TTL = timedelta(seconds=600)  # the default: the session stack does not override it

Person = tuple[str, dict[str, Any]]


@pytest.fixture(scope="module")
def http(stack: Stack) -> Http:
    return Http(stack.url)


@pytest.fixture(scope="module")
def admin(http: Http) -> Person:
    return http.register("admin")


@pytest.fixture
def buyer(http: Http) -> Person:
    return http.register("user")


def new_event(http: Http, admin: Person, **overrides: Any) -> dict[str, Any]:
    return http.create_event(admin[0], **overrides)


def bookings_of(firestore_client: Any, event_id: str, user_id: str | None = None) -> dict[str, dict[str, Any]]:
    found = stored_bookings(firestore_client, event_id)
    return {k: v for k, v in found.items() if user_id is None or v["user_id"] == user_id}


# ---- holding ------------------------------------------------------------------------------------


def test_hold_answers_201_with_the_booking_and_holds_the_tickets(
    http: Http, admin: Person, buyer: Person, firestore_client: Any
) -> None:
    event = new_event(http, admin, capacity=50, base_price=2500, currency="EUR")
    response = http.hold(buyer[0], event["id"], 3)

    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) >= BOOKING_FIELDS, body
    assert set(body) - BOOKING_FIELDS <= EXTRA_BOOKING_FIELDS, body
    assert body["event_id"] == event["id"]
    assert body["user_id"] == buyer[1]["id"]
    assert body["quantity"] == 3
    assert body["unit_price"] == 2500
    assert body["total_cost"] == 7500
    assert body["currency"] == "EUR"
    assert body["status"] == "pending_payment"
    assert body["id"]
    assert isinstance(body["id"], str)
    assert ts(body["expires_at"]) - ts(body["booking_time"]) == HOLD_TTL
    assert http.available(event["id"]) == 47

    stored = bookings_of(firestore_client, event["id"])
    assert list(stored) == [body["id"]]
    assert stored[body["id"]]["status"] == "pending_payment"
    claims = live_claims(firestore_client, event["id"])
    assert len(claims) == 3
    assert {c["booking_id"] for c in claims} == {body["id"]}
    assert all(0 <= c["n"] < 50 and c["state"] == "held" for c in claims)


@pytest.mark.parametrize(
    ("quantity", "field"),
    [(0, "quantity"), (-1, "quantity"), (5, "quantity"), ("2", "quantity"), (1.5, "quantity"), (None, "quantity")],
)
def test_bad_quantity_is_a_validation_error_and_holds_nothing(
    http: Http, admin: Person, buyer: Person, firestore_client: Any, quantity: Any, field: str
) -> None:
    event = new_event(http, admin, capacity=20, max_tickets_per_booking=4)
    body = assert_problem(http.hold(buyer[0], event["id"], quantity), 422, "validation_error")
    assert any(e.get("field", "").endswith(field) for e in body.get("errors", [])), body
    assert http.available(event["id"]) == 20
    assert bookings_of(firestore_client, event["id"]) == {}


def test_quantity_at_the_per_booking_maximum_is_accepted(http: Http, admin: Person, buyer: Person) -> None:
    event = new_event(http, admin, capacity=20, max_tickets_per_booking=4)
    response = http.hold(buyer[0], event["id"], 4)
    assert response.status_code == 201, response.text
    assert http.available(event["id"]) == 16


@pytest.mark.parametrize("body", [{}, {"quantity": 1, "price": 1}, [1]])
def test_missing_or_unknown_fields_are_refused(http: Http, admin: Person, buyer: Person, body: Any) -> None:
    event = new_event(http, admin, capacity=20)
    assert_problem(http.hold(buyer[0], event["id"], body=body), 422, "validation_error")
    assert http.available(event["id"]) == 20


def test_unregistered_caller_cannot_hold(http: Http, admin: Person, firestore_client: Any) -> None:
    event = new_event(http, admin, capacity=20)
    assert_problem(http.hold(http.token(), event["id"], 1), 403, "not_registered")
    assert_problem(http.hold("", event["id"], 1), 401, "unauthenticated")
    assert http.available(event["id"]) == 20
    assert bookings_of(firestore_client, event["id"]) == {}


def test_unknown_event_is_not_found(http: Http, buyer: Person) -> None:
    assert_problem(http.hold(buyer[0], "no-such-event", 1), 404, "not_found")


def test_draft_event_is_not_found_for_buyers(http: Http, admin: Person, buyer: Person, firestore_client: Any) -> None:
    event = new_event(http, admin, capacity=20, status="draft")
    assert_problem(http.hold(buyer[0], event["id"], 1), 404, "not_found")
    assert bookings_of(firestore_client, event["id"]) == {}
    assert claim_docs(firestore_client, event["id"]) == []


def test_sold_out_when_fewer_tickets_are_left_holds_nothing(http: Http, admin: Person, firestore_client: Any) -> None:
    event = new_event(http, admin, capacity=5)
    (first, _), (second, second_user) = http.register(), http.register()
    assert http.hold(first, event["id"], 3).status_code == 201
    assert http.available(event["id"]) == 2

    assert_problem(http.hold(second, event["id"], 3), 409, "sold_out")
    assert http.available(event["id"]) == 2
    assert bookings_of(firestore_client, event["id"], second_user["id"]) == {}
    assert len(live_claims(firestore_client, event["id"])) == 3
    assert http.call("GET", "/v1/bookings", second).json()["items"] == []

    exact = http.hold(second, event["id"], 2)  # exactly what is left
    assert exact.status_code == 201, exact.text
    assert http.available(event["id"]) == 0
    third, _ = http.register()
    assert_problem(http.hold(third, event["id"], 1), 409, "sold_out")
    assert http.event(event["id"])["available_tickets"] == 0


def test_one_unpaid_booking_per_buyer_and_event_until_it_is_cancelled(
    http: Http, admin: Person, buyer: Person, firestore_client: Any
) -> None:
    event = new_event(http, admin, capacity=20)
    first = http.hold(buyer[0], event["id"], 2)
    assert first.status_code == 201, first.text

    assert_problem(http.hold(buyer[0], event["id"], 1), 409, "booking_limit_reached")
    assert http.available(event["id"]) == 18
    assert len(bookings_of(firestore_client, event["id"])) == 1

    other_event = new_event(http, admin, capacity=20)  # the cap is per event
    assert http.hold(buyer[0], other_event["id"], 1).status_code == 201

    assert http.cancel(buyer[0], first.json()["id"]).status_code == 200
    again = http.hold(buyer[0], event["id"], 1)
    assert again.status_code == 201, again.text
    assert again.json()["id"] != first.json()["id"]
    assert http.available(event["id"]) == 19


# ---- reading ------------------------------------------------------------------------------------


def test_booking_is_visible_to_its_owner_and_the_events_company_only(http: Http, admin: Person, buyer: Person) -> None:
    event = new_event(http, admin, capacity=20)
    held = http.hold(buyer[0], event["id"], 2).json()

    mine = http.booking(buyer[0], held["id"])
    assert mine.status_code == 200, mine.text
    body = mine.json()
    assert {k: body[k] for k in BOOKING_FIELDS} == {k: held[k] for k in BOOKING_FIELDS}
    assert set(body) - BOOKING_FIELDS <= EXTRA_BOOKING_FIELDS
    assert body.get("payment") is None  # API.md: the latest Payment or null; none yet

    as_admin = http.booking(admin[0], held["id"])
    assert as_admin.status_code == 200, as_admin.text
    assert as_admin.json()["id"] == held["id"]

    other_buyer, _ = http.register()
    other_admin, _ = http.register("admin")
    assert_problem(http.booking(other_buyer, held["id"]), 404, "not_found")
    assert_problem(http.booking(other_admin, held["id"]), 404, "not_found")
    assert_problem(http.booking(buyer[0], "no-such-booking"), 404, "not_found")


def test_my_bookings_are_listed_newest_first_page_by_page(http: Http, admin: Person, buyer: Person) -> None:
    made = []
    for quantity in (1, 2, 3, 1, 2):  # one unpaid booking per event: one event each
        event = new_event(http, admin, capacity=20)
        response = http.hold(buyer[0], event["id"], quantity)
        assert response.status_code == 201, response.text
        made.append(response.json()["id"])

    seen: list[str] = []
    pages = 0
    token: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if token:
            params["page_token"] = token
        response = http.call("GET", "/v1/bookings", buyer[0], params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert set(page) == {"items", "next_page_token"}
        assert len(page["items"]) <= 2
        assert all(item["user_id"] == buyer[1]["id"] for item in page["items"])
        seen += [item["id"] for item in page["items"]]
        pages += 1
        token = page["next_page_token"]
        if token is None:
            break
        assert pages < 10
    assert seen == list(reversed(made))
    assert pages == 3

    whole = http.call("GET", "/v1/bookings", buyer[0]).json()
    assert [b["id"] for b in whole["items"]] == list(reversed(made))
    assert whole["next_page_token"] is None
    times = [ts(b["booking_time"]) for b in whole["items"]]
    assert times == sorted(times, reverse=True)

    someone_else, _ = http.register()
    assert http.call("GET", "/v1/bookings", someone_else).json() == {"items": [], "next_page_token": None}
    assert_problem(http.call("GET", "/v1/bookings", buyer[0], params={"limit": 0}), 422, "validation_error")
    assert_problem(http.call("GET", "/v1/bookings", buyer[0], params={"limit": 101}), 422, "validation_error")


def test_event_bookings_are_listed_for_the_events_company_admins_only(
    http: Http, admin: Person, firestore_client: Any
) -> None:
    event = new_event(http, admin, capacity=20)
    buyers = [http.register() for _ in range(3)]
    made = [http.hold(token, event["id"], 1).json()["id"] for token, _ in buyers]

    response = http.call("GET", f"/v1/events/{event['id']}/bookings", admin[0], params={"limit": 2})
    assert response.status_code == 200, response.text
    first = response.json()
    assert [b["id"] for b in first["items"]] == [made[2], made[1]]
    assert first["next_page_token"]
    rest = http.call(
        "GET",
        f"/v1/events/{event['id']}/bookings",
        admin[0],
        params={"limit": 2, "page_token": first["next_page_token"]},
    ).json()
    assert [b["id"] for b in rest["items"]] == [made[0]]
    assert rest["next_page_token"] is None

    other_admin, _ = http.register("admin")
    assert_problem(http.call("GET", f"/v1/events/{event['id']}/bookings", buyers[0][0]), 403, "forbidden")
    assert_problem(http.call("GET", f"/v1/events/{event['id']}/bookings", other_admin), 403, "forbidden")
    assert_problem(http.call("GET", "/v1/events/no-such-event/bookings", admin[0]), 404, "not_found")


# ---- cancelling ---------------------------------------------------------------------------------


def test_cancel_releases_the_tickets_at_once_and_only_once(
    http: Http, admin: Person, buyer: Person, firestore_client: Any
) -> None:
    event = new_event(http, admin, capacity=10)
    held = http.hold(buyer[0], event["id"], 3).json()
    assert http.available(event["id"]) == 7

    cancelled = http.cancel(buyer[0], held["id"])
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["id"] == held["id"]
    assert http.available(event["id"]) == 10
    assert live_claims(firestore_client, event["id"]) == []
    stored = bookings_of(firestore_client, event["id"])[held["id"]]
    assert stored["status"] == "cancelled"
    assert [h["status"] for h in stored["history"]] == ["pending_payment", "cancelled"]

    other, _ = http.register()
    taken = http.hold(other, event["id"], 4).json()
    assert http.available(event["id"]) == 6

    again = http.cancel(buyer[0], held["id"])
    assert again.status_code == 200, again.text
    assert again.json()["status"] == "cancelled"
    assert http.available(event["id"]) == 6  # nothing released twice
    claims = live_claims(firestore_client, event["id"])
    assert len(claims) == 4
    assert {c["booking_id"] for c in claims} == {taken["id"]}
    stored = bookings_of(firestore_client, event["id"])[held["id"]]
    assert [h["status"] for h in stored["history"]] == ["pending_payment", "cancelled"]
    assert http.booking(buyer[0], held["id"]).json()["status"] == "cancelled"


def test_only_the_owner_cancels(http: Http, admin: Person, buyer: Person) -> None:
    event = new_event(http, admin, capacity=10)
    held = http.hold(buyer[0], event["id"], 2).json()
    other, _ = http.register()
    other_admin, _ = http.register("admin")

    assert_problem(http.cancel(other, held["id"]), 404, "not_found")
    assert_problem(http.cancel(other_admin, held["id"]), 404, "not_found")
    assert_problem(http.cancel(buyer[0], "no-such-booking"), 404, "not_found")
    company_admin = http.cancel(admin[0], held["id"])  # may see it, but only the buyer cancels
    assert_problem(company_admin, 403, "forbidden")
    assert http.booking(buyer[0], held["id"]).json()["status"] == "pending_payment"
    assert http.available(event["id"]) == 8


# ---- idempotency --------------------------------------------------------------------------------


def test_same_idempotency_key_and_body_returns_the_same_booking(
    http: Http, admin: Person, buyer: Person, firestore_client: Any
) -> None:
    event = new_event(http, admin, capacity=10)
    first = http.hold(buyer[0], event["id"], 2, key="order-1")
    second = http.hold(buyer[0], event["id"], 2, key="order-1")

    assert first.status_code == 201, first.text
    assert second.status_code == 201, second.text
    assert second.json() == first.json()
    assert list(bookings_of(firestore_client, event["id"])) == [first.json()["id"]]
    assert http.available(event["id"]) == 8


def test_same_idempotency_key_with_another_body_is_refused(
    http: Http, admin: Person, buyer: Person, firestore_client: Any
) -> None:
    event = new_event(http, admin, capacity=10)
    other_event = new_event(http, admin, capacity=10)
    first = http.hold(buyer[0], event["id"], 2, key="order-2")
    assert first.status_code == 201, first.text

    assert_problem(http.hold(buyer[0], event["id"], 3, key="order-2"), 422, "idempotency_key_reused")
    assert_problem(http.hold(buyer[0], other_event["id"], 2, key="order-2"), 422, "idempotency_key_reused")
    assert list(bookings_of(firestore_client, event["id"])) == [first.json()["id"]]
    assert bookings_of(firestore_client, other_event["id"]) == {}
    assert http.available(event["id"]) == 8
    assert http.available(other_event["id"]) == 10


def test_idempotency_keys_are_scoped_to_the_caller(http: Http, admin: Person, firestore_client: Any) -> None:
    event = new_event(http, admin, capacity=10)
    (one, one_user), (two, two_user) = http.register(), http.register()
    first = http.hold(one, event["id"], 1, key="shared-key")
    second = http.hold(two, event["id"], 1, key="shared-key")

    assert first.status_code == 201, first.text
    assert second.status_code == 201, second.text
    assert first.json()["id"] != second.json()["id"]
    assert first.json()["user_id"] == one_user["id"]
    assert second.json()["user_id"] == two_user["id"]
    assert len(bookings_of(firestore_client, event["id"])) == 2
    assert http.available(event["id"]) == 8


@pytest.mark.parametrize("key", ["k" * 256, "tab\tinside", "caf\xe9", "nbsp\xa0key"])
def test_malformed_idempotency_key_is_refused(
    http: Http, admin: Person, buyer: Person, firestore_client: Any, key: str
) -> None:
    event = new_event(http, admin, capacity=10)
    assert_problem(http.hold(buyer[0], event["id"], 1, key=key), 422, "validation_error")
    assert bookings_of(firestore_client, event["id"]) == {}
    assert http.available(event["id"]) == 10


@pytest.mark.parametrize("key", ["bad\x01key", "bad\x7fkey"])
def test_control_characters_in_the_idempotency_key_never_make_a_booking(
    http: Http, admin: Person, buyer: Person, firestore_client: Any, key: str
) -> None:
    """gunicorn (like Google's front ends) refuses such a header before the function sees it:
    400 there, 422 validation_error had it reached the API. Either way nothing is held."""
    event = new_event(http, admin, capacity=10)
    response = http.hold(buyer[0], event["id"], 1, key=key)
    if response.status_code != 400:
        assert_problem(response, 422, "validation_error")
    assert bookings_of(firestore_client, event["id"]) == {}
    assert http.available(event["id"]) == 10


def test_longest_idempotency_key_is_accepted(http: Http, admin: Person, buyer: Person) -> None:
    event = new_event(http, admin, capacity=10)
    key = "k" * 255
    first = http.hold(buyer[0], event["id"], 1, key=key)
    assert first.status_code == 201, first.text
    assert http.hold(buyer[0], event["id"], 1, key=key).json()["id"] == first.json()["id"]


# ---- surge pricing ------------------------------------------------------------------------------


def test_surge_price_applies_from_the_threshold_and_bookings_keep_their_price(http: Http, admin: Person) -> None:
    event = new_event(http, admin, capacity=10, surge_threshold=0.5, base_price=1000, surge_price=2000)
    assert http.event(event["id"])["current_price"] == 1000

    def book(quantity: int) -> dict[str, Any]:
        token, _ = http.register()
        response = http.hold(token, event["id"], quantity)
        assert response.status_code == 201, response.text
        return {"token": token, **response.json()}

    first = book(2)  # 0 of 10 taken
    assert (first["unit_price"], first["total_cost"]) == (1000, 2000)
    second = book(2)  # 2 of 10
    assert (second["unit_price"], second["total_cost"]) == (1000, 2000)
    assert http.event(event["id"])["current_price"] == 1000  # 4 of 10: still below 0.5
    crossing = book(3)  # made at 4 of 10: base, although it takes the event past the threshold
    assert (crossing["unit_price"], crossing["total_cost"]) == (1000, 3000)
    assert http.event(event["id"])["current_price"] == 2000  # 7 of 10
    surged = book(2)
    assert (surged["unit_price"], surged["total_cost"]) == (2000, 4000)
    assert http.available(event["id"]) == 1

    for made in (first, second, crossing):  # the price is fixed into the booking when it is made
        now = http.booking(made["token"], made["id"]).json()
        assert (now["unit_price"], now["total_cost"]) == (made["unit_price"], made["total_cost"])

    assert http.cancel(surged["token"], surged["id"]).status_code == 200
    assert http.cancel(crossing["token"], crossing["id"]).status_code == 200  # back to 4 of 10
    assert http.event(event["id"])["current_price"] == 1000
    assert book(1)["unit_price"] == 1000  # made at 4 of 10
    assert http.event(event["id"])["current_price"] == 2000  # 5 of 10: exactly the threshold
    assert book(1)["unit_price"] == 2000
