"""Helpers shared by the booking tests: HTTP calls, stored state, extra stacks and the rush driver.

The rush driver gives every worker thread its own HTTP session (requests.Session is not meant to be
shared between threads), so the client side never serialises the requests it is meant to race.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypeVar
from unittest import mock

import pytest
import requests

from dev.stack import Stack
from tests.conftest import user_body

T = TypeVar("T")
R = TypeVar("R")

BOOKING_FIELDS = {
    "id",
    "event_id",
    "user_id",
    "quantity",
    "unit_price",
    "total_cost",
    "currency",
    "status",
    "booking_time",
    "expires_at",
    "promo_code",
    "discount",
}
# Fields the API may add beyond API.md's hold answer (GET /v1/bookings/{id} carries the payment).
EXTRA_BOOKING_FIELDS = {"payment"}
RUSH_WORKERS = 50


# ---- HTTP ---------------------------------------------------------------------------------------


class Http:
    """Thread-safe JSON calls against one stack: one requests.Session per thread."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self._local = threading.local()

    def session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            self._local.session = session
        return session

    def call(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}) or {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return self.session().request(method, self.base_url + path, headers=headers, timeout=60, **kwargs)

    # ---- people -------------------------------------------------------------------------------

    def token(self) -> str:
        response = self.call("POST", "/dev/token", json={"sub": f"sub-{secrets.token_hex(8)}"})
        assert response.status_code == 200, response.text
        return str(response.json()["id_token"])

    def register(self, role: str = "user") -> tuple[str, dict[str, Any]]:
        token = self.token()
        response = self.call("POST", "/v1/users", token, json=user_body(role))
        assert response.status_code == 201, response.text
        return token, dict(response.json())

    def buyers(self, count: int) -> list[tuple[str, dict[str, Any]]]:
        """Register `count` buyers (in parallel: registration is not what the tests measure)."""
        return run_all(lambda _i: self.register("user"), range(count), workers=16)

    # ---- events -------------------------------------------------------------------------------

    def create_event(self, admin_token: str, **overrides: Any) -> dict[str, Any]:
        from tests.conftest import event_body

        response = self.call("POST", "/v1/events", admin_token, json=event_body(**overrides))
        assert response.status_code == 201, response.text
        return dict(response.json())

    def event(self, event_id: str, token: str | None = None) -> dict[str, Any]:
        response = self.call("GET", f"/v1/events/{event_id}", token)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def available(self, event_id: str) -> int:
        return int(self.event(event_id)["available_tickets"])

    def set_capacity(self, admin_token: str, event_id: str, capacity: int, attempts: int = 20) -> requests.Response:
        """PATCH the capacity with the current ETag, re-reading it on 412 (others change the event too)."""
        response: requests.Response | None = None
        for _ in range(attempts):
            current = self.call("GET", f"/v1/events/{event_id}", admin_token)
            assert current.status_code == 200, current.text
            response = self.call(
                "PATCH",
                f"/v1/events/{event_id}",
                admin_token,
                json={"capacity": capacity},
                headers={"If-Match": current.headers["ETag"]},
            )
            if response.status_code != 412:
                return response
        assert response is not None
        return response

    # ---- bookings -----------------------------------------------------------------------------

    def hold(
        self, token: str, event_id: str, quantity: Any = 1, key: str | None = None, body: Any = None
    ) -> requests.Response:
        headers = {"Idempotency-Key": key} if key is not None else {}
        payload = {"quantity": quantity} if body is None else body
        return self.call("POST", f"/v1/events/{event_id}/bookings", token, json=payload, headers=headers)

    def booking(self, token: str, booking_id: str) -> requests.Response:
        return self.call("GET", f"/v1/bookings/{booking_id}", token)

    def cancel(self, token: str, booking_id: str) -> requests.Response:
        return self.call("POST", f"/v1/bookings/{booking_id}/cancel", token)

    def expire_task(self, booking_id: str) -> requests.Response:
        return self.call("POST", "/tasks/expire-booking", json={"booking_id": booking_id})

    def sweep(self) -> requests.Response:
        return self.call("POST", "/tasks/sweep", json={})


def assert_problem(response: requests.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json"), response.headers
    body = response.json()
    assert {"type", "title", "status", "detail", "code"} <= set(body), body
    assert body["status"] == status
    assert body["code"] == code, body
    return dict(body)


def code_of(response: requests.Response) -> str:
    """`201`, or the status and problem code of a refusal: `409 sold_out`."""
    if response.status_code < 400:
        return str(response.status_code)
    try:
        return f"{response.status_code} {response.json().get('code')}"
    except ValueError:
        return f"{response.status_code} {response.text[:80]}"


def ts(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    assert parsed.tzinfo is not None, value
    return parsed.astimezone(UTC)


def wait_until(instant: datetime, margin: float = 0.3) -> None:
    delay = (instant - datetime.now(UTC)).total_seconds() + margin
    if delay > 0:
        time.sleep(delay)


def poll(check: Callable[[], T | None], timeout: float, interval: float = 0.2) -> T | None:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            return None
        time.sleep(interval)


# ---- concurrency --------------------------------------------------------------------------------


def run_all(fn: Callable[[T], R], items: Iterable[T], workers: int = RUSH_WORKERS) -> list[R]:
    """fn over items on `workers` threads, results in the order of items; re-raises a failure."""
    items = list(items)
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(items)))) as pool:
        return list(pool.map(fn, items))


def rush(fn: Callable[[T], R], items: Iterable[T], workers: int = RUSH_WORKERS) -> tuple[list[R], float]:
    """Queue every call, then let them all go at once, and time the whole run."""
    items = list(items)
    go = threading.Event()

    def when_started(item: T) -> R:
        go.wait(timeout=30)
        return fn(item)

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(items)))) as pool:
        futures = [pool.submit(when_started, item) for item in items]
        started = time.monotonic()
        go.set()
        results = [f.result() for f in futures]
    return results, time.monotonic() - started


def tally(responses: Iterable[requests.Response]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for response in responses:
        key = code_of(response)
        counts[key] = counts.get(key, 0) + 1
    return counts


# ---- stored state -------------------------------------------------------------------------------


def stored_bookings(client: Any, event_id: str) -> dict[str, dict[str, Any]]:
    from google.cloud.firestore_v1.base_query import FieldFilter

    query = client.collection("bookings").where(filter=FieldFilter("event_id", "==", event_id))
    return {s.id: s.to_dict() for s in query.stream()}


def stored_booking(client: Any, booking_id: str) -> dict[str, Any] | None:
    snap = client.collection("bookings").document(booking_id).get()
    return snap.to_dict() if snap.exists else None


def claim_docs(client: Any, event_id: str) -> list[dict[str, Any]]:
    """Every claim document of the event (held, sold and retired)."""
    return [s.to_dict() for s in client.collection("events").document(event_id).collection("slots").stream()]


def live_claims(client: Any, event_id: str, now: datetime | None = None) -> list[dict[str, Any]]:
    """Claims that keep a ticket from being sold: held until later than now, or sold."""
    now = now or datetime.now(UTC)
    return [
        c
        for c in claim_docs(client, event_id)
        if c.get("state") in ("held", "sold") and c.get("held_until") is not None and c["held_until"] > now
    ]


def firestore_for(stack: Stack) -> Any:
    """A Firestore client for one stack's emulator (the emulator host is read when it is built)."""
    from google.cloud import firestore

    with mock.patch.dict(os.environ, {"FIRESTORE_EMULATOR_HOST": stack.host("firestore")}):
        return firestore.Client(project=stack.project)


# ---- extra stacks -------------------------------------------------------------------------------

_STACKS: dict[str, Stack] = {}
_STACKS_LOCK = threading.Lock()

# Holds that run out after 3 s; the real Cloud Tasks emulator expires them; the local scheduler's
# sweep is pushed out of the way so that what expires a hold in a test is the task (or the test).
SHORT_HOLDS = {"HOLD_TTL_SECONDS": "3", "SWEEP_INTERVAL_SECONDS": "3600"}
# The same, but no Cloud Tasks emulator is reachable: no expiry task is ever created.
# A plan that injects nothing at random: a request may still name a fault for itself (X-Fault-Inject);
# the sweep (run by the tests themselves) publishes what such a crash left in the outbox after 2 s.
NO_TASKS = {
    **SHORT_HOLDS,
    "CLOUD_TASKS_EMULATOR_HOST": "127.0.0.1:1",
    "FAULT_PLAN": "seed=0,rate=0",
    "OUTBOX_GRACE_SECONDS": "2",
    "WAITLIST_OFFER_SECONDS": "3",  # offers run out as holds do: the next in line is served
}


def shared_stack(config: pytest.Config, name: str, env: dict[str, str]) -> Stack:
    """One extra stack per setting for the whole session, whichever booking test module asks first
    (each costs seconds to start); stopped when the session ends."""
    with _STACKS_LOCK:
        if name not in _STACKS:
            stack = Stack.for_tests(**env)
            stack.start()
            config.add_cleanup(stack.stop)
            _STACKS[name] = stack
        return _STACKS[name]
