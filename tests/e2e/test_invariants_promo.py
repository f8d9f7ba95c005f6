"""The invariant checker's promo code rule (dev/invariants_promo.py) against the running stack.

What the API does with codes keeps every invariant (a paid booking with a code, a free one, a
cancelled one, a refunded one); then each corruption of the stored uses or prices is reported,
as rule `promo` and only as it.
"""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from dev.invariants import Violation, check
from dev.stack import Stack
from shared.dal.inventory import slot_id
from shared.dal.records import SOLD_UNTIL
from tests.conftest import Api
from tests.e2e.payments_helpers import paid, stripe_client, wait_for_status

SETTLE = 20.0


def listed(violations: list[Violation]) -> str:
    return "\n".join(str(v) for v in violations) or "no violations"


def holds(api: Api, token: str, event_id: str, quantity: int, code: str) -> dict[str, Any]:
    body = {"quantity": quantity, "promo_code": code}
    response = api.call("POST", f"/v1/events/{event_id}/bookings", token, json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def setup(api: Api) -> tuple[str, dict[str, Any]]:
    admin, _ = api.register_admin()
    event = api.create_event(admin, name=f"Promo {secrets.token_hex(3)}", capacity=20, base_price=1000)
    for body in (
        {"code": "TEN", "percent_off": 10, "max_uses": 3},
        {"code": "FREE", "percent_off": 100, "max_uses": 2},
    ):
        response = api.call("POST", f"/v1/events/{event['id']}/promo-codes", admin, json=body)
        assert response.status_code == 201, response.text
    return admin, event


def uses(db: Any, event_id: str, code: str) -> Any:
    return db.collection("events").document(event_id).collection("promo_codes").document(f"c-{code}").collection("uses")


def test_what_the_api_does_with_codes_keeps_every_invariant(api: Api, stack: Stack, firestore_client: Any) -> None:
    admin, event = setup(api)
    buyers = [api.register_buyer()[0] for _ in range(4)]
    paying = holds(api, buyers[0], event["id"], 2, "ten")
    paid(api, buyers[0], paying["id"], "pm_card_visa")
    holds(api, buyers[1], event["id"], 1, "FREE")
    cancelled = holds(api, buyers[2], event["id"], 1, "TEN")
    assert api.call("POST", f"/v1/bookings/{cancelled['id']}/cancel", buyers[2]).status_code == 200
    refunded = holds(api, buyers[3], event["id"], 1, "TEN")
    paid(api, buyers[3], refunded["id"], "pm_card_visa")
    wait_for_status(api, buyers[3], refunded["id"], "confirmed")
    assert api.call("POST", f"/v1/bookings/{refunded['id']}/refund", admin).status_code == 200
    wait_for_status(api, buyers[0], paying["id"], "confirmed")

    found = check(
        firestore_client, stripe_client(stack), event_ids=[event["id"]], mail_dir=stack.mail_dir, settle=SETTLE
    )
    assert found == [], listed(found)


@pytest.mark.parametrize(
    "corruption", ["over max_uses", "use lost", "use of no booking", "wrong discount", "free unpaid"]
)
def test_a_corrupted_use_or_price_is_reported(api: Api, stack: Stack, firestore_client: Any, corruption: str) -> None:
    _admin, event = setup(api)
    buyer, _ = api.register_buyer()
    booking = holds(api, buyer, event["id"], 1, "TEN")
    provider = stripe_client(stack)
    assert check(firestore_client, provider, event_ids=[event["id"]]) == []
    pool = f"{event['id']}:TEN"
    mine = next(iter(uses(firestore_client, event["id"], "TEN").stream()))

    if corruption == "over max_uses":
        for n in range(3):  # three more sold uses, each naming a booking that carries the code
            doc = {"n": n + 10, "state": "sold", "booking_id": booking["id"], "held_until": SOLD_UNTIL}
            uses(firestore_client, event["id"], "TEN").document(slot_id(pool, n + 10)).set(doc)
    elif corruption == "use lost":
        mine.reference.delete()
    elif corruption == "use of no booking":
        doc = {"n": 2, "state": "sold", "booking_id": "nobody", "held_until": SOLD_UNTIL}
        uses(firestore_client, event["id"], "TEN").document(slot_id(pool, 2)).set(doc)
    elif corruption == "wrong discount":
        firestore_client.collection("bookings").document(booking["id"]).update({"discount": 5, "total_cost": 995})
    else:
        firestore_client.collection("bookings").document(booking["id"]).update({"status": "confirmed"})

    found = [v for v in check(firestore_client, provider, event_ids=[event["id"]]) if v.rule == "promo"]
    assert found, f"{corruption} was not reported"
