"""Who may call what: every route that exists, against every kind of bad or insufficient token.

Bad tokens are minted here with the stack's own issuer key (the `issuer` fixture) or with a fresh
key that the stack has never published, so each one differs from a good token in one way only.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jwt
import pytest
import requests

from dev.stack import Stack
from shared.core.devissuer import DevIssuer, generate_private_key_pem
from tests.conftest import Api, event_body, user_body


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.method} {self.template}"


@dataclass(frozen=True)
class World:
    """One company with an admin and a published event, plus a buyer and a rival company's admin."""

    admin: str
    company_id: str
    event_id: str
    buyer: str
    rival: str

    def path(self, template: str) -> str:
        return template.format(company=self.company_id, event=self.event_id)


ROUTES = [
    Route("POST", "/v1/users", body=user_body("user")),
    Route("GET", "/v1/users/me"),
    Route("PATCH", "/v1/users/me", body={"name": "Changed Name"}),
    Route("GET", "/v1/companies/{company}"),
    Route("POST", "/v1/events", body=event_body()),
    Route("PATCH", "/v1/events/{event}", body={"name": "Changed"}, headers={"If-Match": '"1"'}),
    Route("GET", "/v1/events/{event}"),
    Route("GET", "/v1/events/{event}/audit"),
]
PUBLIC = {"GET /v1/events/{event}"}  # a missing token is anonymous there; a bad one is still refused
AUTHENTICATED = [r for r in ROUTES if r.name not in PUBLIC]
NEEDS_REGISTRATION = [r for r in ROUTES if r.name not in PUBLIC | {"POST /v1/users"}]
ADMIN_ONLY = [
    r
    for r in ROUTES
    if r.name
    in {"GET /v1/companies/{company}", "POST /v1/events", "PATCH /v1/events/{event}", "GET /v1/events/{event}/audit"}
]
OWNING_COMPANY_ONLY = [
    r
    for r in ROUTES
    if r.name in {"GET /v1/companies/{company}", "PATCH /v1/events/{event}", "GET /v1/events/{event}/audit"}
]


def ids(routes: list[Route]) -> list[str]:
    return [r.name for r in routes]


@pytest.fixture(scope="module")
def world(api: Api) -> World:
    admin, user = api.register_admin()
    event = api.create_event(admin, name=f"Matrix {secrets.token_hex(4)}")
    buyer, _ = api.register_buyer()
    rival, _ = api.register_admin()
    return World(admin, user["company_id"], event["id"], buyer, rival)


def send(api: Api, world: World, route: Route, authorization: str | None) -> requests.Response:
    headers = dict(route.headers)
    if authorization is not None:
        headers["Authorization"] = authorization
    kwargs: dict[str, Any] = {"headers": headers}
    if route.body is not None:
        kwargs["json"] = route.body
    return api.call(route.method, world.path(route.template), **kwargs)


def assert_problem(response: requests.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json")
    body = response.json()
    assert {"type", "title", "status", "detail", "code"} <= set(body)
    assert isinstance(body["type"], str)
    assert isinstance(body["title"], str)
    assert isinstance(body["detail"], str)
    assert (body["status"], body["code"]) == (status, code)
    assert "Traceback" not in response.text


# ---- bad tokens -----------------------------------------------------------------------------


def claims(issuer: DevIssuer, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    payload: dict[str, Any] = {
        "iss": issuer.issuer,
        "aud": issuer.audience,
        "sub": f"sub-{secrets.token_hex(6)}",
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
    }
    payload.update(overrides)
    return {k: v for k, v in payload.items() if v is not None}


def badly_signed(issuer: DevIssuer, stack: Stack) -> str:
    """Signed by a key the stack never published, under the stack's own key id."""
    return jwt.encode(claims(issuer), generate_private_key_pem(), algorithm="RS256", headers={"kid": issuer.kid})


def unknown_kid(issuer: DevIssuer, stack: Stack) -> str:
    other = DevIssuer(generate_private_key_pem(), issuer.issuer, issuer.audience)
    return other.mint(f"sub-{secrets.token_hex(6)}")


def unsigned(issuer: DevIssuer, stack: Stack) -> str:
    return jwt.encode(claims(issuer), None, algorithm="none", headers={"kid": issuer.kid})


def unsigned_without_kid(issuer: DevIssuer, stack: Stack) -> str:
    return jwt.encode(claims(issuer), None, algorithm="none")


def hmac_signed(issuer: DevIssuer, stack: Stack) -> str:
    return jwt.encode(
        claims(issuer), "a-shared-secret-of-enough-length!", algorithm="HS256", headers={"kid": issuer.kid}
    )


def stack_signed(issuer: DevIssuer, stack: Stack, **overrides: Any) -> str:
    """Signed with the stack's real key: only the claims are wrong."""
    return jwt.encode(
        claims(issuer, **overrides), stack.key_file.read_bytes(), algorithm="RS256", headers={"kid": issuer.kid}
    )


def tampered(issuer: DevIssuer, stack: Stack) -> str:
    """A good token whose payload was swapped for another subject's after signing."""
    header, _, signature = issuer.mint("victim").split(".")
    payload = jwt.utils.base64url_encode(json.dumps(claims(issuer, sub="attacker")).encode()).decode()
    return f"{header}.{payload}.{signature}"


BAD_TOKENS: dict[str, Callable[[DevIssuer, Stack], str]] = {
    "badly_signed": badly_signed,
    "unknown_kid": unknown_kid,
    "alg_none": unsigned,
    "alg_none_without_kid": unsigned_without_kid,
    "hs256": hmac_signed,
    "tampered_payload": tampered,
    "expired": lambda i, s: i.mint(f"sub-{secrets.token_hex(6)}", ttl_seconds=-3600),
    "expired_beyond_leeway": lambda i, s: i.mint(f"sub-{secrets.token_hex(6)}", ttl_seconds=-90),
    "wrong_audience": lambda i, s: i.mint(f"sub-{secrets.token_hex(6)}", aud="some-other-project"),
    "wrong_issuer": lambda i, s: i.mint(f"sub-{secrets.token_hex(6)}", iss="https://evil.example/dev"),
    "not_yet_valid": lambda i, s: stack_signed(i, s, nbf=int(time.time()) + 3600),
    "no_exp": lambda i, s: stack_signed(i, s, exp=None),
    "no_sub": lambda i, s: stack_signed(i, s, sub=None),
    "empty_sub": lambda i, s: stack_signed(i, s, sub=""),
    "no_aud": lambda i, s: stack_signed(i, s, aud=None),
    "garbage": lambda i, s: "not-a-jwt",
    "three_garbage_parts": lambda i, s: "a.b.c",
}
BAD_HEADERS = {
    "empty": "",
    "bearer_without_token": "Bearer ",
    "basic_scheme": "Basic dXNlcjpwYXNz",
    "token_without_scheme": "eyJhbGciOiJSUzI1NiJ9.e30.c2ln",
}


@pytest.mark.parametrize("route", AUTHENTICATED, ids=ids(AUTHENTICATED))
def test_no_token_is_unauthenticated(api: Api, world: World, route: Route) -> None:
    assert_problem(send(api, world, route, None), 401, "unauthenticated")


@pytest.mark.parametrize("kind", sorted(BAD_TOKENS))
@pytest.mark.parametrize("route", ROUTES, ids=ids(ROUTES))
def test_bad_token_is_unauthenticated(
    api: Api, world: World, issuer: DevIssuer, stack: Stack, route: Route, kind: str
) -> None:
    token = BAD_TOKENS[kind](issuer, stack)

    assert_problem(send(api, world, route, f"Bearer {token}"), 401, "unauthenticated")


@pytest.mark.parametrize("kind", sorted(BAD_HEADERS))
@pytest.mark.parametrize("route", AUTHENTICATED, ids=ids(AUTHENTICATED))
def test_malformed_authorization_header_is_unauthenticated(api: Api, world: World, route: Route, kind: str) -> None:
    assert_problem(send(api, world, route, BAD_HEADERS[kind]), 401, "unauthenticated")


def test_bad_tokens_change_nothing(api: Api, world: World, issuer: DevIssuer, stack: Stack) -> None:
    """A refused PATCH leaves the event as it was; a refused registration registers nobody."""
    token = badly_signed(issuer, stack)
    patch = next(r for r in ROUTES if r.name == "PATCH /v1/events/{event}")
    before = api.call("GET", f"/v1/events/{world.event_id}").json()
    patch = Route(patch.method, patch.template, patch.body, {"If-Match": f'"{before["version"]}"'})
    assert send(api, world, patch, f"Bearer {token}").status_code == 401
    assert api.call("GET", f"/v1/events/{world.event_id}").json() == before

    sub = f"sub-{secrets.token_hex(6)}"
    forged = jwt.encode(claims(issuer, sub=sub), None, algorithm="none", headers={"kid": issuer.kid})
    assert api.call("POST", "/v1/users", forged, json=user_body("user")).status_code == 401
    assert_problem(api.call("GET", "/v1/users/me", issuer.mint(sub)), 403, "not_registered")


def test_unauthenticated_responses_name_the_bearer_scheme(api: Api) -> None:
    """RFC 9110 15.5.2: a 401 response carries WWW-Authenticate (RFC 6750: `Bearer`)."""
    response = api.call("GET", "/v1/users/me")

    assert response.status_code == 401
    assert response.headers.get("WWW-Authenticate", "").lower().startswith("bearer")


# ---- good tokens, insufficient rights -------------------------------------------------------


@pytest.mark.parametrize("route", NEEDS_REGISTRATION, ids=ids(NEEDS_REGISTRATION))
def test_unregistered_subject_is_not_registered(api: Api, world: World, issuer: DevIssuer, route: Route) -> None:
    token = issuer.mint(f"sub-{secrets.token_hex(6)}")

    assert_problem(send(api, world, route, f"Bearer {token}"), 403, "not_registered")


def test_unregistered_subject_may_register_and_read_public_events(api: Api, world: World, issuer: DevIssuer) -> None:
    token = issuer.mint(f"sub-{secrets.token_hex(6)}")

    assert api.call("GET", f"/v1/events/{world.event_id}", token).status_code == 200
    assert api.call("POST", "/v1/users", token, json=user_body("user")).status_code == 201
    assert api.call("GET", "/v1/users/me", token).status_code == 200


def test_token_within_leeway_of_expiry_is_still_accepted(api: Api, issuer: DevIssuer) -> None:
    sub = f"sub-{secrets.token_hex(6)}"
    assert api.call("POST", "/v1/users", issuer.mint(sub), json=user_body("user")).status_code == 201

    response = api.call("GET", "/v1/users/me", issuer.mint(sub, ttl_seconds=-5))

    assert response.status_code == 200, response.text


@pytest.mark.parametrize("route", ADMIN_ONLY, ids=ids(ADMIN_ONLY))
def test_buyer_on_admin_routes_is_forbidden(api: Api, world: World, route: Route) -> None:
    assert_problem(send(api, world, route, f"Bearer {world.buyer}"), 403, "forbidden")


@pytest.mark.parametrize("route", OWNING_COMPANY_ONLY, ids=ids(OWNING_COMPANY_ONLY))
def test_another_companys_admin_is_forbidden(api: Api, world: World, route: Route) -> None:
    assert_problem(send(api, world, route, f"Bearer {world.rival}"), 403, "forbidden")


ALLOWED_FOR_OWNER = [r for r in ROUTES if r.name != "POST /v1/users"]


@pytest.mark.parametrize("route", ALLOWED_FOR_OWNER, ids=ids(ALLOWED_FOR_OWNER))
def test_the_owning_admin_is_allowed(api: Api, world: World, route: Route) -> None:
    """The same requests succeed for the right caller, so the refusals above are about rights."""
    if route.name == "PATCH /v1/events/{event}":
        current = api.call("GET", f"/v1/events/{world.event_id}").json()["version"]
        route = Route(route.method, route.template, route.body, {"If-Match": f'"{current}"'})

    response = send(api, world, route, f"Bearer {world.admin}")

    assert response.status_code in (200, 201), response.text
