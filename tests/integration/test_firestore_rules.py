"""firestore.rules, enforced by the Firestore emulator the stack starts with `--rules`.

Clients talk to the emulator's REST API the way a client SDK would: anonymously (no Authorization
header) or signed in with a Firebase ID token. The emulator does not verify ID tokens (no signature,
expiry or audience check), so an unsigned `alg: none` token with the claims Firebase Auth would put
there is enough to set `request.auth`. The one token never to send is the literal `Bearer owner`:
that is the emulator's admin credential (the server SDK sends it) and bypasses the rules.

The data is seeded with the server client, which bypasses the rules, under fresh ids.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests

from dev.stack import Stack

# Callers that are told apart by rules: no token, the owner of the seeded user and booking, another
# signed-in user, and a signed-in user whose token carries admin-looking custom claims.
ANONYMOUS = "anonymous"
OWNER = "owner"
STRANGER = "stranger"
CLAIMS_ADMIN = "claims-admin"
SIGNED_IN = (OWNER, STRANGER, CLAIMS_ADMIN)
EVERYONE = (ANONYMOUS, *SIGNED_IN)

# Collections no client may read, signed in or not. domain_events is the audit stream (read through
# the API by the owning company's admins only), webhook_events the payment provider's events taken
# in, idempotency the Idempotency-Key records; tickets (their codes are admissions), check-in devices
# and scans are read through the API only, and so are team invitations (collection names as in shared/dal).
PRIVATE = (
    "companies",
    "payments",
    "identities",
    "usernames",
    "idempotency",
    "domain_events",
    "webhook_events",
    "tickets",
    "checkin_devices",
    "checkin_scans",
    "invitations",
    "waitlist",
    "webhook_endpoints",
    "webhook_deliveries",
)


def b64url(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def id_token(project: str, uid: str, **claims: Any) -> str:
    """An unsigned Firebase ID token: accepted by the emulator, which does not check signatures."""
    now = int(time.time())
    payload = {
        "sub": uid,
        "user_id": uid,
        "iss": f"https://securetoken.google.com/{project}",
        "aud": project,
        "iat": now,
        "exp": now + 3600,
        "auth_time": now,
        "firebase": {"sign_in_provider": "custom", "identities": {}},
        **claims,
    }
    return f"{b64url({'alg': 'none', 'typ': 'JWT'})}.{b64url(payload)}."


@dataclass
class Seed:
    """Documents written with the server client; `data` maps a document path to its fields."""

    owner_uid: str
    stranger_uid: str
    owner_user: str
    stranger_user: str
    published_event: str
    draft_event: str
    slot: str
    buyer: str
    owner_booking: str
    stranger_booking: str
    private: dict[str, str]
    data: dict[str, dict[str, Any]] = field(default_factory=dict)


class Rest:
    """The emulator's REST API as a client sees it."""

    def __init__(self, stack: Stack, seed: Seed) -> None:
        self.project = stack.project
        self.documents = f"http://{stack.host('firestore')}/v1/projects/{stack.project}/databases/(default)/documents"
        self.http = requests.Session()
        self.tokens: dict[str, str | None] = {
            ANONYMOUS: None,
            OWNER: id_token(self.project, seed.owner_uid),
            STRANGER: id_token(self.project, seed.stranger_uid),
            CLAIMS_ADMIN: id_token(self.project, f"admin-{secrets.token_hex(6)}", admin=True, role="admin"),
        }

    def request(self, caller: str, method: str, url: str, **kwargs: Any) -> requests.Response:
        token = self.tokens[caller]
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        assert headers.get("Authorization") != "Bearer owner"  # the emulator's rules bypass
        return self.http.request(method, url, headers=headers, timeout=10, **kwargs)

    def get(self, caller: str, path: str) -> requests.Response:
        return self.request(caller, "GET", f"{self.documents}/{path}")

    def query(
        self, caller: str, collection: str, where: tuple[str, str] | None = None, parent: str = ""
    ) -> requests.Response:
        structured: dict[str, Any] = {"from": [{"collectionId": collection}]}
        if where:
            structured["where"] = {
                "fieldFilter": {"field": {"fieldPath": where[0]}, "op": "EQUAL", "value": {"stringValue": where[1]}}
            }
        url = f"{self.documents}/{parent}:runQuery" if parent else f"{self.documents}:runQuery"
        return self.request(caller, "POST", url, json={"structuredQuery": structured})

    # Each write takes an existing document's path and a fresh id in the same collection: the
    # creating writes aim at the fresh id, the others at the existing document.

    def create(self, caller: str, path: str, new_id: str) -> requests.Response:
        collection, _, _ = path.rpartition("/")
        return self.request(
            caller,
            "POST",
            f"{self.documents}/{collection}",
            params={"documentId": new_id},
            json={"fields": {"tampered": {"booleanValue": True}}},
        )

    def upsert(self, caller: str, path: str, new_id: str) -> requests.Response:
        collection, _, _ = path.rpartition("/")
        return self.request(
            caller,
            "PATCH",
            f"{self.documents}/{collection}/{new_id}",
            json={"fields": {"tampered": {"booleanValue": True}}},
        )

    def update(self, caller: str, path: str, new_id: str) -> requests.Response:
        return self.request(
            caller,
            "PATCH",
            f"{self.documents}/{path}",
            params={"updateMask.fieldPaths": "tampered", "currentDocument.exists": "true"},
            json={"fields": {"tampered": {"booleanValue": True}}},
        )

    def delete(self, caller: str, path: str, new_id: str) -> requests.Response:
        return self.request(caller, "DELETE", f"{self.documents}/{path}")

    def commit(self, caller: str, path: str, new_id: str) -> requests.Response:
        name = f"projects/{self.project}/databases/(default)/documents/{path}"
        fields = {"tampered": {"booleanValue": True}}
        writes = [
            {"update": {"name": name, "fields": fields}},
            {"update": {"name": f"{name.rpartition('/')[0]}/{new_id}", "fields": fields}},
        ]
        return self.request(caller, "POST", f"{self.documents}:commit", json={"writes": writes})


def assert_allowed(response: requests.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def assert_denied(response: requests.Response) -> None:
    assert response.status_code == 403, response.text
    assert response.json()["error"]["status"] == "PERMISSION_DENIED", response.text


def result_ids(rows: list[dict[str, Any]]) -> set[str]:
    return {row["document"]["name"].rsplit("/", 1)[1] for row in rows if "document" in row}


@pytest.fixture(scope="module")
def seed(firestore_client: Any) -> Seed:
    tag = secrets.token_hex(4)
    owner_uid, stranger_uid = f"uid-owner-{tag}", f"uid-stranger-{tag}"
    owner_user, stranger_user = f"user-owner-{tag}", f"user-stranger-{tag}"
    company = f"company-{tag}"
    published, draft = f"event-published-{tag}", f"event-draft-{tag}"
    seed = Seed(
        owner_uid=owner_uid,
        stranger_uid=stranger_uid,
        owner_user=f"users/{owner_user}",
        stranger_user=f"users/{stranger_user}",
        published_event=f"events/{published}",
        draft_event=f"events/{draft}",
        slot=f"events/{published}/slots/slot-{tag}",
        buyer=f"events/{published}/buyers/{owner_user}",
        owner_booking=f"bookings/booking-owner-{tag}",
        stranger_booking=f"bookings/booking-stranger-{tag}",
        # Each private document belongs to the owner as far as its fields go: still unreadable.
        private={name: f"{name}/{name}-{tag}" for name in PRIVATE},
    )
    seed.private["identities"] = f"identities/{owner_uid}"

    def user(uid: str, role: str) -> dict[str, Any]:
        return {
            "auth_subject": uid,
            "identity_key": f"custom:{uid}",
            "name": f"Person {uid}",
            "email": f"{uid}@example.com",
            "role": role,
            "company_id": company,
        }

    event = {"name": "Spring Concert", "company_id": company, "capacity": 10}
    seed.data = {
        seed.owner_user: user(owner_uid, "admin"),
        seed.stranger_user: user(stranger_uid, "user"),
        seed.published_event: {**event, "status": "published"},
        seed.draft_event: {**event, "status": "draft"},
        seed.slot: {"hold_id": f"hold-{tag}", "user_id": owner_user},
        seed.buyer: {"pending": {f"booking-owner-{tag}": "2031-01-01T00:00:00Z"}, "user_id": owner_user},
        seed.owner_booking: {"user_id": owner_user, "buyer_subject": owner_uid, "event_id": published},
        seed.stranger_booking: {"user_id": stranger_user, "buyer_subject": stranger_uid, "event_id": published},
    }
    for path in seed.private.values():
        seed.data[path] = {"user_id": owner_user, "buyer_subject": owner_uid, "auth_subject": owner_uid}
    for path, data in seed.data.items():
        firestore_client.document(path).set(data)
    return seed


@pytest.fixture(scope="module")
def rest(stack: Stack, seed: Seed) -> Rest:
    return Rest(stack, seed)


# ---- events ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("caller", EVERYONE)
def test_published_event_is_readable(rest: Rest, seed: Seed, caller: str) -> None:
    document = assert_allowed(rest.get(caller, seed.published_event))
    assert document["fields"]["status"] == {"stringValue": "published"}


@pytest.mark.parametrize("caller", EVERYONE)
def test_draft_event_is_not_readable(rest: Rest, seed: Seed, caller: str) -> None:
    assert_denied(rest.get(caller, seed.draft_event))


def test_missing_event_is_not_readable(rest: Rest) -> None:
    assert_denied(rest.get(ANONYMOUS, f"events/missing-{secrets.token_hex(6)}"))


@pytest.mark.parametrize("caller", EVERYONE)
def test_events_query_on_published_is_allowed(rest: Rest, seed: Seed, caller: str) -> None:
    rows = assert_allowed(rest.query(caller, "events", ("status", "published")))
    ids = result_ids(rows)
    assert seed.published_event.split("/")[1] in ids
    assert seed.draft_event.split("/")[1] not in ids


@pytest.mark.parametrize("caller", EVERYONE)
@pytest.mark.parametrize("where", [None, ("status", "draft"), ("company_id", "any")], ids=["all", "draft", "company"])
def test_events_query_not_constrained_to_published_is_denied(
    rest: Rest, caller: str, where: tuple[str, str] | None
) -> None:
    assert_denied(rest.query(caller, "events", where))


@pytest.mark.parametrize("caller", EVERYONE)
def test_slots_are_not_readable(rest: Rest, seed: Seed, caller: str) -> None:
    assert_denied(rest.get(caller, seed.slot))
    assert_denied(rest.query(caller, "slots", parent=seed.published_event))


@pytest.mark.parametrize("caller", EVERYONE)
def test_promo_codes_and_their_uses_are_not_readable(
    rest: Rest, seed: Seed, firestore_client: Any, caller: str
) -> None:
    """A code is a discount for whoever knows it: only its event's admins list them, through the API."""
    code = f"{seed.published_event}/promo_codes/SECRET"
    use = f"{code}/uses/use-1"
    firestore_client.document(code).set({"code": "SECRET", "percent_off": 100, "company_id": "any"})
    firestore_client.document(use).set({"n": 0, "state": "sold", "booking_id": "b-1"})
    assert_denied(rest.get(caller, code))
    assert_denied(rest.query(caller, "promo_codes", parent=seed.published_event))
    assert_denied(rest.query(caller, "promo_codes", ("code", "SECRET"), parent=seed.published_event))
    assert_denied(rest.get(caller, use))


@pytest.mark.parametrize("caller", EVERYONE)
def test_buyers_pending_holds_are_not_readable(rest: Rest, seed: Seed, caller: str) -> None:
    """events/{id}/buyers/{user}: even the buyer's own document is the server's business."""
    assert_denied(rest.get(caller, seed.buyer))
    assert_denied(rest.query(caller, "buyers", parent=seed.published_event))
    assert_denied(rest.query(caller, "buyers", ("user_id", seed.owner_user.split("/")[1]), parent=seed.published_event))


# ---- users ----------------------------------------------------------------------------------------


def test_user_reads_own_user_document(rest: Rest, seed: Seed) -> None:
    document = assert_allowed(rest.get(OWNER, seed.owner_user))
    assert document["fields"]["auth_subject"] == {"stringValue": seed.owner_uid}


@pytest.mark.parametrize("caller", EVERYONE)
def test_user_cannot_read_another_users_document(rest: Rest, seed: Seed, caller: str) -> None:
    path = seed.stranger_user if caller == OWNER else seed.owner_user
    assert_denied(rest.get(caller, path))


@pytest.mark.parametrize("caller", EVERYONE)
def test_users_cannot_be_listed(rest: Rest, seed: Seed, caller: str) -> None:
    assert_denied(rest.query(caller, "users"))
    assert_denied(rest.query(caller, "users", ("auth_subject", seed.owner_uid)))


# ---- bookings -------------------------------------------------------------------------------------


def test_user_reads_own_booking(rest: Rest, seed: Seed) -> None:
    document = assert_allowed(rest.get(OWNER, seed.owner_booking))
    assert document["fields"]["buyer_subject"] == {"stringValue": seed.owner_uid}


@pytest.mark.parametrize("caller", EVERYONE)
def test_user_cannot_read_another_users_booking(rest: Rest, seed: Seed, caller: str) -> None:
    path = seed.stranger_booking if caller == OWNER else seed.owner_booking
    assert_denied(rest.get(caller, path))


def test_bookings_query_on_own_subject_is_allowed(rest: Rest, seed: Seed) -> None:
    rows = assert_allowed(rest.query(OWNER, "bookings", ("buyer_subject", seed.owner_uid)))
    assert result_ids(rows) == {seed.owner_booking.split("/")[1]}


@pytest.mark.parametrize("caller", EVERYONE)
@pytest.mark.parametrize("where", ["none", "other-subject", "user-id"])
def test_bookings_query_not_constrained_to_own_subject_is_denied(
    rest: Rest, seed: Seed, caller: str, where: str
) -> None:
    other_uid = seed.stranger_uid if caller == OWNER else seed.owner_uid
    constraint = {
        "none": None,
        "other-subject": ("buyer_subject", other_uid),
        "user-id": ("user_id", seed.owner_user.split("/")[1]),
    }[where]
    assert_denied(rest.query(caller, "bookings", constraint))


# ---- everything else ------------------------------------------------------------------------------


@pytest.mark.parametrize("caller", EVERYONE)
@pytest.mark.parametrize("collection", PRIVATE)
def test_private_collections_are_not_readable(rest: Rest, seed: Seed, caller: str, collection: str) -> None:
    assert_denied(rest.get(caller, seed.private[collection]))
    assert_denied(rest.query(caller, collection))
    assert_denied(rest.query(caller, collection, ("buyer_subject", seed.owner_uid)))


# ---- writes ---------------------------------------------------------------------------------------

WRITE_TARGETS: dict[str, Callable[[Seed], str]] = {
    "own-user": lambda s: s.owner_user,
    "published-event": lambda s: s.published_event,
    "draft-event": lambda s: s.draft_event,
    "own-booking": lambda s: s.owner_booking,
    "slot": lambda s: s.slot,
    "payment": lambda s: s.private["payments"],
    "company": lambda s: s.private["companies"],
    "identity": lambda s: s.private["identities"],
    "domain-event": lambda s: s.private["domain_events"],
    "webhook-event": lambda s: s.private["webhook_events"],
    "idempotency": lambda s: s.private["idempotency"],
    "buyer-holds": lambda s: s.buyer,
}
WRITES = ("create", "upsert", "update", "delete", "commit")


@pytest.mark.parametrize("caller", EVERYONE)
@pytest.mark.parametrize("target", WRITE_TARGETS)
@pytest.mark.parametrize("write", WRITES)
def test_no_client_writes(rest: Rest, seed: Seed, firestore_client: Any, caller: str, target: str, write: str) -> None:
    path = WRITE_TARGETS[target](seed)
    new_path = f"{path.rpartition('/')[0]}/client-{secrets.token_hex(6)}"

    assert_denied(getattr(rest, write)(caller, path, new_path.rpartition("/")[2]))

    assert firestore_client.document(path).get().to_dict() == seed.data[path]
    assert not firestore_client.document(new_path).get().exists
