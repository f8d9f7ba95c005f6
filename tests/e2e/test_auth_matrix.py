"""Who may call what: every route the public functions serve, against every kind of caller.

The routes are not listed by hand. They are read from the routers (`router.routes()`) of the
functions that `functions/routes.json` deploys behind the load balancer (neither `internal` nor
`local_only`), so a route added later fails `test_the_table_lists_exactly_the_served_routes` and
every one of its matrix cases until TABLE says how to call it and what each caller gets; a route
that goes away fails them too until its TABLE entry goes.

Callers: anonymous; a bad token of each kind in BAD_TOKENS (bad signature, expired, wrong
audience, ...) and each malformed header in BAD_HEADERS; a valid token of a subject that never
registered; the buyer who owns the World's bookings and payment; another buyer; an admin of a
rival company; an admin of the company that owns the World's event. Bad tokens are minted here
with the stack's own issuer key (the `issuer` fixture) or with a fresh key that the stack has
never published, so each one differs from a good token in one way only.

Refusals follow API.md: 401 `unauthenticated` for a missing or bad token, 403 `not_registered`
before registration, 403 `forbidden` for a wrong role or another company's event or company, and
404 `not_found` for another user's booking or payment ("one the caller may not know exists").
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests

from dev.gateway import load_routes, path_regex
from dev.stack import Stack
from shared.core.devissuer import DevIssuer, generate_private_key_pem
from tests.conftest import Api, event_body, user_body
from tests.e2e.payments_helpers import book, deliver, paid, poll, stripe_event, wait_for_status

ROOT = Path(__file__).resolve().parents[2]

# ---- the routes the routers serve -----------------------------------------------------------

# Run in a child process with a fixed local environment: importing a function module validates
# settings and configures logging for a whole process, which this test process must not inherit.
_READ_ROUTERS = """
import importlib, json, sys
tables = {name: importlib.import_module("functions." + name).router.routes() for name in sys.argv[1:]}
print("ROUTES " + json.dumps(tables))
"""


def module_of(function: dict[str, Any]) -> str:
    return str(function["source"]).removesuffix(".py")


@cache
def router_tables() -> dict[str, list[tuple[str, str]]]:
    """(method, template) of every route, per function module that routes.json deploys."""
    names = [module_of(f) for f in load_routes() if not f.get("local_only")]
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PROFILE": "test",
        "GOOGLE_CLOUD_PROJECT": "demo-route-table",
        "AUTH_PROVIDER": "local",
        "LOG_LEVEL": "WARNING",
    }
    result = subprocess.run(
        [sys.executable, "-c", _READ_ROUTERS, *names],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("ROUTES ")]
    if result.returncode != 0 or not lines:
        raise RuntimeError(f"could not read the routers of {names}:\n{result.stderr[-3000:]}")
    tables = json.loads(lines[-1].removeprefix("ROUTES "))
    return {name: [(method, template) for method, template in routes] for name, routes in tables.items()}


def served_routes(*, internal: bool) -> dict[str, str]:
    """`METHOD /template` -> the function serving it, for the public (or the internal) functions."""
    tables = router_tables()
    served: dict[str, str] = {}
    for function in load_routes():
        if function.get("local_only") or bool(function.get("internal")) != internal:
            continue
        for method, template in tables[module_of(function)]:
            served[f"{method} {template}"] = function["name"]
    return served


PUBLIC_ROUTES = served_routes(internal=False)
INTERNAL_ROUTES = served_routes(internal=True)

# ---- what each caller gets ------------------------------------------------------------------

# An expectation is the status, then for a refusal the problem's code: "201", "404 not_found".
HOOK_URL = "http://127.0.0.1:9/hooks"  # nothing listens there: deliveries fail and are retried later
UNAUTHENTICATED = "401 unauthenticated"
NOT_REGISTERED = "403 not_registered"
FORBIDDEN = "403 forbidden"
NOT_FOUND = "404 not_found"
ALREADY_REGISTERED = "409 already_registered"
CALLERS = ("unregistered", "buyer", "other_buyer", "rival", "admin")


@dataclass(frozen=True)
class Access:
    """What each kind of caller gets on one route."""

    anonymous: str
    bad_token: str  # every BAD_TOKENS kind, and every non-empty BAD_HEADERS value
    unregistered: str  # a valid token whose subject never registered
    buyer: str  # owns the route's booking or payment
    other_buyer: str
    rival: str  # an admin of another company
    admin: str  # an admin of the company that owns the route's event, company or booking

    def of(self, caller: str) -> str:
        return str(getattr(self, caller))


def public(answer: str) -> Access:
    """No token needed and none looked at: every caller gets the same answer."""
    return Access(answer, answer, answer, answer, answer, answer, answer)


def registered(ok: str) -> Access:
    return Access(UNAUTHENTICATED, UNAUTHENTICATED, NOT_REGISTERED, ok, ok, ok, ok)


def any_admin(ok: str) -> Access:
    return Access(UNAUTHENTICATED, UNAUTHENTICATED, NOT_REGISTERED, FORBIDDEN, FORBIDDEN, ok, ok)


def company_admin(ok: str) -> Access:
    return Access(UNAUTHENTICATED, UNAUTHENTICATED, NOT_REGISTERED, FORBIDDEN, FORBIDDEN, FORBIDDEN, ok)


def endpoint_admin(ok: str) -> Access:
    """A company's own webhook endpoint: another company's admin may not know it exists."""
    return Access(UNAUTHENTICATED, UNAUTHENTICATED, NOT_REGISTERED, FORBIDDEN, FORBIDDEN, NOT_FOUND, ok)


def owner_or_company_admin(ok: str) -> Access:
    return Access(UNAUTHENTICATED, UNAUTHENTICATED, NOT_REGISTERED, ok, NOT_FOUND, NOT_FOUND, ok)


@dataclass(frozen=True)
class World:
    """One company with its admin and events, a buyer with bookings in every state the routes need,
    another buyer, and a rival company's admin. Built once per module."""

    admin: str
    company_id: str
    event_id: str  # published; holds the buyer's pending and confirmed bookings
    open_event_id: str  # published; nobody holds anything there (the hold route books it)
    buyer: str
    pending_booking_id: str  # on event_id, pending_payment (paid by the pay route)
    confirmed_booking_id: str  # on event_id, paid and confirmed (refunded by the refund route)
    payment_id: str  # the confirmed booking's payment
    cancellable_booking_id: str  # on another event, pending_payment (cancelled by the cancel route)
    device_id: str  # a check-in device of event_id (revoked by the revoke route)
    ticket_id: str  # the first ticket of the confirmed booking
    other_buyer: str
    rival: str
    invitation_id: str  # a pending invitation of company_id (revoked by the revoke route)
    promo_code: str  # a promo code of event_id (changed by the PATCH route)
    cancel_event_id: str  # published, nothing booked (cancelled by the cancel route)
    entry_id: str  # the buyer's waitlist entry of a sold-out event (left by the DELETE route)
    endpoint_id: str  # a webhook endpoint of company_id, subscribed to everything
    doomed_endpoint_id: str  # another one (deleted by the DELETE route)
    delivery_id: str  # a delivery of endpoint_id (sent again by the retry route)


# Path parameter -> World attribute, unless a Case says otherwise.
DEFAULT_PARAMS = {
    "company_id": "company_id",
    "event_id": "event_id",
    "payment_id": "payment_id",
    "device_id": "device_id",
    "ticket_id": "ticket_id",
    "invitation_id": "invitation_id",
    "code": "promo_code",
    "entry_id": "entry_id",
    "endpoint_id": "endpoint_id",
    "delivery_id": "delivery_id",
}


@dataclass(frozen=True)
class Case:
    method: str
    template: str
    access: Access
    body: Callable[[], Any] | None = None  # called per request: a fresh body (usernames must differ)
    params: dict[str, str] = field(default_factory=dict)  # path parameter -> World attribute
    if_match: bool = False  # send the event's current ETag
    if_match_of: str = "event_id"  # the World attribute naming that event

    @property
    def name(self) -> str:
        return f"{self.method} {self.template}"


CASES = [
    # Public: no token needed, and none looked at (the webhook is authenticated by Stripe's signature).
    Case("GET", "/healthz", public("200")),
    Case("GET", "/v1/openapi.json", public("200")),
    Case("GET", "/v1/ticket-keys", public("200")),
    Case("POST", "/v1/webhooks/stripe", public("400 invalid_webhook"), body=dict),
    # Public, but a token that is sent must be good.
    Case("GET", "/v1/events", Access("200", UNAUTHENTICATED, "200", "200", "200", "200", "200")),
    Case("GET", "/v1/events/{event_id}", Access("200", UNAUTHENTICATED, "200", "200", "200", "200", "200")),
    # Any valid token: registration.
    Case(
        "POST",
        "/v1/users",
        Access(
            UNAUTHENTICATED,
            UNAUTHENTICATED,
            "201",
            ALREADY_REGISTERED,
            ALREADY_REGISTERED,
            ALREADY_REGISTERED,
            ALREADY_REGISTERED,
        ),
        body=lambda: user_body("user"),
    ),
    # Any registered user.
    Case("GET", "/v1/users/me", registered("200")),
    Case("PATCH", "/v1/users/me", registered("200"), body=lambda: {"name": "Changed Name"}),
    Case("GET", "/v1/bookings", registered("200")),
    Case("GET", "/v1/waitlist", registered("200")),
    Case(
        "POST",
        "/v1/events/{event_id}/waitlist",
        registered("409 tickets_available"),
        body=lambda: {"quantity": 1},
        params={"event_id": "open_event_id"},
    ),
    Case(
        "POST",
        "/v1/events/{event_id}/bookings",
        registered("201"),
        body=lambda: {"quantity": 1},
        params={"event_id": "open_event_id"},
    ),
    # Any admin (for their own company).
    Case("POST", "/v1/events", any_admin("201"), body=event_body),
    Case("GET", "/v1/attention", any_admin("200")),
    # Admins of the owning company only.
    Case("GET", "/v1/companies/{company_id}", company_admin("200")),
    Case(
        "POST",
        "/v1/companies/{company_id}/invitations",
        company_admin("201"),
        body=lambda: {"email": f"invitee-{secrets.token_hex(4)}@example.com"},
    ),
    Case("GET", "/v1/companies/{company_id}/invitations", company_admin("200")),
    Case("DELETE", "/v1/companies/{company_id}/invitations/{invitation_id}", company_admin("200")),
    Case("GET", "/v1/companies/{company_id}/members", company_admin("200")),
    Case("PATCH", "/v1/events/{event_id}", company_admin("200"), body=lambda: {"name": "Renamed"}, if_match=True),
    Case(
        "POST",
        "/v1/events/{event_id}/cancel",
        company_admin("202"),
        body=lambda: {"reason": "Matrix"},
        params={"event_id": "cancel_event_id"},
        if_match=True,
        if_match_of="cancel_event_id",
    ),
    Case("GET", "/v1/events/{event_id}/audit", company_admin("200")),
    Case("GET", "/v1/events/{event_id}/stats", company_admin("200")),
    Case("GET", "/v1/events/{event_id}/waitlist", company_admin("200")),
    Case(
        "POST",
        "/v1/events/{event_id}/promo-codes",
        company_admin("201"),
        body=lambda: {"code": f"C{secrets.token_hex(4)}", "percent_off": 10},
    ),
    Case("GET", "/v1/events/{event_id}/promo-codes", company_admin("200")),
    Case("PATCH", "/v1/events/{event_id}/promo-codes/{code}", company_admin("200"), body=lambda: {"active": True}),
    Case("GET", "/v1/events/{event_id}/bookings", company_admin("200")),
    # The door: the event's company admins (and its check-in devices: tests/e2e/test_checkin.py).
    Case("POST", "/v1/events/{event_id}/checkins", company_admin("422 invalid_ticket"), body=lambda: {"code": "x.y"}),
    Case(
        "POST",
        "/v1/events/{event_id}/checkins/batch",
        company_admin("200"),
        body=lambda: {
            "scans": [{"scan_id": secrets.token_hex(8), "code": "x.y", "scanned_at": "2026-01-01T10:00:00Z"}]
        },
    ),
    Case("GET", "/v1/events/{event_id}/revocations", company_admin("200")),
    Case("GET", "/v1/events/{event_id}/attendees", company_admin("200")),
    Case("POST", "/v1/events/{event_id}/checkin-devices", company_admin("201"), body=lambda: {"name": "Gate 2"}),
    Case("GET", "/v1/events/{event_id}/checkin-devices", company_admin("200")),
    Case("DELETE", "/v1/events/{event_id}/checkin-devices/{device_id}", company_admin("204")),
    # Outbound webhook endpoints: an admin's own company's (a rival admin registers their own).
    Case("POST", "/v1/webhook-endpoints", any_admin("201"), body=lambda: {"url": HOOK_URL, "events": ["*"]}),
    Case("GET", "/v1/webhook-endpoints", any_admin("200")),
    Case("GET", "/v1/webhook-endpoints/{endpoint_id}", endpoint_admin("200")),
    Case("PATCH", "/v1/webhook-endpoints/{endpoint_id}", endpoint_admin("200"), body=lambda: {"events": ["*"]}),
    Case(
        "DELETE",
        "/v1/webhook-endpoints/{endpoint_id}",
        endpoint_admin("204"),
        params={"endpoint_id": "doomed_endpoint_id"},
    ),
    Case("GET", "/v1/webhook-endpoints/{endpoint_id}/deliveries", endpoint_admin("200")),
    Case("POST", "/v1/webhook-endpoints/{endpoint_id}/deliveries/{delivery_id}/retry", endpoint_admin("202")),
    Case(
        "POST",
        "/v1/bookings/{booking_id}/refund",
        Access(UNAUTHENTICATED, UNAUTHENTICATED, NOT_REGISTERED, FORBIDDEN, NOT_FOUND, NOT_FOUND, "200"),
        params={"booking_id": "confirmed_booking_id"},
    ),
    # The buyer who owns it, or an admin of the event's company.
    Case(
        "GET", "/v1/bookings/{booking_id}", owner_or_company_admin("200"), params={"booking_id": "confirmed_booking_id"}
    ),
    Case("GET", "/v1/payments/{payment_id}", owner_or_company_admin("200")),
    Case("GET", "/v1/tickets/{ticket_id}/qr.svg", owner_or_company_admin("200 image/svg+xml")),
    Case("GET", "/v1/tickets/{ticket_id}/qr.png", owner_or_company_admin("200 image/png")),
    Case(
        "GET",
        "/v1/bookings/{booking_id}/tickets",
        owner_or_company_admin("200"),
        params={"booking_id": "confirmed_booking_id"},
    ),
    # The buyer who owns it only.
    Case(
        "POST",
        "/v1/bookings/{booking_id}/payments",
        Access(UNAUTHENTICATED, UNAUTHENTICATED, NOT_REGISTERED, "201", NOT_FOUND, NOT_FOUND, NOT_FOUND),
        body=dict,
        params={"booking_id": "pending_booking_id"},
    ),
    Case(
        "DELETE",
        "/v1/waitlist/{entry_id}",
        Access(UNAUTHENTICATED, UNAUTHENTICATED, NOT_REGISTERED, "200", NOT_FOUND, NOT_FOUND, NOT_FOUND),
    ),
    Case(
        "POST",
        "/v1/bookings/{booking_id}/cancel",
        Access(UNAUTHENTICATED, UNAUTHENTICATED, NOT_REGISTERED, "200", NOT_FOUND, NOT_FOUND, FORBIDDEN),
        params={"booking_id": "cancellable_booking_id"},
    ),
]
TABLE = {case.name: case for case in CASES}
assert len(TABLE) == len(CASES), "a route is listed twice in CASES"
# Served or listed: either kind of drift fails each of the route's cases, not only the table test.
ROUTE_NAMES = sorted(set(PUBLIC_ROUTES) | set(TABLE), key=lambda n: (n.split(" ", 1)[1], n))


def case_for(name: str) -> Case:
    if name not in PUBLIC_ROUTES:
        pytest.fail(f"{name} is in TABLE but no public function's router serves it: remove it from CASES")
    if name not in TABLE:
        pytest.fail(
            f"{name} (functions/{PUBLIC_ROUTES[name]}.py) is not in TABLE: add a Case saying how to call it "
            "and what each caller gets"
        )
    return TABLE[name]


# ---- calling a route ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world(api: Api) -> World:
    admin, admin_user = api.register_admin()
    hooks = [
        api.call("POST", "/v1/webhook-endpoints", admin, json={"url": HOOK_URL, "events": ["*"]}) for _ in range(2)
    ]
    assert [h.status_code for h in hooks] == [201, 201], [h.text for h in hooks]
    tag = secrets.token_hex(4)
    event = api.create_event(admin, name=f"Matrix {tag}")
    other_event = api.create_event(admin, name=f"Matrix cancel {tag}")
    open_event = api.create_event(admin, name=f"Matrix open {tag}")
    doomed_event = api.create_event(admin, name=f"Matrix doomed {tag}")
    buyer, _ = api.register_buyer()
    confirmed = book(api, buyer, event["id"])
    payment = paid(api, buyer, confirmed["id"], "pm_card_visa")
    wait_for_status(api, buyer, confirmed["id"], "confirmed")
    pending = book(api, buyer, event["id"])
    cancellable = book(api, buyer, other_event["id"])
    other_buyer, _ = api.register_buyer()
    rival, _ = api.register_admin()
    device = api.call("POST", f"/v1/events/{event['id']}/checkin-devices", admin, json={"name": "Gate 1"})
    assert device.status_code == 201, device.text
    invitation = api.call(
        "POST", f"/v1/companies/{admin_user['company_id']}/invitations", admin, json={"email": "i@example.com"}
    )
    assert invitation.status_code == 201, invitation.text
    code = api.call("POST", f"/v1/events/{event['id']}/promo-codes", admin, json={"code": "MATRIX", "amount_off": 100})
    assert code.status_code == 201, code.text
    sold_out = api.create_event(admin, name=f"Matrix sold out {tag}", capacity=1)
    book(api, other_buyer, sold_out["id"])
    waiting = api.call("POST", f"/v1/events/{sold_out['id']}/waitlist", buyer, json={"quantity": 1})
    assert waiting.status_code == 201, waiting.text
    endpoint_id = hooks[0].json()["id"]
    log = f"/v1/webhook-endpoints/{endpoint_id}/deliveries"
    deliveries = poll(lambda: api.call("GET", log, admin).json()["items"], timeout=30)
    assert deliveries, "no webhook delivery was made for the world's changes"
    return World(
        admin=admin,
        company_id=admin_user["company_id"],
        event_id=event["id"],
        open_event_id=open_event["id"],
        buyer=buyer,
        pending_booking_id=pending["id"],
        confirmed_booking_id=confirmed["id"],
        payment_id=payment["id"],
        cancellable_booking_id=cancellable["id"],
        device_id=device.json()["id"],
        ticket_id=f"{confirmed['id']}-1",
        other_buyer=other_buyer,
        rival=rival,
        invitation_id=invitation.json()["id"],
        promo_code="MATRIX",
        cancel_event_id=doomed_event["id"],
        entry_id=waiting.json()["id"],
        endpoint_id=endpoint_id,
        doomed_endpoint_id=hooks[1].json()["id"],
        delivery_id=deliveries[0]["id"],
    )


def path_of(case: Case, world: World) -> str:
    def fill(match: re.Match[str]) -> str:
        param = match.group(1)
        attribute = case.params.get(param, DEFAULT_PARAMS.get(param))
        if attribute is None or not hasattr(world, attribute):
            pytest.fail(f"{case.name}: no World value for the path parameter {param!r}; set Case.params")
        return str(getattr(world, attribute))

    return re.sub(r"\{(\w+)\}", fill, case.template)


def send(api: Api, world: World, case: Case, authorization: str | None) -> requests.Response:
    headers: dict[str, str] = {}
    if case.if_match:
        current = api.call("GET", f"/v1/events/{getattr(world, case.if_match_of)}", world.admin)
        assert current.status_code == 200, current.text
        headers["If-Match"] = current.headers["ETag"]
    if authorization is not None:
        headers["Authorization"] = authorization
    kwargs: dict[str, Any] = {"headers": headers}
    if case.body is not None:
        kwargs["json"] = case.body()
    return api.call(case.method, path_of(case, world), **kwargs)


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
    if status == 401:  # RFC 9110 15.5.2 and RFC 6750: the challenge names the Bearer scheme
        assert response.headers.get("WWW-Authenticate", "").lower().startswith("bearer"), response.headers


def assert_answer(response: requests.Response, expected: str) -> None:
    status, _, code = expected.partition(" ")
    if code.startswith("image/"):  # a success that is not JSON: its media type
        assert response.status_code == int(status), response.text
        assert response.headers["Content-Type"] == code, response.headers
        assert response.content
        return
    if code:
        assert_problem(response, int(status), code)
        return
    assert response.status_code == int(status), response.text
    if status == "204":
        assert response.content == b"", response.content
        return
    assert response.headers["Content-Type"].startswith("application/json"), response.headers
    response.json()


def token_of(world: World, issuer: DevIssuer, caller: str) -> str:
    if caller == "unregistered":
        return issuer.mint(f"sub-{secrets.token_hex(6)}")
    return str(getattr(world, caller))


# ---- the table and the routers agree --------------------------------------------------------


def test_the_table_lists_exactly_the_served_routes() -> None:
    assert {"GET /healthz", "POST /v1/users", "GET /v1/bookings/{booking_id}"} <= set(PUBLIC_ROUTES), (
        "route discovery found too little: is router.routes() still filled?"
    )
    missing = sorted(set(PUBLIC_ROUTES) - set(TABLE))
    stale = sorted(set(TABLE) - set(PUBLIC_ROUTES))
    assert not missing, f"served but not in TABLE (add a Case for each): {missing}"
    assert not stale, f"in TABLE but served by no public function (remove them): {stale}"


@pytest.mark.parametrize("name", sorted(PUBLIC_ROUTES | INTERNAL_ROUTES))
def test_routes_json_sends_each_route_to_its_own_function(name: str) -> None:
    """First match wins in routes.json: a route shadowed by another function's path is unreachable."""
    owner = {**PUBLIC_ROUTES, **INTERNAL_ROUTES}[name]
    sample = re.sub(r"\{\w+\}", "x1", name.split(" ", 1)[1])
    first = next((f["name"] for f in load_routes() if any(path_regex(p).match(sample) for p in f["paths"])), None)

    assert first == owner, f"{sample} goes to {first}, but {owner} serves {name}"


# ---- no token, bad tokens -------------------------------------------------------------------


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


@cache
def foreign_key() -> bytes:
    """A key the stack never published (made once: an RSA key takes a tenth of a second)."""
    return generate_private_key_pem()


def badly_signed(issuer: DevIssuer, stack: Stack) -> str:
    """Signed by a key the stack never published, under the stack's own key id."""
    return jwt.encode(claims(issuer), foreign_key(), algorithm="RS256", headers={"kid": issuer.kid})


def unknown_kid(issuer: DevIssuer, stack: Stack) -> str:
    other = DevIssuer(foreign_key(), issuer.issuer, issuer.audience)
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
    "empty": "",  # no credentials at all: what an anonymous caller gets
    "bearer_without_token": "Bearer ",
    "basic_scheme": "Basic dXNlcjpwYXNz",
    "token_without_scheme": "eyJhbGciOiJSUzI1NiJ9.e30.c2ln",
}


@pytest.mark.parametrize("name", ROUTE_NAMES)
def test_anonymous(api: Api, world: World, name: str) -> None:
    case = case_for(name)

    assert_answer(send(api, world, case, None), case.access.anonymous)


@pytest.fixture(scope="module")
def bad_tokens(issuer: DevIssuer, stack: Stack) -> dict[str, str]:
    """One token of each kind for the module: what makes each bad does not wear off."""
    return {kind: make(issuer, stack) for kind, make in BAD_TOKENS.items()}


@pytest.mark.parametrize("kind", sorted(BAD_TOKENS))
@pytest.mark.parametrize("name", ROUTE_NAMES)
def test_bad_token(api: Api, world: World, bad_tokens: dict[str, str], name: str, kind: str) -> None:
    case = case_for(name)

    assert_answer(send(api, world, case, f"Bearer {bad_tokens[kind]}"), case.access.bad_token)


@pytest.mark.parametrize("kind", sorted(BAD_HEADERS))
@pytest.mark.parametrize("name", ROUTE_NAMES)
def test_malformed_authorization_header(api: Api, world: World, name: str, kind: str) -> None:
    case = case_for(name)
    expected = case.access.anonymous if kind == "empty" else case.access.bad_token

    assert_answer(send(api, world, case, BAD_HEADERS[kind]), expected)


# ---- good tokens: registered or not, whose object it is -------------------------------------


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("name", ROUTE_NAMES)
def test_caller(api: Api, world: World, issuer: DevIssuer, name: str, caller: str) -> None:
    """Refusals for the wrong caller, and success for the right one on the very same request, so
    the refusals are about who calls and nothing else."""
    case = case_for(name)
    token = token_of(world, issuer, caller)

    assert_answer(send(api, world, case, f"Bearer {token}"), case.access.of(caller))


def test_the_webhook_accepts_what_stripe_signs(api: Api, stack: Stack) -> None:
    """The webhook's own authentication: refused above without Stripe's signature, taken with it."""
    assert "POST /v1/webhooks/stripe" in PUBLIC_ROUTES
    intent = {
        "id": f"pi_{secrets.token_hex(8)}",
        "object": "payment_intent",
        "amount": 100,
        "currency": "eur",
        "status": "requires_payment_method",
        "metadata": {},
    }

    response = deliver(api, stack.webhook_secret, stripe_event("payment_intent.created", intent))

    assert response.status_code == 200, response.text


def test_bad_tokens_change_nothing(api: Api, world: World, issuer: DevIssuer, stack: Stack) -> None:
    """A refused PATCH leaves the event as it was; a refused registration registers nobody."""
    token = badly_signed(issuer, stack)
    patch = case_for("PATCH /v1/events/{event_id}")
    before = api.call("GET", f"/v1/events/{world.event_id}").json()
    assert send(api, world, patch, f"Bearer {token}").status_code == 401
    assert api.call("GET", f"/v1/events/{world.event_id}").json() == before

    sub = f"sub-{secrets.token_hex(6)}"
    forged = jwt.encode(claims(issuer, sub=sub), None, algorithm="none", headers={"kid": issuer.kid})
    assert api.call("POST", "/v1/users", forged, json=user_body("user")).status_code == 401
    assert_problem(api.call("GET", "/v1/users/me", issuer.mint(sub)), 403, "not_registered")


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


# ---- internal functions ---------------------------------------------------------------------


def test_an_anonymous_expiry_task_does_not_expire_a_live_hold(api: Api, world: World) -> None:
    """Internal functions are private in production (IAM invokers only; the load balancer never
    routes them, see tests/unit/test_infra.py). The local gateway routes them, because the local
    scheduler and the emulators deliver there: what an anonymous caller reaches is harmless, as the
    expiry target expires only holds that are overdue."""
    response = api.call("POST", "/tasks/expire-booking", json={"booking_id": world.pending_booking_id})

    assert response.status_code == 200, response.text
    assert response.json()["expired"] is False
    booking = api.call("GET", f"/v1/bookings/{world.pending_booking_id}", world.buyer).json()
    assert booking["status"] == "pending_payment"
