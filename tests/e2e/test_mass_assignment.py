"""Mass assignment: a field a client must not set is refused, and nothing is stored or changed.

Every refusal is `422 validation_error` naming the field (API.md: unknown request fields are
rejected, never silently stored), and each case reads the object back through the API afterwards.
The forbidden field is sent beside allowed ones, so a change applied halfway would show. A control
per resource shows that the same request without the field succeeds and that the read-back would
see a change.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from tests.conftest import Api, event_body, user_body


@dataclass(frozen=True)
class People:
    admin: str
    company_id: str
    event_id: str
    buyer: str  # never books: their booking list stays empty
    buyer_id: str
    payer: str  # holds `booking_id`, which stays unpaid
    booking_id: str
    rival_company_id: str


@pytest.fixture(scope="module")
def people(api: Api) -> People:
    admin, admin_user = api.register_admin()
    event = api.create_event(admin, name=f"Mass {secrets.token_hex(4)}")
    buyer, buyer_user = api.register_buyer()
    payer, _ = api.register_buyer()
    held = api.call("POST", f"/v1/events/{event['id']}/bookings", payer, json={"quantity": 1})
    assert held.status_code == 201, held.text
    _, rival_user = api.register_admin()
    return People(
        admin=admin,
        company_id=admin_user["company_id"],
        event_id=event["id"],
        buyer=buyer,
        buyer_id=buyer_user["id"],
        payer=payer,
        booking_id=held.json()["id"],
        rival_company_id=rival_user["company_id"],
    )


# A value is given as is, or computed from the People (ids of real objects make the stronger case).
Value = Any | Callable[[People], Any]


def value_of(value: Value, people: People) -> Any:
    return value(people) if callable(value) else value


def assert_refused(response: requests.Response, field: str) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == "validation_error", body
    assert field in {e.get("field") for e in body.get("errors", [])}, body


def get_json(api: Api, path: str, token: str | None = None, **params: Any) -> Any:
    response = api.call("GET", path, token, params=params or None)
    assert response.status_code == 200, response.text
    return response.json()


# ---- POST /v1/events --------------------------------------------------------------------------

EVENT_CREATE = {
    "id": "chosen-event-id",
    "company_id": lambda p: p.rival_company_id,
    "available_tickets": 5,
    "current_price": 1,
    "version": 7,
    "starts_at": "2030-05-01T18:00:00Z",
    "created_at": "2020-01-01T00:00:00Z",
    "updated_at": "2020-01-01T00:00:00Z",
    "status": "cancelled",  # only "published" or "draft" on creation
    "cancellation": {"reason": "x", "cancelled_at": "2020-01-01T00:00:00Z"},  # only POST .../cancel cancels
    "cancellation_reason": "x",
    "cancelled_at": "2020-01-01T00:00:00Z",
}


@pytest.mark.parametrize(("field", "value"), EVENT_CREATE.items(), ids=list(EVENT_CREATE))
def test_creating_an_event_refuses_server_fields(api: Api, people: People, field: str, value: Value) -> None:
    tag = secrets.token_hex(6)
    body = {**event_body(name=f"Mass {tag}"), field: value_of(value, people)}

    assert_refused(api.call("POST", "/v1/events", people.admin, json=body), field)

    assert get_json(api, "/v1/events", q=tag)["items"] == []
    if field == "id":
        assert api.call("GET", "/v1/events/chosen-event-id").status_code == 404


def test_control_an_event_created_without_them_is_found(api: Api, people: People) -> None:
    tag = secrets.token_hex(6)
    created = api.call("POST", "/v1/events", people.admin, json=event_body(name=f"Mass {tag}", status="published"))

    assert created.status_code == 201, created.text
    assert [e["id"] for e in get_json(api, "/v1/events", q=tag)["items"]] == [created.json()["id"]]
    assert created.json()["company_id"] == people.company_id
    assert created.json()["version"] == 1


# ---- PATCH /v1/events/{id} --------------------------------------------------------------------

EVENT_PATCH = {
    "id": "chosen-event-id",
    "company_id": lambda p: p.rival_company_id,
    "available_tickets": 5,
    "current_price": 1,
    "starts_at": "2030-05-01T18:00:00Z",
    "created_at": "2020-01-01T00:00:00Z",
    "updated_at": "2020-01-01T00:00:00Z",
    "status": "cancelled",
    "cancellation": {"reason": "x", "cancelled_at": "2020-01-01T00:00:00Z"},
    "cancellation_reason": "x",
    "cancelled_at": "2020-01-01T00:00:00Z",
}


@pytest.mark.parametrize(("field", "value"), EVENT_PATCH.items(), ids=list(EVENT_PATCH))
def test_changing_an_event_refuses_server_fields(api: Api, people: People, field: str, value: Value) -> None:
    path = f"/v1/events/{people.event_id}"
    before = api.call("GET", path, people.admin)
    body = {"name": "Should Not Stick", field: value_of(value, people)}

    response = api.call("PATCH", path, people.admin, json=body, headers={"If-Match": before.headers["ETag"]})

    assert_refused(response, field)
    assert get_json(api, path, people.admin) == before.json()


def test_a_version_in_a_patch_body_is_a_precondition_never_a_value(api: Api, people: People) -> None:
    path = f"/v1/events/{people.event_id}"
    before = get_json(api, path, people.admin)

    stale = api.call("PATCH", path, people.admin, json={"name": "Versioned", "version": before["version"] + 10})
    assert stale.status_code == 412, stale.text
    assert get_json(api, path, people.admin) == before

    applied = api.call("PATCH", path, people.admin, json={"name": "Versioned", "version": before["version"]})
    assert applied.status_code == 200, applied.text
    assert applied.json()["version"] == before["version"] + 1
    assert applied.json()["company_id"] == before["company_id"]


# ---- POST /v1/events/{id}/bookings ------------------------------------------------------------

BOOKING = {
    "unit_price": 1,
    "total_cost": 0,
    "status": "confirmed",
    "user_id": lambda p: p.buyer_id,
    "event_id": "another-event",
    "currency": "USD",
    "id": "chosen-booking-id",
    "expires_at": "2099-01-01T00:00:00Z",
    "booking_time": "2020-01-01T00:00:00Z",
    "discount": 100_000,
}


@pytest.mark.parametrize(("field", "value"), BOOKING.items(), ids=list(BOOKING))
def test_holding_tickets_refuses_server_fields(api: Api, people: People, field: str, value: Value) -> None:
    before = get_json(api, f"/v1/events/{people.event_id}")["available_tickets"]
    body = {"quantity": 1, field: value_of(value, people)}

    assert_refused(api.call("POST", f"/v1/events/{people.event_id}/bookings", people.buyer, json=body), field)

    assert get_json(api, "/v1/bookings", people.buyer)["items"] == []
    assert get_json(api, f"/v1/events/{people.event_id}")["available_tickets"] == before


def test_control_a_hold_without_them_is_stored_at_the_events_price(api: Api, people: People) -> None:
    buyer, _ = api.register_buyer()
    event = get_json(api, f"/v1/events/{people.event_id}")

    held = api.call("POST", f"/v1/events/{people.event_id}/bookings", buyer, json={"quantity": 2})

    assert held.status_code == 201, held.text
    assert held.json()["unit_price"] == event["current_price"]
    assert held.json()["total_cost"] == 2 * event["current_price"]
    assert held.json()["status"] == "pending_payment"
    assert [b["id"] for b in get_json(api, "/v1/bookings", buyer)["items"]] == [held.json()["id"]]


# ---- POST /v1/bookings/{id}/payments ----------------------------------------------------------

PAYMENT = {
    "amount": 1,
    "status": "succeeded",
    "currency": "USD",
    "booking_id": "another-booking",
    "transaction_id": "pi_chosen",
    "provider": "free",
    "client_secret": "pi_chosen_secret",
    "idempotency_key": "chosen-key",
}


@pytest.mark.parametrize("with_method", [False, True], ids=["client_side", "server_side"])
@pytest.mark.parametrize(("field", "value"), PAYMENT.items(), ids=list(PAYMENT))
def test_paying_refuses_server_fields(api: Api, people: People, field: str, value: Value, with_method: bool) -> None:
    path = f"/v1/bookings/{people.booking_id}"
    body = {field: value_of(value, people)}
    if with_method:
        body["payment_method"] = "pm_card_visa"

    assert_refused(api.call("POST", f"{path}/payments", people.payer, json=body), field)

    booking = get_json(api, path, people.payer)
    assert (booking["status"], booking["payment"]) == ("pending_payment", None)


# ---- PATCH /v1/users/me -----------------------------------------------------------------------

USER_PATCH = {
    "role": "admin",
    "company_id": lambda p: p.company_id,
    "id": "chosen-user-id",
    "email": "someone-else@example.com",
    "created_at": "2020-01-01T00:00:00Z",
    "company": lambda p: user_body("admin")["company"],
}


@pytest.mark.parametrize(("field", "value"), USER_PATCH.items(), ids=list(USER_PATCH))
def test_changing_ones_profile_refuses_other_fields(api: Api, people: People, field: str, value: Value) -> None:
    before = get_json(api, "/v1/users/me", people.buyer)
    body = {"name": "Should Not Stick", field: value_of(value, people)}

    assert_refused(api.call("PATCH", "/v1/users/me", people.buyer, json=body), field)

    assert get_json(api, "/v1/users/me", people.buyer) == before
    # Still a buyer: the admin-only routes still refuse them.
    assert api.call("GET", f"/v1/companies/{people.company_id}", people.buyer).status_code == 403


def test_control_a_profile_change_without_them_is_stored(api: Api) -> None:
    token, _ = api.register_buyer()

    changed = api.call("PATCH", "/v1/users/me", token, json={"name": "Renamed Person"})

    assert changed.status_code == 200, changed.text
    assert get_json(api, "/v1/users/me", token)["name"] == "Renamed Person"


# ---- POST /v1/users ---------------------------------------------------------------------------

REGISTRATION: dict[str, tuple[str, Value]] = {
    "id": ("user", "chosen-user-id"),
    "company_id": ("user", lambda p: p.company_id),  # joining someone's company
    "created_at": ("user", "2020-01-01T00:00:00Z"),
    "role": ("user", "superuser"),
    "company.id": ("admin", "chosen-company-id"),
    "company.created_at": ("admin", "2020-01-01T00:00:00Z"),
}


@pytest.mark.parametrize(("field", "role_and_value"), REGISTRATION.items(), ids=list(REGISTRATION))
def test_registering_refuses_server_fields(
    api: Api, people: People, field: str, role_and_value: tuple[str, Value]
) -> None:
    role, value = role_and_value
    token = api.token()
    clean = user_body(role)
    body: dict[str, Any] = {**clean, "company": dict(clean["company"])} if role == "admin" else dict(clean)
    parent, _, name = field.rpartition(".")
    (body[parent] if parent else body)[name] = value_of(value, people)

    assert_refused(api.call("POST", "/v1/users", token, json=body), field)

    me = api.call("GET", "/v1/users/me", token)
    assert me.status_code == 403, me.text
    assert me.json()["code"] == "not_registered"
    # Nothing was half-stored either (no username or e-mail claimed): the clean request succeeds.
    registered = api.call("POST", "/v1/users", token, json=clean)
    assert registered.status_code == 201, registered.text
    assert registered.json()["role"] == role
    assert registered.json()["id"] != "chosen-user-id"
    if role == "user":
        assert registered.json()["company_id"] is None
    else:
        assert registered.json()["company_id"] not in (people.company_id, "chosen-company-id")


# ---- query strings ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "param"),
    [("/v1/bookings", "user_id"), ("/v1/attention", "company_id"), ("/v1/events/{event_id}/bookings", "company_id")],
)
def test_lists_refuse_a_filter_naming_someone_else(api: Api, people: People, path: str, param: str) -> None:
    """A list is the caller's own: an owner or company given in the query string is refused."""
    token = people.buyer if path == "/v1/bookings" else people.admin
    other = people.buyer_id if param == "user_id" else people.rival_company_id

    response = api.call("GET", path.format(event_id=people.event_id), token, params={param: other})

    assert_refused(response, param)
