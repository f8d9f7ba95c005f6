"""Health, the OpenAPI document, and CORS as the test stack configures it (no allowed origins)."""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests

from tests.conftest import Api

# Every route that exists now, as API.md names it.
ROUTES = {
    ("get", "/healthz"),
    ("get", "/v1/openapi.json"),
    ("post", "/v1/users"),
    ("get", "/v1/users/me"),
    ("patch", "/v1/users/me"),
    ("get", "/v1/companies/{company_id}"),
    ("post", "/v1/events"),
    ("get", "/v1/events"),
    ("get", "/v1/events/{event_id}"),
    ("patch", "/v1/events/{event_id}"),
}
ORIGIN = "https://not-allowed.example"


@pytest.fixture(scope="module")
def openapi(api: Api) -> dict[str, Any]:
    response = api.call("GET", "/v1/openapi.json")
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    return dict(response.json())


# ---- health ---------------------------------------------------------------------------------


def test_healthz_is_ok_without_a_token(api: Api) -> None:
    response = api.call("GET", "/healthz")

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json() == {"status": "ok"}


def test_healthz_ignores_a_bad_token(api: Api) -> None:
    response = api.call("GET", "/healthz", "not-a-jwt")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_healthz_answers_head(api: Api) -> None:
    response = api.call("HEAD", "/healthz")

    assert response.status_code == 200
    assert response.content == b""


# ---- OpenAPI --------------------------------------------------------------------------------


def test_openapi_is_version_3_1_with_info(openapi: dict[str, Any]) -> None:
    assert openapi["openapi"].startswith("3.1")
    assert openapi["info"]["title"]
    assert openapi["info"]["version"]


def test_openapi_lists_every_route(openapi: dict[str, Any]) -> None:
    documented = {
        (method, path) for path, item in openapi["paths"].items() for method in item if method != "parameters"
    }
    assert documented >= ROUTES


def test_openapi_documents_only_routes_that_answer(api: Api, openapi: dict[str, Any]) -> None:
    """Each documented (method, path) reaches a handler: never the gateway's or router's 404/405."""
    for path, item in openapi["paths"].items():
        concrete = re.sub(r"\{\w+\}", "someId", path)
        for method in item:
            if method == "parameters":
                continue
            response = api.call(method.upper(), concrete)
            assert response.status_code != 405, (method, path)
            if response.status_code == 404:
                assert "no route" not in response.json()["detail"], (method, path)
                assert "no function" not in response.json()["detail"], (method, path)


def test_openapi_references_resolve(openapi: dict[str, Any]) -> None:
    schemas = openapi["components"]["schemas"]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                assert ref.startswith("#/components/schemas/"), ref
                assert ref.removeprefix("#/components/schemas/") in schemas, ref
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(openapi)


def test_openapi_describes_the_contracts_bodies(openapi: dict[str, Any]) -> None:
    schemas = openapi["components"]["schemas"]
    user_out = next(v for k, v in schemas.items() if k.startswith("UserOut"))
    assert {
        "id",
        "name",
        "email",
        "username",
        "country_code",
        "phone_number",
        "role",
        "company_id",
        "created_at",
    } <= set(user_out["properties"])
    event_out = next(v for k, v in schemas.items() if k.startswith("EventOut"))
    assert {"starts_at", "available_tickets", "current_price", "version"} <= set(event_out["properties"])
    problem = schemas["Problem"]
    assert {"type", "title", "status", "detail", "code"} <= set(problem["properties"])


def test_openapi_is_public(api: Api) -> None:
    assert api.call("GET", "/v1/openapi.json", "not-a-jwt").status_code == 200


# ---- CORS -----------------------------------------------------------------------------------


PREFLIGHT = {
    "Origin": ORIGIN,
    "Access-Control-Request-Method": "PATCH",
    "Access-Control-Request-Headers": "authorization, content-type, if-match, idempotency-key",
}


@pytest.mark.parametrize(
    "path", ["/v1/users", "/v1/users/me", "/v1/companies/abc", "/v1/events", "/v1/events/abc", "/healthz"]
)
def test_preflight_is_answered_204_without_auth(api: Api, path: str) -> None:
    response = api.call("OPTIONS", path, headers=PREFLIGHT)

    assert response.status_code == 204, response.text
    assert response.content == b""


def test_preflight_with_a_bad_token_is_still_204(api: Api) -> None:
    response = api.call("OPTIONS", "/v1/users/me", "not-a-jwt", headers=PREFLIGHT)

    assert response.status_code == 204


def test_preflight_from_a_not_allowed_origin_gets_no_cors_headers(api: Api) -> None:
    response = api.call("OPTIONS", "/v1/events", headers=PREFLIGHT)

    assert response.status_code == 204
    cors = {k for k in response.headers if k.lower().startswith("access-control-")}
    assert cors == set()


@pytest.mark.parametrize("origin", [ORIGIN, "http://localhost:3000", "http://localhost:5173", "null"])
def test_simple_request_from_any_origin_gets_no_allow_origin(api: Api, origin: str) -> None:
    """The test stack sets no CORS_ALLOWED_ORIGINS: no origin is allowed, not even the dev defaults."""
    response = api.call("GET", "/v1/events", headers={"Origin": origin}, params={"limit": 1})

    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Access-Control-Allow-Credentials" not in response.headers


def test_error_responses_to_a_not_allowed_origin_get_no_allow_origin(api: Api) -> None:
    response = api.call("GET", "/v1/users/me", headers={"Origin": ORIGIN})

    assert response.status_code == 401
    assert "Access-Control-Allow-Origin" not in response.headers


def test_requests_without_origin_get_no_cors_headers(api: Api) -> None:
    response: requests.Response = api.call("GET", "/healthz")

    assert not any(k.lower().startswith("access-control-") for k in response.headers)
