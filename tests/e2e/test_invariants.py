"""The invariant checker (dev/invariants.py) against the running stack.

First, what the API does in the ordinary course keeps every invariant: holds, a paid booking, a
declined then paid one, a client-side payment confirmed by the webhook, a cancel, a refund (on the
session stack), and an expiry and a late payment (on the stack whose holds last 3 s). Then the
checker can fail: for each rule, the stored state of an event of its own is corrupted directly in
the Firestore emulator, the mail folder or localstripe, and exactly that rule is reported.

Every test makes its own events and checks only those (the stack is shared by the whole session).
"""

from __future__ import annotations

import email
import email.policy
import secrets
import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import stripe

from dev.invariants import Violation, check, in_flight
from dev.stack import Stack
from shared.dal.inventory import slot_id
from shared.dal.records import SOLD_UNTIL
from tests.conftest import Api
from tests.e2e.bookings_helpers import SHORT_HOLDS, shared_stack
from tests.e2e.payments_helpers import (
    Person,
    assert_problem,
    attention_ids,
    book,
    confirm_as_stripe_js,
    emails_about,
    firestore_for,
    new_payment_id,
    paid,
    pay,
    payment_doc,
    poll,
    sleep_past,
    slot_claims,
    stripe_client,
    ts,
    wait_for_status,
)

SETTLE = 20.0  # seconds for the system to come to rest (webhooks, Pub/Sub, the finaliser, the email)


@pytest.fixture(scope="module")
def admin(api: Api) -> Person:
    return api.register_admin()


@pytest.fixture(scope="module")
def provider(stack: Stack) -> stripe.StripeClient:
    return stripe_client(stack)


Checker = Callable[..., list[Violation]]


@pytest.fixture(scope="module")
def checked(stack: Stack, firestore_client: Any, provider: stripe.StripeClient) -> Checker:
    """check() over some events of the session stack, with its mail folder unless told otherwise."""

    def run(*event_ids: str, mail_dir: Path | None = None, settle: float = 0.0) -> list[Violation]:
        folder = stack.mail_dir if mail_dir is None else mail_dir
        return check(firestore_client, provider, event_ids=event_ids, mail_dir=folder, settle=settle)

    return run


def rules(violations: list[Violation]) -> set[str]:
    return {v.rule for v in violations}


def listed(violations: list[Violation]) -> str:
    return "\n".join(str(v) for v in violations) or "no violations"


def new_event(api: Api, admin: Person, capacity: int = 10) -> dict[str, Any]:
    name = f"Invariants {secrets.token_hex(3)}"
    return api.create_event(admin[0], name=name, capacity=capacity, base_price=2500, surge_threshold=1.0)


def confirmed(api: Api, buyer: Person, event: dict[str, Any], quantity: int = 2) -> tuple[dict, dict]:
    booking = book(api, buyer[0], event["id"], quantity)
    payment = paid(api, buyer[0], booking["id"], "pm_card_visa")
    wait_for_status(api, buyer[0], booking["id"], "confirmed")
    return booking, payment


def clean(checker: Checker, *event_ids: str) -> None:
    """The state before it is corrupted keeps every invariant (once the email has gone, and so on)."""
    found = checker(*event_ids, settle=SETTLE)
    assert found == [], listed(found)


def charge(provider: stripe.StripeClient, booking: dict[str, Any]) -> Any:
    """A charge for the booking made at the provider behind the service's back (a payment id it never
    stored, so neither its webhook nor the reconciler changes anything of ours)."""
    metadata = {"booking_id": booking["id"], "payment_id": new_payment_id(), "attempt": "9"}
    params = {
        "amount": booking["total_cost"],
        "currency": booking["currency"].lower(),
        "payment_method": "pm_card_visa",
        "metadata": metadata,
    }
    intent = provider.v1.payment_intents.create(params=params)  # type: ignore[arg-type]
    done = provider.v1.payment_intents.confirm(intent.id)
    assert done.status == "succeeded", done
    return done


def mail_files_about(mail_dir: Path, booking_id: str) -> list[Path]:
    """The sink's message files that name the booking (read as emails_about reads them)."""
    found = []
    for path in sorted(mail_dir.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        body = message.get_body(preferencelist=("plain",))  # type: ignore[attr-defined]
        if body is not None and booking_id in body.get_content():
            found.append(path)
    return found


def claim_ref(db: Any, event_id: str, doc_id: str) -> Any:
    return db.collection("events").document(event_id).collection("slots").document(doc_id)


def claims_of(db: Any, event_id: str, booking_id: str) -> list[dict[str, Any]]:
    return [c for c in slot_claims(db, event_id) if c.get("booking_id") == booking_id]


# ---- (a) the ordinary course keeps every invariant ----------------------------------------------


def test_what_the_api_does_keeps_every_invariant(
    api: Api, stack: Stack, admin: Person, checked: Checker, firestore_client: Any, provider: Any
) -> None:
    event = new_event(api, admin, capacity=12)
    buyers = [api.register_buyer() for _ in range(6)]

    book(api, buyers[0][0], event["id"], 2)  # held, never paid
    booking_paid, _ = confirmed(api, buyers[1], event, 2)

    declined_then_paid = book(api, buyers[2][0], event["id"], 1)
    assert_problem(
        pay(api, buyers[2][0], declined_then_paid["id"], "pm_card_chargeCustomerFail"), 402, "payment_declined"
    )
    paid(api, buyers[2][0], declined_then_paid["id"], "pm_card_visa")

    client_side = book(api, buyers[3][0], event["id"], 1)
    open_payment = paid(api, buyers[3][0], client_side["id"])  # no payment method: Stripe.js confirms it
    confirm_as_stripe_js(stack, open_payment["transaction_id"])  # localstripe's webhook confirms the booking

    cancelled = book(api, buyers[4][0], event["id"], 1)
    assert api.call("POST", f"/v1/bookings/{cancelled['id']}/cancel", buyers[4][0]).status_code == 200

    refunded, _ = confirmed(api, buyers[5], event, 1)
    response = api.call("POST", f"/v1/bookings/{refunded['id']}/refund", admin[0])
    assert response.status_code == 200, response.text

    for buyer, booking in ((buyers[2], declined_then_paid), (buyers[3], client_side)):
        wait_for_status(api, buyer[0], booking["id"], "confirmed")
    found = checked(event["id"], settle=SETTLE)

    assert found == [], listed(found)
    assert in_flight(firestore_client, provider, event_ids=[event["id"]]) == []
    for booking in (booking_paid, declined_then_paid, client_side):
        assert len(emails_about(stack.mail_dir, booking["id"])) == 1


@pytest.fixture(scope="module")
def short(pytestconfig: pytest.Config) -> Stack:
    """Holds of 3 s, expired by the real Cloud Tasks emulator."""
    return shared_stack(pytestconfig, "short-holds", SHORT_HOLDS)


def test_expiry_and_a_late_payment_keep_every_invariant(short: Stack) -> None:
    api, db, provider = Api(short.url), firestore_for(short), stripe_client(short)
    admin = api.register_admin()
    event = new_event(api, admin, capacity=5)
    runs_out, pays_late = api.register_buyer(), api.register_buyer()
    expiring = book(api, runs_out[0], event["id"], 2)
    late = book(api, pays_late[0], event["id"], 1)
    open_payment = paid(api, pays_late[0], late["id"])  # client-side, confirmed after the hold ran out

    def violations(settle: float = 0.0) -> list[Violation]:
        return check(db, provider, event_ids=[event["id"]], mail_dir=short.mail_dir, settle=settle)

    assert violations() == [], listed(violations())
    sleep_past(ts(late["expires_at"]), margin=0.05)  # past both holds, most likely before their tasks (+1 s)
    found = violations()
    assert found == [], listed(found)

    stored = db.collection("bookings").document(expiring["id"])
    assert poll(lambda: stored.get().get("status") == "expired"), "the expiry task did not run"
    confirm_as_stripe_js(short, open_payment["transaction_id"])
    wait_for_status(api, pays_late[0], late["id"], "confirmed")
    assert poll(lambda: attention_ids(api, admin[0]).get(open_payment["id"])), "the late payment is flagged"
    found = violations(settle=SETTLE)

    assert found == [], listed(found)
    assert sorted(c["state"] for c in slot_claims(db, event["id"])) == ["sold"]


# ---- (b) the checker fails, rule by rule ----------------------------------------------------------


def test_more_tickets_than_capacity_is_reported(
    api: Api, admin: Person, checked: Checker, firestore_client: Any
) -> None:
    event = new_event(api, admin, capacity=3)
    book(api, api.register_buyer()[0], event["id"], 2)
    book(api, api.register_buyer()[0], event["id"], 1)
    clean(checked, event["id"])

    firestore_client.collection("events").document(event["id"]).update({"capacity": 2})

    found = checked(event["id"])
    assert rules(found) == {"capacity"}, listed(found)


def test_a_slot_claimed_twice_is_reported(api: Api, admin: Person, checked: Checker, firestore_client: Any) -> None:
    event = new_event(api, admin)
    first = book(api, api.register_buyer()[0], event["id"], 1)
    second = book(api, api.register_buyer()[0], event["id"], 1)
    clean(checked, event["id"])
    [taken] = claims_of(firestore_client, event["id"], first["id"])
    [moved] = claims_of(firestore_client, event["id"], second["id"])

    # The second booking's claim is rewritten onto the first one's slot, under another document id.
    claim_ref(firestore_client, event["id"], slot_id(event["id"], moved["n"])).delete()
    claim_ref(firestore_client, event["id"], f"stray-{secrets.token_hex(4)}").create({**moved, "n": taken["n"]})

    found = checked(event["id"])
    assert rules(found) == {"slot_twice"}, listed(found)
    assert [v.subject for v in found] == [f"slot/{event['id']}/{taken['n']}"]


def test_a_second_kept_charge_is_reported(
    api: Api, admin: Person, checked: Checker, provider: stripe.StripeClient
) -> None:
    event = new_event(api, admin)
    booking, _payment = confirmed(api, api.register_buyer(), event)
    clean(checked, event["id"])

    charge(provider, booking)

    found = checked(event["id"])
    assert rules(found) == {"charged_twice"}, listed(found)
    assert [v.subject for v in found] == [f"booking/{booking['id']}"]


def test_a_kept_charge_without_a_confirmed_booking_is_reported(
    api: Api, admin: Person, checked: Checker, provider: stripe.StripeClient
) -> None:
    event = new_event(api, admin)
    buyer = api.register_buyer()
    booking = book(api, buyer[0], event["id"], 1)
    assert api.call("POST", f"/v1/bookings/{booking['id']}/cancel", buyer[0]).status_code == 200
    clean(checked, event["id"])

    intent = charge(provider, booking)

    found = checked(event["id"])
    assert rules(found) == {"charge_booking"}, listed(found)
    assert [v.subject for v in found] == [f"intent/{intent.id}"]


def test_a_confirmed_booking_without_its_payment_is_reported(
    api: Api, admin: Person, checked: Checker, firestore_client: Any
) -> None:
    event = new_event(api, admin)
    booking, _payment = confirmed(api, api.register_buyer(), event)
    clean(checked, event["id"])

    firestore_client.collection("bookings").document(booking["id"]).update({"paid_by": new_payment_id()})

    found = checked(event["id"])
    assert rules(found) == {"charge_booking"}, listed(found)


def test_a_flag_the_attention_list_cannot_see_is_reported(
    api: Api, admin: Person, checked: Checker, firestore_client: Any
) -> None:
    event = new_event(api, admin)
    _booking, payment = confirmed(api, api.register_buyer(), event)
    clean(checked, event["id"])

    # A note for a person, without the index field GET /v1/attention queries.
    firestore_client.collection("payments").document(payment["id"]).update(
        {"attention": "look at this", "needs_attention": False}
    )

    found = checked(event["id"])
    assert rules(found) == {"visible"}, listed(found)
    assert [v.subject for v in found] == [f"payment/{payment['id']}"]


def test_a_payment_stuck_unseen_is_reported_and_is_not_quiet(
    api: Api, admin: Person, checked: Checker, firestore_client: Any
) -> None:
    event = new_event(api, admin)
    booking = book(api, api.register_buyer()[0], event["id"], 1)
    clean(checked, event["id"])

    # What a crash between recording an attempt and calling the provider leaves (minus the attempt
    # counter on the booking): a payment in `creating`, which nobody is told about.
    payment_id = new_payment_id()
    firestore_client.collection("payments").document(payment_id).set(
        payment_doc(payment_id, booking, admin[1]["company_id"], "creating", timedelta(0))
    )

    found = checked(event["id"])
    assert rules(found) == {"visible"}, listed(found)
    assert [v.subject for v in found] == [f"payment/{payment_id}"]
    waited = checked(event["id"], settle=1.0)  # it never comes to rest
    assert rules(waited) == {"visible", "quiet"}, listed(waited)


@pytest.mark.parametrize("corruption", ["extra sold claim", "missing sold claim", "claim of no booking", "uncounted"])
def test_inventory_that_does_not_add_up_is_reported(
    api: Api, admin: Person, checked: Checker, firestore_client: Any, corruption: str
) -> None:
    event = new_event(api, admin)
    booking, _payment = confirmed(api, api.register_buyer(), event)
    holder = api.register_buyer()
    pending = book(api, holder[0], event["id"], 1)
    clean(checked, event["id"])
    mine = claims_of(firestore_client, event["id"], booking["id"])
    used = {c["n"] for c in slot_claims(firestore_client, event["id"])}
    free = min(set(range(10)) - used)

    if corruption == "extra sold claim":
        doc = {"n": free, "state": "sold", "booking_id": booking["id"], "held_until": SOLD_UNTIL}
        claim_ref(firestore_client, event["id"], slot_id(event["id"], free)).create(doc)
    elif corruption == "missing sold claim":
        claim_ref(firestore_client, event["id"], slot_id(event["id"], mine[0]["n"])).delete()
    elif corruption == "claim of no booking":
        until = datetime.now(UTC) + timedelta(minutes=5)
        doc = {"n": free, "state": "held", "booking_id": new_payment_id(), "held_until": until}
        claim_ref(firestore_client, event["id"], slot_id(event["id"], free)).create(doc)
    else:  # the buyer's pending holds forget a live booking: the per-buyer cap would let them hold more
        buyer_doc = firestore_client.collection("events").document(event["id"]).collection("buyers")
        buyer_doc.document(pending["user_id"]).set({"pending": {}})

    found = checked(event["id"])
    assert rules(found) == {"inventory"}, listed(found)


@pytest.mark.parametrize("corruption", ["no email", "two emails", "no record"])
def test_a_confirmation_not_sent_exactly_once_is_reported(
    api: Api, stack: Stack, admin: Person, checked: Checker, firestore_client: Any, tmp_path: Path, corruption: str
) -> None:
    event = new_event(api, admin)
    booking, _payment = confirmed(api, api.register_buyer(), event)
    clean(checked, event["id"])
    sent = mail_files_about(stack.mail_dir, booking["id"])
    assert len(sent) == 1, sent
    folder = tmp_path / "mail"
    folder.mkdir()

    if corruption == "two emails":
        shutil.copy(sent[0], folder / "a.eml")
        shutil.copy(sent[0], folder / "b.eml")
    elif corruption == "no record":
        shutil.copy(sent[0], folder / "a.eml")
        firestore_client.collection("notifications").document(f"{booking['id']}-confirmation").delete()

    found = checked(event["id"], mail_dir=folder)
    assert rules(found) == {"email"}, listed(found)
    assert [v.subject for v in found] == [f"booking/{booking['id']}"]


@pytest.mark.parametrize("corruption", ["ticket missing", "ticket revoked", "refund kept a ticket", "checked in twice"])
def test_tickets_that_do_not_match_their_booking_are_reported(
    api: Api, admin: Person, checked: Checker, firestore_client: Any, corruption: str
) -> None:
    event = new_event(api, admin)
    booking, _payment = confirmed(api, api.register_buyer(), event)
    clean(checked, event["id"])
    tickets = firestore_client.collection("tickets")
    first = tickets.document(f"{booking['id']}-1")

    if corruption == "ticket missing":
        first.delete()
    elif corruption == "ticket revoked":
        first.update({"status": "revoked"})
    elif corruption == "refund kept a ticket":
        firestore_client.collection("bookings").document(booking["id"]).update({"status": "refunded"})
    else:
        first.update({"status": "checked_in", "checked_in_at": datetime.now(UTC)})
        for _ in range(2):
            firestore_client.collection("domain_events").add(
                {"event_id": event["id"], "action": "ticket.checked_in", "object_id": first.id}
            )

    found = [v for v in checked(event["id"]) if v.rule == "tickets"]
    assert found, f"{corruption} was not reported"
    assert {v.rule for v in found} == {"tickets"}, listed(found)
