"""The buyer is emailed once per confirmed booking, however often the news is delivered.

Runs on the session stack; its SMTP sink saves every message in `stack.mail_dir`. Pub/Sub delivers
at least once, so the tests push `booking-confirmed` again themselves, as a redelivery would.
"""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from dev.stack import Stack
from tests.conftest import Api
from tests.e2e.payments_helpers import (
    Person,
    book,
    emails_about,
    paid,
    poll,
    push_envelope,
    stays,
    wait_for_status,
)


@pytest.fixture(scope="module")
def admin(api: Api) -> Person:
    return api.register_admin()


def push(api: Api, data: dict[str, Any]) -> dict[str, Any]:
    response = api.call("POST", "/pubsub/booking-confirmed", json=push_envelope(data))
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_each_confirmed_booking_emails_its_buyer_once(api: Api, stack: Stack, admin: Person) -> None:
    name = f"Quartet {secrets.token_hex(3)}"
    event = api.create_event(admin[0], name=name, capacity=10)
    buyers = [api.register_buyer() for _ in range(2)]
    bookings = []
    for token, _user in buyers:
        booking = book(api, token, event["id"], 2)
        paid(api, token, booking["id"], "pm_card_visa")
        bookings.append(booking)
    for (token, _user), booking in zip(buyers, bookings, strict=True):
        wait_for_status(api, token, booking["id"], "confirmed")

    for (_token, user), booking in zip(buyers, bookings, strict=True):
        assert poll(lambda: emails_about(stack.mail_dir, booking["id"])), "no confirmation email"  # noqa: B023
        [message] = emails_about(stack.mail_dir, booking["id"])
        assert message["To"] == user["email"]
        assert name in message["Subject"]
        text = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
        assert user["name"] in text
        assert "50.00 EUR" in text  # 2 x 25.00


def test_redelivered_confirmations_send_nothing_more(api: Api, stack: Stack, admin: Person) -> None:
    event = api.create_event(admin[0], name=f"Recital {secrets.token_hex(3)}", capacity=10)
    token, _user = api.register_buyer()
    booking = book(api, token, event["id"], 1)
    paid(api, token, booking["id"], "pm_card_visa")
    wait_for_status(api, token, booking["id"], "confirmed")
    assert poll(lambda: emails_about(stack.mail_dir, booking["id"])), "no confirmation email"

    outcomes = [push(api, {"booking_id": booking["id"], "type": "booking.confirmed"})["outcome"] for _ in range(2)]

    assert outcomes == ["already sent", "already sent"]
    assert stays(lambda: len(emails_about(stack.mail_dir, booking["id"])) == 1, 1.0)


def test_news_about_an_unconfirmed_or_unknown_booking_sends_nothing(api: Api, stack: Stack, admin: Person) -> None:
    event = api.create_event(admin[0], capacity=10)
    token, _user = api.register_buyer()
    pending = book(api, token, event["id"], 1)

    assert push(api, {"booking_id": pending["id"]})["outcome"] == "ignored"
    assert push(api, {"booking_id": "no-such-booking"})["outcome"] == "ignored"
    assert push(api, {"something": "else"})["outcome"] == "ignored"
    assert emails_about(stack.mail_dir, pending["id"]) == []
