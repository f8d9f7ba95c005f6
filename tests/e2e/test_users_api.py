"""Registration, the caller's profile and companies over HTTP, as API.md describes them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
import requests

from tests.conftest import Api, user_body

USER_FIELDS = {"id", "name", "email", "username", "country_code", "phone_number", "role", "company_id", "created_at"}
COMPANY_FIELDS = {"name", "address", "email", "country_code", "phone_number", "registration_number"}


def assert_problem(response: requests.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json")
    body = response.json()
    assert {"type", "title", "status", "detail", "code"} <= set(body)
    assert body["status"] == status
    assert body["code"] == code
    return dict(body)


def error_fields(body: dict[str, Any]) -> set[str]:
    return {str(e.get("field", "")) for e in body.get("errors", [])}


def is_rfc3339_utc(value: str) -> bool:
    return value.endswith("Z") and datetime.fromisoformat(value).utcoffset() is not None


# ---- registration ---------------------------------------------------------------------------


def test_register_buyer_returns_the_user(api: Api) -> None:
    token = api.token()
    body = user_body("user")

    response = api.call("POST", "/v1/users", token, json=body)

    assert response.status_code == 201, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    user = response.json()
    assert set(user) == USER_FIELDS
    assert {k: user[k] for k in ("name", "email", "username", "country_code", "phone_number", "role")} == {
        k: body[k] for k in ("name", "email", "username", "country_code", "phone_number", "role")
    }
    assert user["company_id"] is None
    assert isinstance(user["id"], str)
    assert user["id"]
    assert is_rfc3339_utc(user["created_at"])


def test_register_admin_creates_the_company(api: Api) -> None:
    token = api.token()
    body = user_body("admin")

    response = api.call("POST", "/v1/users", token, json=body)

    assert response.status_code == 201, response.text
    user = response.json()
    assert set(user) == USER_FIELDS
    assert user["role"] == "admin"
    assert isinstance(user["company_id"], str)
    assert user["company_id"]
    company = api.call("GET", f"/v1/companies/{user['company_id']}", token)
    assert company.status_code == 200, company.text
    stored = company.json()
    assert stored["id"] == user["company_id"]
    assert {k: stored[k] for k in COMPANY_FIELDS} == body["company"]


def test_ids_are_opaque_and_distinct(api: Api) -> None:
    _, first = api.register_buyer()
    _, second = api.register_buyer()
    assert first["id"] != second["id"]
    assert not first["id"].isdigit()


def test_registered_user_reads_itself(api: Api) -> None:
    token, user = api.register_buyer()

    me = api.call("GET", "/v1/users/me", token)

    assert me.status_code == 200, me.text
    assert me.json() == user


def test_second_registration_is_already_registered(api: Api) -> None:
    token, user = api.register_buyer()

    again = api.call("POST", "/v1/users", token, json=user_body("user"))

    assert_problem(again, 409, "already_registered")
    assert api.call("GET", "/v1/users/me", token).json() == user  # unchanged


def test_second_registration_as_admin_is_already_registered_and_creates_no_company(api: Api) -> None:
    token, _ = api.register_buyer()

    again = api.call("POST", "/v1/users", token, json=user_body("admin"))

    assert_problem(again, 409, "already_registered")
    assert api.call("GET", "/v1/users/me", token).json()["company_id"] is None


def test_same_subject_new_token_is_still_already_registered(api: Api) -> None:
    sub = f"sub-same-{user_body('user')['username']}"
    first = api.call("POST", "/v1/users", api.token(sub), json=user_body("user"))
    assert first.status_code == 201, first.text

    second = api.call("POST", "/v1/users", api.token(sub), json=user_body("user"))

    assert_problem(second, 409, "already_registered")


def test_admin_without_company_is_refused_and_nothing_is_stored(api: Api) -> None:
    token = api.token()
    body = user_body("user") | {"role": "admin"}

    response = api.call("POST", "/v1/users", token, json=body)

    assert_problem(response, 422, "validation_error")
    assert_problem(api.call("GET", "/v1/users/me", token), 403, "not_registered")


def test_user_with_company_is_refused_and_nothing_is_stored(api: Api) -> None:
    token = api.token()
    body = user_body("admin") | {"role": "user"}

    response = api.call("POST", "/v1/users", token, json=body)

    assert_problem(response, 422, "validation_error")
    assert_problem(api.call("GET", "/v1/users/me", token), 403, "not_registered")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("role", "superuser"),
        ("email", "not-an-email"),
        ("country_code", "de"),
        ("phone_number", "12345"),
        ("username", "a b"),
        ("username", "ab"),
        ("name", ""),
    ],
)
def test_invalid_registration_fields_are_refused(api: Api, field: str, value: str) -> None:
    token = api.token()

    response = api.call("POST", "/v1/users", token, json=user_body("user") | {field: value})

    body = assert_problem(response, 422, "validation_error")
    assert any(field in f for f in error_fields(body)), body


def test_missing_registration_field_is_refused(api: Api) -> None:
    body = user_body("user")
    del body["email"]

    response = api.call("POST", "/v1/users", api.token(), json=body)

    assert "email" in error_fields(assert_problem(response, 422, "validation_error"))


def test_unknown_registration_field_is_refused(api: Api) -> None:
    token = api.token()

    response = api.call("POST", "/v1/users", token, json=user_body("user") | {"is_superuser": True})

    assert_problem(response, 422, "validation_error")
    assert_problem(api.call("GET", "/v1/users/me", token), 403, "not_registered")


def test_unknown_company_field_is_refused(api: Api) -> None:
    body = user_body("admin")
    body["company"]["vat"] = "DE123"

    response = api.call("POST", "/v1/users", api.token(), json=body)

    assert_problem(response, 422, "validation_error")


def test_taken_username_is_refused_case_insensitively(api: Api) -> None:
    _, holder = api.register_buyer()
    token = api.token()

    response = api.call("POST", "/v1/users", token, json=user_body("user") | {"username": holder["username"].upper()})

    assert "username" in error_fields(assert_problem(response, 422, "validation_error"))
    assert_problem(api.call("GET", "/v1/users/me", token), 403, "not_registered")


# ---- GET / PATCH /v1/users/me ---------------------------------------------------------------


def test_patch_me_changes_the_allowed_fields(api: Api) -> None:
    token, user = api.register_buyer()
    changes = {
        "name": "Renamed Person",
        "phone_number": "+33612345678",
        "country_code": "FR",
        "username": f"renamed_{user['username']}",
    }

    response = api.call("PATCH", "/v1/users/me", token, json=changes)

    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated == user | changes
    assert api.call("GET", "/v1/users/me", token).json() == updated


@pytest.mark.parametrize("field", ["name", "phone_number", "country_code", "username"])
def test_patch_me_one_field_leaves_the_others(api: Api, field: str) -> None:
    token, user = api.register_buyer()
    value = {
        "name": "Only Name",
        "phone_number": "+4915199999999",
        "country_code": "AT",
        "username": f"only_{user['username']}",
    }[field]

    response = api.call("PATCH", "/v1/users/me", token, json={field: value})

    assert response.status_code == 200, response.text
    assert response.json() == user | {field: value}
    assert api.call("GET", "/v1/users/me", token).json() == user | {field: value}


@pytest.mark.parametrize(
    "patch",
    [
        {"email": "new@example.com"},
        {"role": "admin"},
        {"company_id": "someone-elses"},
        {"id": "another-id"},
        {"created_at": "2020-01-01T00:00:00Z"},
        {"nickname": "x"},
        {"name": "Fine", "favourite_colour": "blue"},
    ],
)
def test_patch_me_refuses_fields_that_cannot_change(api: Api, patch: dict[str, Any]) -> None:
    token, user = api.register_buyer()

    response = api.call("PATCH", "/v1/users/me", token, json=patch)

    assert_problem(response, 422, "validation_error")
    assert api.call("GET", "/v1/users/me", token).json() == user


@pytest.mark.parametrize("patch", [{}, {"name": None}, {"username": None}, {"country_code": "xx"}, {"name": 5}])
def test_patch_me_refuses_empty_null_or_invalid_values(api: Api, patch: dict[str, Any]) -> None:
    token, user = api.register_buyer()

    response = api.call("PATCH", "/v1/users/me", token, json=patch)

    assert_problem(response, 422, "validation_error")
    assert api.call("GET", "/v1/users/me", token).json() == user


def test_patch_me_to_a_taken_username_is_refused(api: Api) -> None:
    _, holder = api.register_buyer()
    token, user = api.register_buyer()

    response = api.call("PATCH", "/v1/users/me", token, json={"username": holder["username"].upper(), "name": "X"})

    assert "username" in error_fields(assert_problem(response, 422, "validation_error"))
    assert api.call("GET", "/v1/users/me", token).json() == user


def test_username_freed_by_patch_can_be_taken_by_a_new_user(api: Api) -> None:
    token, user = api.register_buyer()
    moved = api.call("PATCH", "/v1/users/me", token, json={"username": f"moved_{user['username']}"})
    assert moved.status_code == 200, moved.text

    _, newcomer = api.register_buyer(username=user["username"])

    assert newcomer["username"] == user["username"]


def test_patch_me_keeping_own_username_in_other_case_is_allowed(api: Api) -> None:
    token, user = api.register_buyer()
    upper = user["username"].upper()

    response = api.call("PATCH", "/v1/users/me", token, json={"username": upper})

    assert response.status_code == 200, response.text
    assert response.json()["username"] == upper


def test_admin_reads_and_patches_own_profile_keeping_role_and_company(api: Api) -> None:
    token, admin = api.register_admin()

    response = api.call("PATCH", "/v1/users/me", token, json={"name": "Manager"})

    assert response.status_code == 200, response.text
    assert response.json() == admin | {"name": "Manager"}
    assert response.json()["company_id"] == admin["company_id"]


# ---- companies ------------------------------------------------------------------------------


def test_company_is_readable_by_its_admin(api: Api) -> None:
    body = user_body("admin")
    token, admin = api.register_admin(**body)

    response = api.call("GET", f"/v1/companies/{admin['company_id']}", token)

    assert response.status_code == 200, response.text
    company = response.json()
    assert company["id"] == admin["company_id"]
    assert {k: company[k] for k in COMPANY_FIELDS} == body["company"]


def test_company_is_forbidden_to_another_companys_admin(api: Api) -> None:
    _, owner = api.register_admin()
    other_token, _ = api.register_admin()

    response = api.call("GET", f"/v1/companies/{owner['company_id']}", other_token)

    assert_problem(response, 403, "forbidden")


def test_company_is_forbidden_to_a_buyer(api: Api) -> None:
    _, owner = api.register_admin()
    buyer_token, _ = api.register_buyer()

    response = api.call("GET", f"/v1/companies/{owner['company_id']}", buyer_token)

    assert_problem(response, 403, "forbidden")


def test_unknown_company_does_not_leak_its_existence(api: Api) -> None:
    token, _ = api.register_admin()

    response = api.call("GET", "/v1/companies/doesNotExist123", token)

    assert response.status_code in (403, 404), response.text
    assert_problem(response, response.status_code, "forbidden" if response.status_code == 403 else "not_found")
