"""Team members over HTTP (API.md, Team members): an admin invites a colleague, the code is shown once
and e-mailed, the colleague registers with it as an admin of the same company; used, revoked and
expired codes are refused, and of registrations racing with one code exactly one wins.

Runs on the session stack; its SMTP sink saves every message in `stack.mail_dir`. What is stored is
read with the server client (the emulator), which is also how an invitation is made to look a week
old: its `expires_at` is moved into the past, as seven days would.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from dev.stack import Stack
from tests.conftest import Api, user_body
from tests.e2e.payments_helpers import Person, emails_about, poll, ts

INVITATION_FIELDS = {
    "id",
    "email",
    "status",
    "created_at",
    "expires_at",
    "invited_by",
    "accepted_by",
    "accepted_at",
    "revoked_at",
}


def assert_problem(response: requests.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert response.json()["code"] == code, response.text


def invitations_path(company_id: str) -> str:
    return f"/v1/companies/{company_id}/invitations"


def invite(api: Api, admin: Person, email: str | None = None) -> dict[str, Any]:
    email = email or f"colleague-{secrets.token_hex(4)}@example.com"
    response = api.call("POST", invitations_path(admin[1]["company_id"]), admin[0], json={"email": email})
    assert response.status_code == 201, response.text
    return dict(response.json())


def listed(api: Api, admin: Person) -> dict[str, dict[str, Any]]:
    """Every invitation of the admin's company, by id (all pages)."""
    found: dict[str, dict[str, Any]] = {}
    params: dict[str, Any] = {"limit": 100}
    while True:
        response = api.call("GET", invitations_path(admin[1]["company_id"]), admin[0], params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        found.update({i["id"]: i for i in page["items"]})
        if not page["next_page_token"]:
            return found
        params["page_token"] = page["next_page_token"]


def invited_body(code: str, **overrides: Any) -> dict[str, Any]:
    body = {k: v for k, v in user_body("admin").items() if k != "company"}
    return {**body, "invitation": code, **overrides}


def register_with(api: Api, code: str, token: str | None = None, **overrides: Any) -> requests.Response:
    return api.call("POST", "/v1/users", token or api.token(), json=invited_body(code, **overrides))


def assert_not_registered(api: Api, token: str) -> None:
    assert_problem(api.call("GET", "/v1/users/me", token), 403, "not_registered")


def member_ids(api: Api, admin: Person) -> set[str]:
    response = api.call("GET", f"/v1/companies/{admin[1]['company_id']}/members", admin[0], params={"limit": 100})
    assert response.status_code == 200, response.text
    return {u["id"] for u in response.json()["items"]}


@pytest.fixture
def admin(api: Api) -> Person:
    return api.register_admin()


# ---- inviting -----------------------------------------------------------------------------------


def test_the_code_is_shown_once_listed_without_it_and_emailed(
    api: Api, stack: Stack, admin: Person, firestore_client: Any
) -> None:
    email = f"colleague-{secrets.token_hex(4)}@example.com"

    created = invite(api, admin, email)

    assert set(created) == INVITATION_FIELDS | {"code", "email_sent"}
    assert (created["email"], created["status"], created["email_sent"]) == (email, "pending", True)
    assert created["invited_by"] == admin[1]["id"]
    code = created["code"]
    assert len(code) >= 40
    assert ts(created["expires_at"]) - ts(created["created_at"]) == timedelta(days=7)
    shown = listed(api, admin)[created["id"]]
    assert shown == {k: v for k, v in created.items() if k not in ("code", "email_sent")}
    listing = api.call("GET", invitations_path(admin[1]["company_id"]), admin[0]).text
    assert code not in listing
    # e-mailed to the invitee, with the code
    assert poll(lambda: emails_about(stack.mail_dir, code)), "no invitation e-mail"
    [message] = emails_about(stack.mail_dir, code)
    assert message["To"] == email
    # stored only as its hash, under the hash
    snap = firestore_client.collection("invitations").document(hashlib.sha256(code.encode()).hexdigest()).get()
    assert snap.exists
    assert code not in repr(snap.to_dict())


@pytest.mark.parametrize(
    "body",
    [{"email": "not-an-email"}, {}, {"email": "a@example.com", "code": "mine"}, {"email": "a@example.com", "id": "x"}],
)
def test_a_bad_invitation_body_is_a_validation_error(api: Api, admin: Person, body: dict[str, Any]) -> None:
    before = listed(api, admin)

    response = api.call("POST", invitations_path(admin[1]["company_id"]), admin[0], json=body)

    assert_problem(response, 422, "validation_error")
    assert listed(api, admin) == before


# ---- registering with the code ------------------------------------------------------------------


def test_a_code_registers_an_admin_of_the_inviting_company(api: Api, admin: Person) -> None:
    created = invite(api, admin)
    token = api.token()

    response = register_with(api, created["code"], token)

    assert response.status_code == 201, response.text
    user = response.json()
    assert (user["role"], user["company_id"]) == ("admin", admin[1]["company_id"])
    event = api.create_event(token, name=f"Team {secrets.token_hex(3)}")
    assert event["company_id"] == admin[1]["company_id"]
    colleague: Person = (token, user)
    assert member_ids(api, colleague) == {admin[1]["id"], user["id"]}
    assert api.call("GET", f"/v1/companies/{admin[1]['company_id']}", token).status_code == 200
    accepted = listed(api, admin)[created["id"]]
    assert (accepted["status"], accepted["accepted_by"]) == ("accepted", user["id"])
    assert accepted["accepted_at"] is not None
    # the inviting admin manages the colleague's event too: one company
    patch = api.call(
        "PATCH", f"/v1/events/{event['id']}", admin[0], json={"name": "Renamed"}, headers={"If-Match": '"1"'}
    )
    assert patch.status_code == 200, patch.text


def test_a_code_is_used_once_and_the_refused_registration_leaves_nothing(api: Api, admin: Person) -> None:
    code = invite(api, admin)["code"]
    assert register_with(api, code).status_code == 201
    token, username = api.token(), f"late_{secrets.token_hex(4)}"

    assert_problem(register_with(api, code, token, username=username), 422, "invalid_invitation")

    assert_not_registered(api, token)
    # no identity or username was claimed: the same subject registers with the same username
    again = api.call("POST", "/v1/users", token, json={**user_body("user"), "username": username})
    assert again.status_code == 201, again.text


def test_of_registrations_racing_with_one_code_exactly_one_wins(api: Api, stack: Stack, admin: Person) -> None:
    code = invite(api, admin)["code"]
    racers = [(api.token(), f"racer_{secrets.token_hex(4)}") for _ in range(5)]
    barrier = threading.Barrier(len(racers))

    def race(token: str, username: str) -> Callable[[], requests.Response]:
        def call() -> requests.Response:
            own = Api(stack.url)  # a session per thread
            barrier.wait(timeout=30)
            return register_with(own, code, token, username=username)

        return call

    with ThreadPoolExecutor(max_workers=len(racers)) as pool:
        answers = list(pool.map(lambda f: f(), [race(t, u) for t, u in racers]))

    statuses = sorted(a.status_code for a in answers)
    assert statuses == [201] + [422] * (len(racers) - 1), [a.text for a in answers]
    winner = next(a.json() for a in answers if a.status_code == 201)
    for (token, username), answer in zip(racers, answers, strict=True):
        if answer.status_code == 201:
            continue
        assert_problem(answer, 422, "invalid_invitation")
        assert_not_registered(api, token)
        free = api.call("POST", "/v1/users", token, json={**user_body("user"), "username": username})
        assert free.status_code == 201, free.text  # nothing half-written for the losers
    assert member_ids(api, admin) == {admin[1]["id"], winner["id"]}


def test_a_revoked_code_is_refused_and_revoking_twice_is_invalid_state(api: Api, admin: Person) -> None:
    created = invite(api, admin)
    path = f"{invitations_path(admin[1]['company_id'])}/{created['id']}"

    revoked = api.call("DELETE", path, admin[0])

    assert revoked.status_code == 200, revoked.text
    assert (revoked.json()["id"], revoked.json()["status"]) == (created["id"], "revoked")
    assert revoked.json()["revoked_at"] is not None
    token = api.token()
    assert_problem(register_with(api, created["code"], token), 422, "invalid_invitation")
    assert_not_registered(api, token)
    assert_problem(api.call("DELETE", path, admin[0]), 409, "invalid_state")
    assert listed(api, admin)[created["id"]]["status"] == "revoked"


def test_an_expired_code_is_refused(api: Api, admin: Person, firestore_client: Any) -> None:
    created = invite(api, admin)
    # as if seven days had passed
    past = datetime.now(UTC) - timedelta(seconds=1)
    firestore_client.collection("invitations").document(created["id"]).update({"expires_at": past})
    token = api.token()

    assert_problem(register_with(api, created["code"], token), 422, "invalid_invitation")

    assert_not_registered(api, token)
    assert listed(api, admin)[created["id"]]["status"] == "expired"
    path = f"{invitations_path(admin[1]['company_id'])}/{created['id']}"
    assert_problem(api.call("DELETE", path, admin[0]), 409, "invalid_state")


def test_an_accepted_invitation_cannot_be_revoked(api: Api, admin: Person) -> None:
    created = invite(api, admin)
    assert register_with(api, created["code"]).status_code == 201

    response = api.call("DELETE", f"{invitations_path(admin[1]['company_id'])}/{created['id']}", admin[0])

    assert_problem(response, 409, "invalid_state")


@pytest.mark.parametrize("code", ["inv_no-such-code", "x", "  "])
def test_an_unknown_or_empty_code_is_refused(api: Api, code: str) -> None:
    token = api.token()

    response = register_with(api, code, token)

    assert_problem(response, 422, "validation_error" if not code.strip() else "invalid_invitation")
    assert_not_registered(api, token)


def test_company_and_invitation_together_are_a_validation_error(api: Api, admin: Person) -> None:
    created = invite(api, admin)
    token = api.token()
    both = {**user_body("admin"), "invitation": created["code"]}
    buyer = {**user_body("user"), "invitation": created["code"]}

    assert_problem(api.call("POST", "/v1/users", token, json=both), 422, "validation_error")
    assert_problem(api.call("POST", "/v1/users", token, json=buyer), 422, "validation_error")

    assert_not_registered(api, token)
    assert listed(api, admin)[created["id"]]["status"] == "pending"


def test_a_registered_subject_using_a_code_is_already_registered_and_it_stays_pending(api: Api, admin: Person) -> None:
    created = invite(api, admin)
    rival_token, rival = api.register_admin()

    assert_problem(register_with(api, created["code"], rival_token), 409, "already_registered")

    me = api.call("GET", "/v1/users/me", rival_token).json()
    assert me["company_id"] == rival["company_id"] != admin[1]["company_id"]
    assert listed(api, admin)[created["id"]]["status"] == "pending"
    assert register_with(api, created["code"]).status_code == 201  # still usable by someone else


# ---- who may manage the team --------------------------------------------------------------------


def test_other_companies_admins_and_buyers_are_forbidden_on_every_team_route(api: Api, admin: Person) -> None:
    created = invite(api, admin)
    company = admin[1]["company_id"]
    routes = [
        ("POST", invitations_path(company), {"email": "x@example.com"}),
        ("GET", invitations_path(company), None),
        ("DELETE", f"{invitations_path(company)}/{created['id']}", None),
        ("GET", f"/v1/companies/{company}/members", None),
    ]
    for outsider, _ in (api.register_admin(), api.register_buyer()):
        for method, path, body in routes:
            assert_problem(api.call(method, path, outsider, json=body), 403, "forbidden")
    assert listed(api, admin)[created["id"]]["status"] == "pending"


def test_an_unknown_or_another_companys_invitation_is_not_found(api: Api, admin: Person) -> None:
    rival = api.register_admin()
    theirs = invite(api, rival)
    base = invitations_path(admin[1]["company_id"])

    assert_problem(api.call("DELETE", f"{base}/no-such-invitation", admin[0]), 404, "not_found")
    assert_problem(api.call("DELETE", f"{base}/{theirs['id']}", admin[0]), 404, "not_found")
    assert listed(api, rival)[theirs["id"]]["status"] == "pending"


def test_members_and_invitations_come_in_pages(api: Api, admin: Person) -> None:
    joined = [register_with(api, invite(api, admin)["code"]).json()["id"] for _ in range(2)]
    path = f"/v1/companies/{admin[1]['company_id']}/members"

    first = api.call("GET", path, admin[0], params={"limit": 2}).json()
    rest = api.call("GET", path, admin[0], params={"limit": 2, "page_token": first["next_page_token"]}).json()

    assert len(first["items"]) == 2
    assert first["next_page_token"]
    assert (len(rest["items"]), rest["next_page_token"]) == (1, None)
    assert {u["id"] for u in first["items"] + rest["items"]} == {admin[1]["id"], *joined}
    invitations = invitations_path(admin[1]["company_id"])
    one = api.call("GET", invitations, admin[0], params={"limit": 1}).json()
    two = api.call("GET", invitations, admin[0], params={"limit": 1, "page_token": one["next_page_token"]}).json()
    assert two["next_page_token"] is None
    assert {i["status"] for i in one["items"] + two["items"]} == {"accepted"}
    assert len({i["id"] for i in one["items"] + two["items"]}) == 2
    # a members page token is not one of the invitations list
    mixed = api.call("GET", invitations, admin[0], params={"page_token": first["next_page_token"]})
    assert_problem(mixed, 422, "validation_error")
