"""Fixtures shared by the integration and end-to-end tests.

One stack per test session (emulators, localstripe, every function behind one port), started on
free ports with a fresh demo- project id, so the suite runs on a clean machine and beside a
running `make dev`. Unit tests do not touch it: the stack starts only when a test asks for it.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from dev.stack import Stack
from shared.core.devissuer import DevIssuer


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    with Stack.for_tests() as running:
        yield running


@pytest.fixture(scope="session")
def stack_env(stack: Stack) -> Iterator[dict[str, str]]:
    """Point this process's Google clients at the stack's emulators for the whole session."""
    env = stack.client_env()
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield env
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def firestore_client(stack_env: dict[str, str]) -> Any:
    from google.cloud import firestore

    return firestore.Client(project=stack_env["GOOGLE_CLOUD_PROJECT"])


@pytest.fixture(scope="session")
def issuer(stack: Stack) -> DevIssuer:
    """The stack's own local issuer key, for tokens the /dev/token route would not mint
    (expired, wrong audience, ...)."""
    env = stack.client_env()
    return DevIssuer(stack.key_file.read_bytes(), env["AUTH_ISSUER"], env["AUTH_AUDIENCE"])


class Api:
    """A small client for the running stack: tokens, registration, and JSON calls."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = requests.Session()

    def call(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}) or {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return self.http.request(method, self.base_url + path, headers=headers, timeout=30, **kwargs)

    def token(self, sub: str | None = None, **claims: Any) -> str:
        body = {"sub": sub or f"sub-{secrets.token_hex(6)}", **claims}
        response = self.call("POST", "/dev/token", json=body)
        assert response.status_code == 200, response.text
        return str(response.json()["id_token"])

    def register_buyer(self, **overrides: Any) -> tuple[str, dict[str, Any]]:
        token = self.token()
        body = {**user_body("user"), **overrides}
        response = self.call("POST", "/v1/users", token, json=body)
        assert response.status_code == 201, response.text
        return token, response.json()

    def register_admin(self, **overrides: Any) -> tuple[str, dict[str, Any]]:
        token = self.token()
        body = {**user_body("admin"), **overrides}
        response = self.call("POST", "/v1/users", token, json=body)
        assert response.status_code == 201, response.text
        return token, response.json()

    def create_event(self, admin_token: str, **overrides: Any) -> dict[str, Any]:
        response = self.call("POST", "/v1/events", admin_token, json={**event_body(), **overrides})
        assert response.status_code == 201, response.text
        return dict(response.json())


def user_body(role: str) -> dict[str, Any]:
    tag = secrets.token_hex(4)
    body: dict[str, Any] = {
        "name": f"Person {tag}",
        "email": f"{tag}@example.com",
        "username": f"user_{tag}",
        "country_code": "DE",
        "phone_number": "+4915112345678",
        "role": role,
    }
    if role == "admin":
        body["company"] = {
            "name": f"Company {tag}",
            "address": "Hauptstrasse 1, Berlin",
            "email": f"office-{tag}@example.com",
            "country_code": "DE",
            "phone_number": "+493012345678",
            "registration_number": f"HRB {tag}",
        }
    return body


def event_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Spring Concert",
        "description": "An evening of music",
        "event_date": "2030-05-01",
        "event_time": "20:00",
        "timezone": "Europe/Berlin",
        "venue": "Tempodrom",
        "location_lat": 52.5009,
        "location_long": 13.3807,
        "capacity": 100,
        "base_price": 2500,
        "surge_price": 4000,
        "surge_threshold": 0.8,
        "currency": "EUR",
    }
    body.update(overrides)
    return body


@pytest.fixture(scope="session")
def api(stack: Stack) -> Api:
    return Api(stack.url)
