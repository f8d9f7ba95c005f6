"""The payment and booking rules that money depends on, without Firestore or Stripe.

Payment.can_become: a payment never moves backwards (nothing returns to `creating`, `succeeded` only
becomes `refunded`, `refunded` is final). Booking.status_at: a pending booking past its end is
expired on every read. The processing grace: a payment the provider is still processing keeps its
booking's hold once, for a bounded time (Paying and PaymentLedger with in-memory stand-ins).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, get_args

import pytest

from shared.domain_events import Actor
from shared.models import Booking, BookingStatus, Event, Payment, PaymentStatus
from shared.services.bookings.ports import HoldRequest
from shared.services.identity import Principal
from shared.services.payments.paying import PayRequest
from tests.unit.fakes import Clock, Wired

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
STATUSES: tuple[str, ...] = get_args(PaymentStatus)
OPEN = ("creating", "requires_payment_method", "requires_confirmation", "requires_action", "processing")


def payment(status: str, **changes: Any) -> Payment:
    base = Payment(
        id="pay1",
        booking_id="b1",
        event_id="e1",
        company_id="c1",
        user_id="u1",
        attempt=1,
        amount=5000,
        currency="EUR",
        status=status,  # type: ignore[arg-type]
        provider="stripe",
        idempotency_key="b1:attempt-1",
        created_at=NOW,
        updated_at=NOW,
    )
    return replace(base, **changes)


def booking(status: str = "pending_payment", expires_at: datetime = NOW + timedelta(minutes=10)) -> Booking:
    return Booking(
        id="b1",
        event_id="e1",
        company_id="c1",
        user_id="u1",
        buyer_subject="sub1",
        quantity=2,
        unit_price=2500,
        total_cost=5000,
        currency="EUR",
        status=status,  # type: ignore[arg-type]
        booking_time=NOW,
        expires_at=expires_at,
        updated_at=NOW,
        history=({"status": "pending_payment", "at": NOW.isoformat(), "reason": "held"},),
    )


# ---- Payment.can_become -----------------------------------------------------------------------------


@pytest.mark.parametrize("current", STATUSES)
def test_nothing_goes_back_to_creating_and_staying_put_is_no_change(current: str) -> None:
    assert not payment(current).can_become("creating")
    assert not payment(current).can_become(current)  # type: ignore[arg-type]


@pytest.mark.parametrize("target", STATUSES)
def test_succeeded_only_becomes_refunded(target: str) -> None:
    assert payment("succeeded").can_become(target) is (target == "refunded")  # type: ignore[arg-type]


@pytest.mark.parametrize("target", STATUSES)
def test_refunded_is_final(target: str) -> None:
    assert not payment("refunded").can_become(target)  # type: ignore[arg-type]


@pytest.mark.parametrize("current", [*OPEN, "failed"])
def test_an_open_or_failed_attempt_can_still_succeed(current: str) -> None:
    """Money the provider took is always recorded, even after a decline was (a late retry)."""
    assert payment(current).can_become("succeeded")


@pytest.mark.parametrize(
    ("current", "target"),
    [
        ("creating", "requires_payment_method"),
        ("creating", "requires_confirmation"),
        ("creating", "failed"),
        ("requires_payment_method", "processing"),
        ("requires_confirmation", "requires_action"),
        ("requires_action", "processing"),
        ("processing", "failed"),
        ("requires_payment_method", "canceled"),
    ],
)
def test_provider_progress_is_accepted(current: str, target: str) -> None:
    assert payment(current).can_become(target)  # type: ignore[arg-type]


def test_moving_and_flagging_keep_the_rest() -> None:
    later = NOW + timedelta(seconds=5)
    moved = payment("processing").moved_to("succeeded", later, transaction_id="pi_1")
    assert (moved.status, moved.updated_at, moved.transaction_id, moved.amount) == ("succeeded", later, "pi_1", 5000)
    flagged = moved.flagged("look at this", later)
    assert (flagged.status, flagged.attention) == ("succeeded", "look at this")


# ---- Booking.status_at -------------------------------------------------------------------------------


def test_a_pending_booking_is_pending_until_its_hold_ends() -> None:
    held = booking(expires_at=NOW + timedelta(seconds=1))
    assert held.status_at(NOW) == "pending_payment"


@pytest.mark.parametrize("after", [timedelta(0), timedelta(microseconds=1), timedelta(days=3)])
def test_a_pending_booking_is_expired_from_the_end_of_its_hold(after: timedelta) -> None:
    held = booking(expires_at=NOW)
    assert held.status_at(NOW + after) == "expired"


@pytest.mark.parametrize("status", [s for s in get_args(BookingStatus) if s != "pending_payment"])
def test_other_states_do_not_change_with_time(status: str) -> None:
    settled = booking(status, expires_at=NOW)
    for moment in (NOW - timedelta(hours=1), NOW, NOW + timedelta(days=30)):
        assert settled.status_at(moment) == status


def test_moving_a_booking_records_why() -> None:
    confirmed = booking().moved_to("confirmed", NOW, "paid")
    assert confirmed.status == "confirmed"
    assert confirmed.history[-1] == {"status": "confirmed", "at": NOW.isoformat(), "reason": "paid"}
    assert len(confirmed.history) == 2


# ---- the processing grace (Paying and PaymentLedger with in-memory stand-ins) -------------------------

BUYER = Principal(user_id="u1", role="user", company_id=None)


def hold_and_pay_processing(clock: Clock, hold_ttl: timedelta) -> tuple[Wired, Booking]:
    """A buyer holds two tickets and pays with a method that settles later (SEPA Direct Debit)."""
    app = Wired(hold_ttl=hold_ttl, grace=timedelta(minutes=15))
    starts = clock.now() + timedelta(days=30)
    app.events.add(
        Event(
            id="e1",
            company_id="c1",
            name="Concert",
            description=None,
            event_date=starts.date(),
            event_time=starts.time().replace(microsecond=0),
            timezone="UTC",
            venue="Hall",
            location_lat=52.5,
            location_long=13.4,
            capacity=10,
            base_price=2500,
            surge_price=2500,
            surge_threshold=0.9,
            currency="EUR",
            max_tickets_per_booking=4,
            status="published",
            version=1,
            created_at=clock.now(),
            updated_at=clock.now(),
        )
    )
    held, _ = app.holding.hold(lambda: BUYER, "sub1", HoldRequest("e1", 2))
    app.gateway.will("process")
    paid, outcome = app.paying.pay(BUYER, PayRequest(held.id, "pm_sepa"))
    assert (paid.status, outcome) == ("processing", "created")
    return app, held


def test_a_processing_payment_extends_a_short_hold_once(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock(monkeypatch)
    app, held = hold_and_pay_processing(clock, timedelta(seconds=30))

    extended = app.booking_of(held.id)
    assert extended.status == "pending_payment"
    assert extended.expires_at == clock.now() + timedelta(minutes=15)
    assert extended.history[-1]["reason"] == "payment processing"
    assert [c.held_until for c in app.claims_of(extended)] == [extended.expires_at] * 2, "the tickets are held as long"
    assert app.bookings.buyer_holds("e1", "u1").pending == {held.id: extended.expires_at}
    [grace] = [e for e in app.store.events_of(held.id) if e.action == "booking.extended"]
    assert grace.changes["expires_at"][1] == extended.expires_at.isoformat().replace("+00:00", "Z")
    assert grace.actor == Actor.user("u1")
    assert app.expiry.scheduled[held.id] == extended.expires_at, "an expiry task at the new time"

    clock.advance(timedelta(minutes=1))
    second, outcome = app.paying.pay(BUYER, PayRequest(held.id, "pm_sepa"))

    assert (second.status, outcome) == ("processing", "joined")
    assert app.store.actions(held.id).count("booking.extended") == 1, "once per booking"
    assert app.booking_of(held.id).expires_at == extended.expires_at


def test_the_grace_never_shortens_a_longer_hold(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock(monkeypatch)
    app, held = hold_and_pay_processing(clock, timedelta(hours=2))

    assert "booking.extended" not in app.store.actions(held.id)
    assert app.booking_of(held.id).expires_at == held.expires_at
