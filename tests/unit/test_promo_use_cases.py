"""Promo codes in the booking and payment use cases, against recording fakes: the discount, the use
claimed in the hold's commit, given back by every end of a booking, taken again by a late payment
(or the payment refunded when the uses are gone), and a free booking confirmed with its tickets."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.core.errors import PromoCodeExhausted, PromoCodeInvalid
from shared.models import Booking
from shared.promo_models import PromoCode, pool_of
from shared.services.bookings.ports import HoldRequest
from shared.services.identity import Principal
from shared.services.payments.paying import PayRequest
from tests.unit.fakes import Clock, Wired
from tests.unit.test_payment_use_cases import TTL, deliver, wired

BUYERS = [Principal(f"buyer-{n}", "user", None) for n in range(1, 6)]


def code(clock: Clock, name: str = "HALF", **changes: object) -> PromoCode:
    fields: dict[str, object] = {
        "event_id": "ev-1",
        "company_id": "company-1",
        "code": name,
        "percent_off": 50,
        "amount_off": None,
        "max_uses": 1,
        "valid_until": None,
        "active": True,
        "created_at": clock.now(),
        "updated_at": clock.now(),
        **changes,
    }
    return PromoCode(**fields)  # type: ignore[arg-type]


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(monkeypatch)


@pytest.fixture
def app(clock: Clock) -> Wired:
    app = wired(clock, capacity=6)
    app.promo_codes.add(code(clock))
    return app


def hold(app: Wired, buyer: int, quantity: int = 1, promo: str | None = "half") -> Booking:
    who = BUYERS[buyer]
    booking, _ = app.holding.hold(lambda: who, f"sub-{who.user_id}", HoldRequest("ev-1", quantity, None, promo))
    return booking


def uses(app: Wired, booking: Booking) -> list[str]:
    return [c.state for c in app.use_slots.claims_of(pool_of("ev-1", "HALF"), booking.id)]


def test_percent_and_amount_off_as_the_contract_says() -> None:
    percent = PromoCode("e", "c", "P", 15, None, None, None, True, *(2 * [None]))  # type: ignore[arg-type]
    assert percent.discount(1999, 3) == 1999 * 3 * 15 // 100
    amount = PromoCode("e", "c", "A", None, 700, None, None, True, *(2 * [None]))  # type: ignore[arg-type]
    assert amount.discount(500, 2) == 1000  # never more than the price of each ticket
    assert amount.discount(2500, 2) == 1400


def test_a_hold_with_a_code_claims_its_use_in_the_same_commit(app: Wired) -> None:
    booking = hold(app, 0, quantity=2)

    assert (booking.promo_code, booking.discount, booking.total_cost) == ("HALF", 2500, 2500)
    assert uses(app, booking) == ["held"]
    [claim] = app.use_slots.claims_of(pool_of("ev-1", "HALF"), booking.id)
    assert claim.held_until == booking.expires_at
    with pytest.raises(PromoCodeExhausted):
        hold(app, 1)
    assert len(app.bookings.all()) == 1  # the refused hold left nothing behind
    assert app.inventory.taken("ev-1", booking.booking_time) == 2


def test_unknown_inactive_and_past_codes_are_invalid(app: Wired, clock: Clock) -> None:
    app.promo_codes.add(code(clock, "OFF", active=False))
    app.promo_codes.add(code(clock, "PAST", valid_until=clock.now() - timedelta(seconds=1)))
    for name in ("NOPE", "off", "PAST"):
        with pytest.raises(PromoCodeInvalid):
            hold(app, 0, promo=name)
    assert app.bookings.all() == []


def test_every_end_of_a_booking_gives_its_use_back(app: Wired, clock: Clock) -> None:
    cancelled = hold(app, 0)
    app.releasing.cancel(BUYERS[0], cancelled.id)
    assert uses(app, cancelled) == []

    expired = hold(app, 1)
    clock.advance(TTL)
    assert app.releasing.expire(expired.id) is not None
    assert uses(app, expired) == []

    refunded = hold(app, 2)
    payment, _ = app.paying.pay(BUYERS[2], PayRequest(refunded.id, "pm_card_visa", None))
    assert payment.amount == refunded.total_cost
    assert app.finalising.finalize(payment.id) == "confirmed"
    assert uses(app, refunded) == ["sold"]
    app.refunding.refund(Principal("admin-1", "admin", "company-1"), refunded.id)
    assert uses(app, refunded) == []
    assert uses(app, hold(app, 3)) == ["held"]


def test_a_late_payment_takes_a_use_again_or_is_refunded_when_none_is_left(app: Wired, clock: Clock) -> None:
    late = hold(app, 0)
    app.gateway.will("require_action")
    payment, _ = app.paying.pay(BUYERS[0], PayRequest(late.id, "pm_card_visa", None))
    clock.advance(TTL)
    app.releasing.expire(late.id)
    app.gateway.settle(payment.transaction_id or "")
    assert deliver(app, payment)
    assert app.finalising.finalize(payment.id) == "confirmed late"
    assert uses(app, late) == ["sold"]

    app.refunding.refund(Principal("admin-1", "admin", "company-1"), late.id)
    gone = hold(app, 1)
    app.gateway.will("require_action")
    payment, _ = app.paying.pay(BUYERS[1], PayRequest(gone.id, "pm_card_visa", None))
    clock.advance(TTL)
    app.releasing.expire(gone.id)
    hold(app, 2)  # takes the only use meanwhile
    app.gateway.settle(payment.transaction_id or "")
    assert deliver(app, payment)
    assert app.finalising.finalize(payment.id) == "refunded"
    assert app.booking_of(gone.id).status == "expired"
    assert app.gateway.refunded(payment.transaction_id or "") == gone.total_cost  # no charge kept


def test_a_booking_that_costs_nothing_is_confirmed_with_its_tickets(app: Wired, clock: Clock) -> None:
    app.promo_codes.add(code(clock, "FREE", percent_off=100, max_uses=None))
    booking = hold(app, 0, quantity=3, promo="free")

    assert (booking.status, booking.total_cost, booking.discount) == ("confirmed", 0, 7500)
    assert [c.state for c in app.claims_of(booking)] == ["sold"] * 3
    assert [c.state for c in app.use_slots.claims_of(pool_of("ev-1", "FREE"), booking.id)] == ["sold"]
    assert len(app.tickets.of_booking(booking.id, 3)) == 3
    assert app.store.actions(booking.id) == ["booking.held", "booking.confirmed"]
    assert booking.id not in app.expiry.scheduled
    assert app.bookings.buyer_holds("ev-1", "buyer-1").pending == {}
