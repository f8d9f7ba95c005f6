"""Outbound webhooks (API.md, Webhooks to integrators): endpoints per company, signed deliveries that
an integrator verifies with the `standardwebhooks` library itself, event filters, retries on the
specification's schedule, the delivery log, manual retry, disabling, and the SSRF guard.

Every receiver listens on 127.0.0.1 (the local and test profiles accept http://127.0.0.1); names and
private addresses are only ever refused, never connected to.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from standardwebhooks import Webhook

from dev.stack import Stack
from dev.webhook_receiver import Receiver, running
from tests.conftest import Api
from tests.e2e.bookings_helpers import Http, shared_stack
from tests.e2e.payments_helpers import assert_problem, firestore_for, paid, poll, stays


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running() as r:
        yield r


def register(api: Api, admin: str, url: str, events: list[str], **more: Any) -> dict[str, Any]:
    response = api.call("POST", "/v1/webhook-endpoints", admin, json={"url": url, "events": events, **more})
    assert response.status_code == 201, response.text
    return dict(response.json())


def log_of(api: Api, admin: str, endpoint_id: str) -> list[dict[str, Any]]:
    response = api.call("GET", f"/v1/webhook-endpoints/{endpoint_id}/deliveries", admin, params={"limit": 100})
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def first_outcome(api: Api, admin: str, endpoint_id: str) -> list[dict[str, Any]]:
    """The log once its newest delivery's first attempt has an outcome (an attempt in flight shows
    `attempts` 1 with neither `last_status` nor `last_error` yet)."""

    def recorded() -> list[dict[str, Any]] | None:
        log = log_of(api, admin, endpoint_id)
        done = log and log[0]["attempts"] >= 1 and (log[0]["last_status"] or log[0]["last_error"])
        return log if done else None

    found = poll(recorded, timeout=30)
    assert found, "the first attempt's outcome was not recorded"
    return found


def verified(secret: str, received: Any) -> dict[str, Any]:
    """What an integrator does: verify with the specification's own library, then read."""
    return dict(Webhook(secret).verify(received.body, received.headers))


def test_an_admin_registers_reads_changes_and_deletes_an_endpoint_of_their_company(api: Api) -> None:
    admin, _ = api.register_admin()
    created = register(
        api, admin, "http://127.0.0.1:9/hooks", ["booking.confirmed", "event.created"], description="CRM"
    )
    assert created["secret"].startswith("whsec_")
    assert (created["status"], created["events"], created["description"]) == (
        "enabled",
        ["booking.confirmed", "event.created"],
        "CRM",
    )
    path = f"/v1/webhook-endpoints/{created['id']}"
    shown = api.call("GET", path, admin).json()
    assert "secret" not in shown
    assert shown["url"] == "http://127.0.0.1:9/hooks"
    listed = api.call("GET", "/v1/webhook-endpoints", admin).json()["items"]
    assert [e["id"] for e in listed] == [created["id"]]
    assert "secret" not in listed[0]

    patched = api.call("PATCH", path, admin, json={"events": ["*"], "status": "disabled"})
    assert patched.status_code == 200, patched.text
    assert (patched.json()["events"], patched.json()["status"]) == (["*"], "disabled")

    other_admin, _ = api.register_admin()
    assert_problem(api.call("GET", path, other_admin), 404, "not_found")
    assert_problem(api.call("DELETE", path, other_admin), 404, "not_found")
    buyer, _ = api.register_buyer()
    assert_problem(api.call("GET", "/v1/webhook-endpoints", buyer), 403, "forbidden")
    assert_problem(
        api.call("POST", "/v1/webhook-endpoints", buyer, json={"url": "http://127.0.0.1:9/x", "events": ["*"]}),
        403,
        "forbidden",
    )

    assert api.call("DELETE", path, admin).status_code == 204
    assert_problem(api.call("GET", path, admin), 404, "not_found")


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://hooks.example.com/x", "must be https"),
        ("ftp://127.0.0.1/x", "must be https"),
        ("https://10.1.2.3/x", "not a public address"),
        ("https://192.168.0.7/x", "not a public address"),
        ("https://127.0.0.1/x", "not a public address"),
        ("https://169.254.169.254/computeMetadata/v1/", "not a public address"),
        ("https://[::1]/x", "not a public address"),
        ("https://[::ffff:10.0.0.1]/x", "not a public address"),
        ("https://localhost/x", "does not resolve"),
        ("https://metadata.google.internal/x", "does not resolve"),
        ("https://user:pass@93.184.216.34/x", "credentials"),
        ("https://93.184.216.34/" + "a" * 2040, "2048"),
        ("http://127.0.0.2:8080/x", "must be https"),
    ],
)
def test_a_url_that_is_not_https_to_a_public_host_is_refused(api: Api, url: str, why: str) -> None:
    admin, _ = api.register_admin()
    refused = assert_problem(
        api.call("POST", "/v1/webhook-endpoints", admin, json={"url": url, "events": ["*"]}), 422, "validation_error"
    )
    assert why in json.dumps(refused), refused
    assert api.call("GET", "/v1/webhook-endpoints", admin).json()["items"] == []  # nothing half-written


def test_unknown_event_types_bad_patches_and_missing_deliveries_are_refused(api: Api) -> None:
    admin, _ = api.register_admin()
    body = {"url": "http://127.0.0.1:9/x", "events": ["booking.confirmed", "booking.exploded"]}
    refused = assert_problem(api.call("POST", "/v1/webhook-endpoints", admin, json=body), 422, "validation_error")
    assert "booking.exploded" in json.dumps(refused)
    assert_problem(
        api.call("POST", "/v1/webhook-endpoints", admin, json={"url": "http://127.0.0.1:9/x", "events": []}),
        422,
        "validation_error",
    )
    endpoint = register(api, admin, "http://127.0.0.1:9/x", ["*"])
    path = f"/v1/webhook-endpoints/{endpoint['id']}"
    assert_problem(api.call("PATCH", path, admin, json={"status": None}), 422, "validation_error")
    assert_problem(api.call("PATCH", path, admin, json={"url": "https://10.0.0.1/x"}), 422, "validation_error")
    assert_problem(api.call("PATCH", path, admin, json={"secret": "whsec_x"}), 422, "validation_error")
    assert_problem(api.call("POST", f"{path}/deliveries/nope/retry", admin), 404, "not_found")
    assert api.call("GET", path, admin).json()["url"] == "http://127.0.0.1:9/x"


def test_a_committed_change_is_delivered_signed_and_only_to_endpoints_that_subscribe(
    api: Api, receiver: Receiver
) -> None:
    admin, _ = api.register_admin()
    with running() as bystander:
        wants = register(api, admin, receiver.url, ["event.created", "booking.confirmed"])
        register(api, admin, bystander.url, ["booking.cancelled"])
        event = api.create_event(admin, capacity=5)

        got = poll(lambda: receiver.of_type("event.created"), timeout=30)
        assert got, "no event.created delivery"
        payload = verified(wants["secret"], got[0])
        assert (payload["type"], payload["company_id"], payload["data"]["id"]) == (
            "event.created",
            event["company_id"],
            event["id"],
        )
        assert payload["data"]["name"] == event["name"]  # the object as the API returns it
        assert payload["sequence"] == 1
        assert got[0].headers["webhook-id"] == payload["id"]

        buyer, _ = api.register_buyer()
        booking = api.call("POST", f"/v1/events/{event['id']}/bookings", buyer, json={"quantity": 1}).json()
        paid(api, buyer, booking["id"], "pm_card_visa")
        confirmed = poll(lambda: receiver.of_type("booking.confirmed"), timeout=30)
        assert confirmed, "no booking.confirmed delivery"
        data = verified(wants["secret"], confirmed[0])["data"]
        assert (data["id"], data["status"]) == (booking["id"], "confirmed")

        assert stays(lambda: bystander.received == [], seconds=1.0), "delivered to an endpoint that did not subscribe"

        def recorded() -> list[dict[str, Any]] | None:  # an outcome is written just after the answer
            log = log_of(api, admin, wants["id"])
            return log if all(d["state"] == "delivered" for d in log) else None

        log = poll(recorded, timeout=30)
        assert log, log_of(api, admin, wants["id"])
        assert sorted(d["type"] for d in log) == ["booking.confirmed", "event.created"]
        assert all((d["attempts"], d["last_status"]) == (1, 200) for d in log), log


def test_a_forged_or_tampered_delivery_does_not_verify(api: Api, receiver: Receiver) -> None:
    admin, _ = api.register_admin()
    endpoint = register(api, admin, receiver.url, ["event.created"])
    api.create_event(admin)
    got = poll(lambda: receiver.of_type("event.created"), timeout=30)
    assert got
    verified(endpoint["secret"], got[0])
    with pytest.raises(Exception, match=r"(?i)signature"):
        Webhook(endpoint["secret"]).verify(got[0].body.replace(b"event.created", b"event.updated"), got[0].headers)
    other = register(api, admin, receiver.url, ["event.created"])
    with pytest.raises(Exception, match=r"(?i)signature"):
        Webhook(other["secret"]).verify(got[0].body, got[0].headers)


def test_a_failing_endpoint_gets_the_same_delivery_again_on_the_schedule_and_by_hand(api: Api) -> None:
    with running(Receiver(answers=[500])) as flaky:
        admin, _ = api.register_admin()
        endpoint = register(api, admin, flaky.url, ["event.created"])
        api.create_event(admin)

        delivery = first_outcome(api, admin, endpoint["id"])[0]
        assert (delivery["state"], delivery["last_status"]) == ("pending", 500)
        due = datetime.fromisoformat(delivery["next_attempt_at"]) - datetime.fromisoformat(delivery["last_attempt_at"])
        assert timedelta(seconds=4) <= due <= timedelta(seconds=6), due  # the specification's first retry: 5 s

        second = poll(lambda: (d := log_of(api, admin, endpoint["id"])[0])["state"] == "delivered" and d, timeout=30)
        assert second, "the retry did not deliver"
        assert second["attempts"] == 2
        ids = {r.headers["webhook-id"] for r in flaky.received}
        assert ids == {delivery["event_id"]}, "a retry keeps its webhook-id"
        assert flaky.received[0].body == flaky.received[1].body

        again = api.call("POST", f"/v1/webhook-endpoints/{endpoint['id']}/deliveries/{delivery['id']}/retry", admin)
        assert again.status_code == 202, again.text
        assert poll(lambda: len(flaky.received) == 3, timeout=30), "the manual retry was not sent"
        assert poll(lambda: log_of(api, admin, endpoint["id"])[0]["attempts"] == 3, timeout=10)
        verified(endpoint["secret"], flaky.received[2])


def test_an_endpoint_failing_for_three_days_is_disabled_and_its_admins_told(
    api: Api, stack: Stack, receiver: Receiver
) -> None:
    receiver.status = 503
    admin, admin_user = api.register_admin()
    endpoint = register(api, admin, receiver.url, ["event.created"])
    db = firestore_for(stack)
    db.collection("webhook_endpoints").document(endpoint["id"]).update(
        {"failing_since": datetime.now(UTC) - timedelta(days=3, minutes=1)}  # it has failed since then
    )
    api.create_event(admin)
    path = f"/v1/webhook-endpoints/{endpoint['id']}"
    disabled = poll(lambda: (e := api.call("GET", path, admin).json())["status"] == "disabled" and e, timeout=30)
    assert disabled, "the endpoint was not disabled"
    assert disabled["disabled_at"] is not None
    mails = poll(
        lambda: [m for m in (stack.mail_dir.glob("*.eml")) if admin_user["email"] in m.read_text()], timeout=10
    )
    assert mails
    assert "was disabled" in mails[0].read_text()

    api.create_event(admin)  # nothing is sent to a disabled endpoint
    assert stays(lambda: len(receiver.received) == 1, seconds=1.5)
    enabled = api.call("PATCH", path, admin, json={"status": "enabled"}).json()
    assert (enabled["status"], enabled["failing_since"], enabled["disabled_at"]) == ("enabled", None, None)


def test_a_name_that_resolves_to_nothing_public_at_delivery_is_not_sent_to(api: Api, stack: Stack) -> None:
    """The URL is checked again at every delivery: here it was changed behind the API's back to a
    name that (in the test profile) resolves to nothing; the attempt is recorded, nothing is sent."""
    admin, _ = api.register_admin()
    endpoint = register(api, admin, "http://127.0.0.1:9/x", ["event.created"])
    db = firestore_for(stack)
    db.collection("webhook_endpoints").document(endpoint["id"]).update({"url": "https://metadata.google.internal/x"})
    api.create_event(admin)
    found = first_outcome(api, admin, endpoint["id"])
    assert found[0]["last_status"] is None
    assert found[0]["last_error"].startswith("not sent"), found[0]


def test_a_redirect_is_not_followed_and_counts_as_a_failure(api: Api, receiver: Receiver) -> None:
    with running(Receiver(status=307, location=receiver.url)) as redirecting:
        admin, _ = api.register_admin()
        endpoint = register(api, admin, redirecting.url, ["event.created"])
        api.create_event(admin)
        tried = first_outcome(api, admin, endpoint["id"])
        assert (tried[0]["state"], tried[0]["last_status"]) == ("pending", 307)
        assert len(redirecting.received) == 1
        assert stays(lambda: receiver.received == [], seconds=1.0), "the redirect was followed"


@pytest.fixture(scope="module")
def crashy(pytestconfig: pytest.Config) -> Stack:
    """Every relay after a commit is skipped, as if the process died between the commit and it."""
    env = {"FAULT_INJECTION": "skip_outbox_publish", "OUTBOX_GRACE_SECONDS": "0", "SWEEP_INTERVAL_SECONDS": "3600"}
    return shared_stack(pytestconfig, "crashy-relay", env)


def test_a_change_whose_relay_died_is_delivered_after_the_sweep(crashy: Stack, receiver: Receiver) -> None:
    """Nothing committed is missed: the fan-out reads the stream's relay, and the sweep relays what a
    crash left unpublished."""
    api = Api(crashy.url)
    admin, _ = api.register_admin()
    endpoint = register(api, admin, receiver.url, ["event.created"])
    event = api.create_event(admin)
    assert stays(lambda: receiver.received == [], seconds=1.5), "sent before its relay"

    swept = Http(crashy.url).sweep()
    assert swept.status_code == 200, swept.text
    got = poll(lambda: receiver.of_type("event.created"), timeout=30)
    assert got, "the sweep's relay was not delivered"
    assert verified(endpoint["secret"], got[0])["data"]["id"] == event["id"]
