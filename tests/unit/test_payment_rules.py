"""The payment and booking rules that money depends on, without Firestore or Stripe.

Payment.can_become: a payment never moves backwards (nothing returns to `creating`, `succeeded` only
becomes `refunded`, `refunded` is final). Booking.status_at: a pending booking past its end is
expired on every read. The processing grace: a payment the provider is still processing keeps its
booking's hold once, for a bounded time (PaymentService with in-memory stand-ins).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, get_args

import pytest

from shared.dal.inventory import Claim
from shared.models import Booking, BookingStatus, Payment, PaymentStatus
from shared.payments.gateway import Intent
from shared.services.identity import Principal
from shared.services.payments import PaymentRules, PaymentService

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


# ---- the processing grace (PaymentService with in-memory stand-ins) ---------------------------------


class Stores:
    """Payments, bookings and claims in memory, with the update-time checks of the real DALs."""

    def __init__(self, held: Booking) -> None:
        self.bookings: dict[str, tuple[Booking, int]] = {held.id: (held, 1)}
        self.payments_: dict[str, tuple[Payment, int]] = {}
        self.claims = [Claim(n, "held", held.id, held.expires_at, 1) for n in range(held.quantity)]
        self.extensions = 0

    # BookingStore
    def get(self, booking_id: str) -> tuple[Booking, Any] | None:
        return self.bookings.get(booking_id)

    def idempotency(self, key_id: str) -> None:
        return None

    def extend_hold(self, after: Booking, update_time: Any, claims: list[Claim]) -> None:
        assert self.bookings[after.id][1] == update_time
        self.bookings[after.id] = (after, update_time + 1)
        self.claims = [replace(c, held_until=after.expires_at) for c in claims]
        self.extensions += 1

    # Claims
    def claims_of(self, event_id: str, booking_id: str) -> list[Claim]:
        return [c for c in self.claims if c.booking_id == booking_id]


class PaymentStoreFake:
    def __init__(self, stores: Stores) -> None:
        self.stores = stores

    def get(self, payment_id: str) -> tuple[Payment, Any] | None:
        return self.stores.payments_.get(payment_id)

    def begin(self, counted: Booking, update_time: Any, new: Payment, record: Any) -> None:
        assert self.stores.bookings[counted.id][1] == update_time
        self.stores.bookings[counted.id] = (counted, update_time + 1)
        self.stores.payments_[new.id] = (new, 1)

    def save(self, changed: Payment, update_time: Any, messages: Any = ()) -> None:
        assert self.stores.payments_[changed.id][1] == update_time
        self.stores.payments_[changed.id] = (changed, update_time + 1)


class ProcessingGateway:
    """Confirms every intent into `processing` (an async payment method, such as SEPA Direct Debit)."""

    name = "stripe"

    def __init__(self) -> None:
        self.created = 0

    def create_intent(self, *, amount: int, currency: str, metadata: dict[str, str], **_: Any) -> Intent:
        self.created += 1
        return Intent(f"pi_{self.created}", "requires_confirmation", amount, currency, "secret", metadata)

    def confirm_intent(self, intent_id: str, *, idempotency_key: str) -> Intent:
        return Intent(intent_id, "processing", 5000, "EUR", "secret", {})


class Relay:
    def deliver(self, messages: list[Any]) -> int:
        return len(messages)


def service(stores: Stores, grace: timedelta) -> PaymentService:
    gateway = ProcessingGateway()
    return PaymentService(
        PaymentStoreFake(stores),  # type: ignore[arg-type]
        stores,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        stores,
        None,  # type: ignore[arg-type]
        lambda: gateway,  # type: ignore[arg-type,return-value]
        Relay(),  # type: ignore[arg-type]
        PaymentRules(processing_grace=grace),
    )


BUYER = Principal(user_id="u1", role="user", company_id=None)


def test_a_processing_payment_extends_a_short_hold_once() -> None:
    start = datetime.now(UTC)
    stores = Stores(booking(expires_at=start + timedelta(seconds=30)))
    payments = service(stores, timedelta(minutes=15))

    first = payments.pay(BUYER, "b1", "pm_sepa", None)

    assert first.status == "processing"
    extended = stores.bookings["b1"][0]
    assert extended.status == "pending_payment"
    assert start + timedelta(minutes=14) < extended.expires_at <= datetime.now(UTC) + timedelta(minutes=15)
    assert extended.history[-1]["reason"] == "payment processing"
    assert all(c.held_until == extended.expires_at for c in stores.claims), "the tickets are held as long"

    second = payments.pay(BUYER, "b1", "pm_sepa", None)

    assert second.status == "processing"
    assert stores.extensions == 1, "once per booking"
    assert stores.bookings["b1"][0].expires_at == extended.expires_at


def test_the_grace_never_shortens_a_longer_hold() -> None:
    far = datetime.now(UTC) + timedelta(hours=2)
    stores = Stores(booking(expires_at=far))

    service(stores, timedelta(minutes=15)).pay(BUYER, "b1", "pm_sepa", None)

    assert stores.extensions == 0
    assert stores.bookings["b1"][0].expires_at == far
