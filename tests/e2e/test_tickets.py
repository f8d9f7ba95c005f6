"""Tickets (API.md, Tickets): issued once with the confirmation, verifiable offline with the
published keys, revoked with a refund, readable by the buyer and the event's admins only."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from dev.stack import Stack
from shared.services.tickets import qr
from tests.conftest import Api
from tests.e2e.payments_helpers import (
    assert_problem,
    book,
    doc,
    emails_about,
    firestore_for,
    paid,
    poll,
    wait_for_status,
    where,
)


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def tickets_of(api: Api, token: str, booking_id: str) -> list[dict[str, Any]]:
    response = api.call("GET", f"/v1/bookings/{booking_id}/tickets", token)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def verify_offline(keys: dict[str, Any], code: str) -> dict[str, Any]:
    """What a scanner app does with the JWKS it downloaded: no call to the API."""
    payload, signature = code.split(".")
    claims: dict[str, Any] = json.loads(unb64(payload))
    (key,) = [k for k in keys["keys"] if k["kid"] == claims["kid"]]
    Ed25519PublicKey.from_public_bytes(unb64(key["x"])).verify(unb64(signature), payload.encode("ascii"))
    return claims


@pytest.fixture
def sale(api: Api) -> dict[str, Any]:
    admin_token, _ = api.register_admin()
    event = api.create_event(admin_token, capacity=10)
    buyer_token, _ = api.register_buyer()
    booking = book(api, buyer_token, event["id"], quantity=3)
    return {"admin": admin_token, "buyer": buyer_token, "event": event, "booking": booking}


def test_a_confirmed_booking_has_quantity_tickets_that_verify_offline(api: Api, sale: dict[str, Any]) -> None:
    booking, event = sale["booking"], sale["event"]
    assert tickets_of(api, sale["buyer"], booking["id"]) == [], "no tickets while it is not confirmed"

    paid(api, sale["buyer"], booking["id"], "pm_card_visa")
    wait_for_status(api, sale["buyer"], booking["id"], "confirmed")

    tickets = tickets_of(api, sale["buyer"], booking["id"])
    assert [(t["number"], t["status"], t["checked_in_at"]) for t in tickets] == [
        (1, "valid", None),
        (2, "valid", None),
        (3, "valid", None),
    ]
    assert {t["booking_id"] for t in tickets} == {booking["id"]}
    assert len({t["id"] for t in tickets}) == 3
    keys = api.call("GET", "/v1/ticket-keys").json()
    assert keys["keys"]
    assert all(k["kty"] == "OKP" and k["crv"] == "Ed25519" for k in keys["keys"])
    for ticket in tickets:
        claims = verify_offline(keys, ticket["code"])
        assert (claims["tid"], claims["eid"], claims["n"]) == (ticket["id"], event["id"], ticket["number"])
    assert tickets_of(api, sale["admin"], booking["id"]) == tickets, "the event's admins see the same"


def test_tickets_are_issued_in_the_confirming_commit_once_and_audited(
    api: Api, stack: Stack, sale: dict[str, Any]
) -> None:
    booking = sale["booking"]
    paid(api, sale["buyer"], booking["id"], "pm_card_visa")
    wait_for_status(api, sale["buyer"], booking["id"], "confirmed")
    db = firestore_for(stack)

    stored = where(db, "tickets", "booking_id", booking["id"])
    assert sorted(t["number"] for t in stored) == [1, 2, 3]
    confirmed = doc(db, "bookings", booking["id"])
    assert confirmed is not None
    assert {t["issued_at"] for t in stored} == {confirmed["updated_at"]}, "issued in the confirmation's commit"
    stream = where(db, "domain_events", "event_id", sale["event"]["id"])
    issued = sorted(e["object_id"] for e in stream if e["action"] == "ticket.issued")
    assert issued == sorted(t["id"] for t in stored), "one ticket.issued domain event per ticket"


def test_a_refund_revokes_every_ticket(api: Api, sale: dict[str, Any]) -> None:
    booking = sale["booking"]
    paid(api, sale["buyer"], booking["id"], "pm_card_visa")
    wait_for_status(api, sale["buyer"], booking["id"], "confirmed")

    response = api.call("POST", f"/v1/bookings/{booking['id']}/refund", sale["admin"])
    assert response.status_code == 200, response.text

    tickets = tickets_of(api, sale["buyer"], booking["id"])
    assert [t["status"] for t in tickets] == ["revoked"] * 3


def test_nobody_else_reads_them(api: Api, sale: dict[str, Any]) -> None:
    other_token, _ = api.register_buyer()
    rival_token, _ = api.register_admin()
    for token in (other_token, rival_token):
        response = api.call("GET", f"/v1/bookings/{sale['booking']['id']}/tickets", token)
        assert_problem(response, 404, "not_found")
    assert_problem(api.call("GET", f"/v1/bookings/{sale['booking']['id']}/tickets"), 401, "unauthenticated")


def test_the_keys_are_public_and_cacheable(api: Api) -> None:
    response = api.call("GET", "/v1/ticket-keys")
    assert response.status_code == 200, response.text
    assert "max-age" in response.headers.get("Cache-Control", "")
    (key,) = response.json()["keys"]
    assert len(unb64(key["x"])) == 32
    assert set(key) == {"kty", "crv", "kid", "x", "use", "alg"}, "a public key only"


def test_qr_images_carry_the_code_and_the_email_carries_one_per_ticket(
    api: Api, stack: Stack, sale: dict[str, Any]
) -> None:
    booking = sale["booking"]
    paid(api, sale["buyer"], booking["id"], "pm_card_visa")
    wait_for_status(api, sale["buyer"], booking["id"], "confirmed")
    ticket = tickets_of(api, sale["buyer"], booking["id"])[0]

    svg = api.call("GET", f"/v1/tickets/{ticket['id']}/qr.svg", sale["buyer"])
    png = api.call("GET", f"/v1/tickets/{ticket['id']}/qr.png", sale["admin"])
    assert (svg.status_code, svg.headers["Content-Type"]) == (200, "image/svg+xml"), svg.text
    assert (png.status_code, png.headers["Content-Type"]) == (200, "image/png"), png.text
    assert svg.content.startswith(b"<?xml")
    assert b"<svg" in svg.content
    assert png.content == qr.png(ticket["code"]), "the QR code of the ticket's code, nothing else"
    stranger, _ = api.register_buyer()
    assert_problem(api.call("GET", f"/v1/tickets/{ticket['id']}/qr.png", stranger), 404, "not_found")
    assert_problem(api.call("GET", f"/v1/tickets/{booking['id']}-9/qr.png", sale["buyer"]), 404, "not_found")

    messages = poll(lambda: emails_about(stack.mail_dir, booking["id"]) or None)
    assert messages is not None, "no confirmation email"
    (message,) = messages
    images = [part for part in message.iter_attachments() if part.get_content_type() == "image/png"]
    assert len(images) == booking["quantity"]
    assert sorted(str(part.get_filename()) for part in images) == [f"ticket-{n}-of-3.png" for n in (1, 2, 3)]
