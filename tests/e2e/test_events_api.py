"""Creating, reading and changing events over HTTP, as API.md describes them."""

from __future__ import annotations

import secrets
import threading
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from tests.conftest import Api, event_body

EVENT_FIELDS = {
    "id",
    "company_id",
    "name",
    "description",
    "event_date",
    "event_time",
    "timezone",
    "starts_at",
    "venue",
    "location_lat",
    "location_long",
    "capacity",
    "available_tickets",
    "base_price",
    "surge_price",
    "surge_threshold",
    "current_price",
    "currency",
    "max_tickets_per_booking",
    "status",
    "version",
    "created_at",
    "updated_at",
}


def assert_problem(response: requests.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json")
    body = response.json()
    assert {"type", "title", "status", "detail", "code"} <= set(body)
    assert body["status"] == status
    assert body["code"] == code
    return dict(body)


def unique_name() -> str:
    return f"Gala z{secrets.token_hex(5)}"


def get(api: Api, event_id: str, token: str | None = None) -> requests.Response:
    return api.call("GET", f"/v1/events/{event_id}", token)


def patch(api: Api, event_id: str, token: str, body: dict[str, Any], if_match: str | None) -> requests.Response:
    headers = {"If-Match": if_match} if if_match is not None else {}
    return api.call("PATCH", f"/v1/events/{event_id}", token, json=body, headers=headers)


def hold_tickets(firestore_client: Any, event_id: str, count: int, until: datetime | None = None) -> None:
    """Seed `count` taken ticket slots (held until `until`, default far in the future)."""
    held_until = until or datetime(2100, 1, 1, tzinfo=UTC)
    slots = firestore_client.collection("events").document(event_id).collection("slots")
    for _ in range(count):
        slots.document(secrets.token_hex(8)).set({"held_until": held_until})


@pytest.fixture
def admin(api: Api) -> tuple[str, dict[str, Any]]:
    return api.register_admin()


# ---- create ---------------------------------------------------------------------------------


def test_create_returns_the_event_with_derived_fields(api: Api, admin: tuple[str, dict[str, Any]]) -> None:
    token, user = admin
    body = event_body(name=unique_name())

    response = api.call("POST", "/v1/events", token, json=body)

    assert response.status_code == 201, response.text
    assert response.headers["ETag"] == '"1"'
    event = response.json()
    assert set(event) >= EVENT_FIELDS
    assert {k: event[k] for k in body} == body
    assert event["company_id"] == user["company_id"]
    assert event["starts_at"] == "2030-05-01T18:00:00Z"
    assert event["available_tickets"] == body["capacity"]
    assert event["current_price"] == body["base_price"]
    assert event["version"] == 1
    assert event["status"] == "published"
    assert event["max_tickets_per_booking"] == 10
    assert event["created_at"].endswith("Z")
    assert event["updated_at"] == event["created_at"]


def test_created_event_is_readable_by_anyone_without_a_token(api: Api, admin: tuple[str, dict[str, Any]]) -> None:
    created = api.create_event(admin[0], name=unique_name())

    response = get(api, created["id"])

    assert response.status_code == 200, response.text
    assert response.headers["ETag"] == '"1"'
    assert {k: v for k, v in response.json().items() if k in EVENT_FIELDS} == {
        k: v for k, v in created.items() if k in EVENT_FIELDS
    }


def test_published_event_is_readable_by_a_buyer_and_another_admin(api: Api, admin: tuple[str, dict[str, Any]]) -> None:
    created = api.create_event(admin[0], name=unique_name())
    buyer, _ = api.register_buyer()
    other_admin, _ = api.register_admin()

    for token in (buyer, other_admin):
        response = get(api, created["id"], token)
        assert response.status_code == 200, response.text
        assert response.json()["id"] == created["id"]


@pytest.mark.parametrize(
    ("event_date", "event_time", "timezone", "starts_at"),
    [
        ("2030-05-01", "20:00", "Europe/Berlin", "2030-05-01T18:00:00Z"),  # summer time
        ("2030-01-15", "20:00", "Europe/Berlin", "2030-01-15T19:00:00Z"),  # winter time
        ("2030-07-04", "19:30", "America/New_York", "2030-07-04T23:30:00Z"),
        ("2030-03-01", "09:00", "Asia/Tokyo", "2030-03-01T00:00:00Z"),
        ("2030-01-01", "00:30", "Pacific/Kiritimati", "2029-12-31T10:30:00Z"),
        ("2030-12-31", "23:00", "America/Los_Angeles", "2031-01-01T07:00:00Z"),
        ("2030-06-01", "12:00", "UTC", "2030-06-01T12:00:00Z"),
        ("2030-08-01", "18:45", "Asia/Kolkata", "2030-08-01T13:15:00Z"),
    ],
)
def test_starts_at_is_derived_from_local_date_time_and_timezone(
    api: Api, admin: tuple[str, dict[str, Any]], event_date: str, event_time: str, timezone: str, starts_at: str
) -> None:
    event = api.create_event(admin[0], event_date=event_date, event_time=event_time, timezone=timezone)

    assert event["starts_at"] == starts_at
    assert (event["event_date"], event["event_time"], event["timezone"]) == (event_date, event_time, timezone)
    assert get(api, event["id"]).json()["starts_at"] == starts_at


def test_optional_fields_take_their_defaults_or_given_values(api: Api, admin: tuple[str, dict[str, Any]]) -> None:
    body = event_body(name=unique_name())
    del body["description"]

    bare = api.call("POST", "/v1/events", admin[0], json=body)
    full = api.call("POST", "/v1/events", admin[0], json=body | {"description": "x", "max_tickets_per_booking": 4})

    assert bare.status_code == 201, bare.text
    assert bare.json()["description"] is None
    assert bare.json()["max_tickets_per_booking"] == 10
    assert full.status_code == 201, full.text
    assert full.json()["max_tickets_per_booking"] == 4
    assert full.json()["description"] == "x"


def test_every_create_makes_a_new_event_with_its_own_id(api: Api, admin: tuple[str, dict[str, Any]]) -> None:
    body = event_body(name=unique_name())
    ids = {api.create_event(admin[0], **body)["id"] for _ in range(3)}
    assert len(ids) == 3


def test_buyer_cannot_create_events(api: Api) -> None:
    token, _ = api.register_buyer()

    response = api.call("POST", "/v1/events", token, json=event_body())

    assert_problem(response, 403, "forbidden")


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"surge_price": 100, "base_price": 200}, "surge_price"),
        ({"capacity": 0}, "capacity"),
        ({"surge_threshold": 0}, "surge_threshold"),
        ({"surge_threshold": 1.5}, "surge_threshold"),
        ({"base_price": -1}, "base_price"),
        ({"currency": "eur"}, "currency"),
        ({"event_time": "24:00"}, "event_time"),
        ({"event_date": "2030-02-30"}, "event_date"),
        ({"status": "cancelled"}, "status"),
        ({"max_tickets_per_booking": 0}, "max_tickets_per_booking"),
    ],
)
def test_invalid_event_fields_are_refused(
    api: Api, admin: tuple[str, dict[str, Any]], overrides: dict[str, Any], field: str
) -> None:
    response = api.call("POST", "/v1/events", admin[0], json=event_body(**overrides))

    body = assert_problem(response, 422, "validation_error")
    assert any(field in str(e.get("field")) for e in body["errors"]), body


# ---- drafts ---------------------------------------------------------------------------------


def test_draft_is_visible_only_to_its_companys_admins(api: Api, admin: tuple[str, dict[str, Any]]) -> None:
    draft = api.create_event(admin[0], name=unique_name(), status="draft")
    buyer, _ = api.register_buyer()
    other_admin, _ = api.register_admin()
    unregistered = api.token()

    assert_problem(get(api, draft["id"]), 404, "not_found")
    assert_problem(get(api, draft["id"], buyer), 404, "not_found")
    assert_problem(get(api, draft["id"], other_admin), 404, "not_found")
    assert_problem(get(api, draft["id"], unregistered), 404, "not_found")
    own = get(api, draft["id"], admin[0])
    assert own.status_code == 200, own.text
    assert own.json()["status"] == "draft"


def test_draft_looks_exactly_like_a_missing_event_to_outsiders(api: Api, admin: tuple[str, dict[str, Any]]) -> None:
    draft = api.create_event(admin[0], status="draft")

    hidden = get(api, draft["id"]).json()
    missing = get(api, "noSuchEvent00000000").json()

    assert (hidden["status"], hidden["code"], hidden["title"]) == (missing["status"], missing["code"], missing["title"])


def test_unknown_event_is_not_found(api: Api) -> None:
    assert_problem(get(api, "noSuchEvent00000000"), 404, "not_found")


def test_publishing_a_draft_makes_it_public(api: Api, admin: tuple[str, dict[str, Any]]) -> None:
    draft = api.create_event(admin[0], status="draft")

    response = patch(api, draft["id"], admin[0], {"status": "published"}, '"1"')

    assert response.status_code == 200, response.text
    assert get(api, draft["id"]).status_code == 200


# ---- availability and price -----------------------------------------------------------------


def test_available_tickets_and_price_follow_the_taken_slots(
    api: Api, admin: tuple[str, dict[str, Any]], firestore_client: Any
) -> None:
    event = api.create_event(admin[0], capacity=10, surge_threshold=0.5, base_price=1000, surge_price=1500)
    hold_tickets(firestore_client, event["id"], 4)
    hold_tickets(firestore_client, event["id"], 3, until=datetime(2001, 1, 1, tzinfo=UTC))  # expired holds

    below = get(api, event["id"]).json()
    assert below["available_tickets"] == 6
    assert below["current_price"] == 1000

    hold_tickets(firestore_client, event["id"], 1)
    at_threshold = get(api, event["id"]).json()
    assert at_threshold["available_tickets"] == 5
    assert at_threshold["current_price"] == 1500


# ---- update ---------------------------------------------------------------------------------


def test_patch_with_if_match_updates_and_bumps_the_version(api: Api, admin: tuple[str, dict[str, Any]]) -> None:
    event = api.create_event(admin[0], name=unique_name())

    response = patch(api, event["id"], admin[0], {"name": "New Name", "capacity": 150}, '"1"')

    assert response.status_code == 200, response.text
    assert response.headers["ETag"] == '"2"'
    updated = response.json()
    assert updated["version"] == 2
    assert updated["name"] == "New Name"
    assert updated["capacity"] == 150
    assert updated["available_tickets"] == 150
    assert updated["created_at"] == event["created_at"]
    unchanged = {k for k in EVENT_FIELDS if k not in {"name", "capacity", "available_tickets", "version", "updated_at"}}
    assert {k: updated[k] for k in unchanged} == {k: event[k] for k in unchanged}
    stored = get(api, event["id"])
    assert stored.headers["ETag"] == '"2"'
    assert stored.json() == updated


def test_successive_patches_need_the_latest_version(api: Api, admin: tuple[str, dict[str, Any]]) -> None:
    event = api.create_event(admin[0])

    for version in range(1, 4):
        response = patch(api, event["id"], admin[0], {"capacity": 100 + version}, f'"{version}"')
        assert response.status_code == 200, response.text
        assert response.headers["ETag"] == f'"{version + 1}"'

    assert get(api, event["id"]).json()["version"] == 4


def test_patch_without_if_match_is_precondition_required(api: Api, admin: tuple[str, dict[str, Any]]) -> None:
    event = api.create_event(admin[0])

    response = patch(api, event["id"], admin[0], {"name": "New Name"}, None)

    assert_problem(response, 428, "precondition_required")
    assert get(api, event["id"]).json()["name"] == event["name"]


def test_patch_with_a_stale_version_is_version_conflict(api: Api, admin: tuple[str, dict[str, Any]]) -> None:
    event = api.create_event(admin[0])
    assert patch(api, event["id"], admin[0], {"name": "First"}, '"1"').status_code == 200

    response = patch(api, event["id"], admin[0], {"name": "Lost update"}, '"1"')

    assert_problem(response, 412, "version_conflict")
    stored = get(api, event["id"]).json()
    assert (stored["name"], stored["version"]) == ("First", 2)


def test_patch_with_a_future_version_is_version_conflict(api: Api, admin: tuple[str, dict[str, Any]]) -> None:
    event = api.create_event(admin[0])

    assert_problem(patch(api, event["id"], admin[0], {"name": "X"}, '"7"'), 412, "version_conflict")


def test_version_in_the_body_is_accepted_instead_of_if_match(api: Api, admin: tuple[str, dict[str, Any]]) -> None:
    event = api.create_event(admin[0])

    response = patch(api, event["id"], admin[0], {"name": "Body Version", "version": 1}, None)

    assert response.status_code == 200, response.text
    assert response.json()["version"] == 2
    assert response.headers["ETag"] == '"2"'
    stale = patch(api, event["id"], admin[0], {"name": "Stale", "version": 1}, None)
    assert_problem(stale, 412, "version_conflict")


def test_weak_if_match_is_accepted(api: Api, admin: tuple[str, dict[str, Any]]) -> None:
    event = api.create_event(admin[0])

    response = patch(api, event["id"], admin[0], {"name": "Weak"}, 'W/"1"')

    assert response.status_code == 200, response.text


def test_garbled_if_match_is_refused(api: Api, admin: tuple[str, dict[str, Any]]) -> None:
    event = api.create_event(admin[0])

    response = patch(api, event["id"], admin[0], {"name": "X"}, '"abc"')

    assert response.status_code in (412, 422), response.text
    assert get(api, event["id"]).json()["version"] == 1


def test_concurrent_patches_with_the_same_version_exactly_one_wins(api: Api, admin: tuple[str, dict[str, Any]]) -> None:
    event = api.create_event(admin[0])
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def send(name: str) -> None:
        barrier.wait()
        response = Api(api.base_url).call(
            "PATCH", f"/v1/events/{event['id']}", admin[0], json={"name": name}, headers={"If-Match": '"1"'}
        )
        statuses.append(response.status_code)

    threads = [threading.Thread(target=send, args=(f"Writer {i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    assert sorted(statuses) == [200, 412]
    assert get(api, event["id"]).json()["version"] == 2


def test_another_companys_admin_cannot_patch(api: Api, admin: tuple[str, dict[str, Any]]) -> None:
    event = api.create_event(admin[0])
    other, _ = api.register_admin()

    response = patch(api, event["id"], other, {"name": "Hijacked"}, '"1"')

    assert_problem(response, 403, "forbidden")
    assert get(api, event["id"]).json()["name"] == event["name"]


def test_buyer_cannot_patch(api: Api, admin: tuple[str, dict[str, Any]]) -> None:
    event = api.create_event(admin[0])
    buyer, _ = api.register_buyer()

    assert_problem(patch(api, event["id"], buyer, {"name": "Hijacked"}, '"1"'), 403, "forbidden")
    assert get(api, event["id"]).json()["version"] == 1


def test_patch_of_another_companys_draft_is_not_found(api: Api, admin: tuple[str, dict[str, Any]]) -> None:
    draft = api.create_event(admin[0], status="draft")
    other, _ = api.register_admin()

    assert_problem(patch(api, draft["id"], other, {"name": "X"}, '"1"'), 404, "not_found")


def test_patch_of_an_unknown_event_is_not_found(api: Api, admin: tuple[str, dict[str, Any]]) -> None:
    assert_problem(patch(api, "noSuchEvent00000000", admin[0], {"name": "X"}, '"1"'), 404, "not_found")


def test_patch_of_the_schedule_recomputes_starts_at(api: Api, admin: tuple[str, dict[str, Any]]) -> None:
    event = api.create_event(admin[0])

    response = patch(
        api,
        event["id"],
        admin[0],
        {"event_date": "2031-01-10", "event_time": "08:15", "timezone": "America/New_York"},
        '"1"',
    )

    assert response.status_code == 200, response.text
    assert response.json()["starts_at"] == "2031-01-10T13:15:00Z"
    assert get(api, event["id"]).json()["starts_at"] == "2031-01-10T13:15:00Z"


def test_patch_of_the_timezone_alone_moves_starts_at(api: Api, admin: tuple[str, dict[str, Any]]) -> None:
    event = api.create_event(admin[0])  # 2030-05-01 20:00 Europe/Berlin

    response = patch(api, event["id"], admin[0], {"timezone": "Europe/London"}, '"1"')

    assert response.status_code == 200, response.text
    assert response.json()["starts_at"] == "2030-05-01T19:00:00Z"


def test_patch_into_the_past_is_refused(api: Api, admin: tuple[str, dict[str, Any]]) -> None:
    event = api.create_event(admin[0])
    response = patch(api, event["id"], admin[0], {"event_date": "2001-01-01"}, '"1"')

    assert_problem(response, 422, "validation_error")
    assert get(api, event["id"]).json()["version"] == 1


def test_patch_surge_price_below_base_price_is_refused(api: Api, admin: tuple[str, dict[str, Any]]) -> None:
    event = api.create_event(admin[0], base_price=2500, surge_price=4000)

    response = patch(api, event["id"], admin[0], {"surge_price": 2000}, '"1"')

    assert_problem(response, 422, "validation_error")


@pytest.mark.parametrize(
    "body",
    [{}, {"version": 1}, {"name": None}, {"capacity": None}, {"company_id": "other"}, {"id": "x"}, {"sold": 3}],
)
def test_patch_refuses_empty_null_and_unknown_fields(
    api: Api, admin: tuple[str, dict[str, Any]], body: dict[str, Any]
) -> None:
    event = api.create_event(admin[0])

    assert_problem(patch(api, event["id"], admin[0], body, '"1"'), 422, "validation_error")
    assert get(api, event["id"]).json()["version"] == 1


def test_patch_description_to_null_clears_it(api: Api, admin: tuple[str, dict[str, Any]]) -> None:
    event = api.create_event(admin[0])

    response = patch(api, event["id"], admin[0], {"description": None}, '"1"')

    assert response.status_code == 200, response.text
    assert response.json()["description"] is None


def test_patch_to_draft_hides_the_event_from_the_public(api: Api, admin: tuple[str, dict[str, Any]]) -> None:
    event = api.create_event(admin[0])

    assert patch(api, event["id"], admin[0], {"status": "draft"}, '"1"').status_code == 200

    assert_problem(get(api, event["id"]), 404, "not_found")
    assert get(api, event["id"], admin[0]).status_code == 200


def test_capacity_can_be_lowered_when_nothing_is_sold(api: Api, admin: tuple[str, dict[str, Any]]) -> None:
    event = api.create_event(admin[0], capacity=100)

    response = patch(api, event["id"], admin[0], {"capacity": 1}, '"1"')

    assert response.status_code == 200, response.text
    assert (response.json()["capacity"], response.json()["available_tickets"]) == (1, 1)


def test_capacity_can_be_lowered_to_exactly_the_tickets_taken(
    api: Api, admin: tuple[str, dict[str, Any]], firestore_client: Any
) -> None:
    event = api.create_event(admin[0], capacity=100)
    hold_tickets(firestore_client, event["id"], 3)

    response = patch(api, event["id"], admin[0], {"capacity": 3}, '"1"')

    assert response.status_code == 200, response.text
    assert (response.json()["capacity"], response.json()["available_tickets"]) == (3, 0)


def test_capacity_below_the_tickets_taken_is_refused(
    api: Api, admin: tuple[str, dict[str, Any]], firestore_client: Any
) -> None:
    event = api.create_event(admin[0], capacity=100)
    hold_tickets(firestore_client, event["id"], 3)

    response = patch(api, event["id"], admin[0], {"capacity": 2}, '"1"')

    assert_problem(response, 409, "capacity_below_sold")
    stored = get(api, event["id"]).json()
    assert (stored["capacity"], stored["available_tickets"], stored["version"]) == (100, 97, 1)


def test_expired_holds_do_not_block_lowering_capacity(
    api: Api, admin: tuple[str, dict[str, Any]], firestore_client: Any
) -> None:
    event = api.create_event(admin[0], capacity=100)
    hold_tickets(firestore_client, event["id"], 5, until=datetime(2001, 1, 1, tzinfo=UTC))

    response = patch(api, event["id"], admin[0], {"capacity": 1}, '"1"')

    assert response.status_code == 200, response.text
