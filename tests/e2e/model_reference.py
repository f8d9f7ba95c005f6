"""The reference model for the model-based test (tests/e2e/test_model.py): what the API may answer and
which states each booking may be in, for one event, a few buyers and their bookings.

It is small on purpose. It knows the contract (API.md), not the implementation, and it is generous
exactly where the real system is: time. A pending booking whose hold runs out while a request is
under way may be read either way, so every judgement takes the window [t0, t1] around the request
(the instants just before it was sent and just after its answer) and allows both outcomes for a
hold that ends inside it (plus `EDGE` seconds for rounding). Everything asynchronous (Pub/Sub, the
finaliser, localstripe's webhook) is awaited by the invariant checker's settle before the model is
compared, so the model only predicts where the system comes to rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

EDGE = timedelta(seconds=0.25)  # rounding of stored instants, and the gap between our clock and the server's
PENDING = "pending_payment"
RELEASED = {"expired", "cancelled", "refunded"}
HOLDS_PER_MINUTE = 5  # MAX_HOLDS_PER_BUYER_PER_MINUTE's default


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


@dataclass
class Booking:
    id: str
    buyer: int
    quantity: int
    unit_price: int
    expires_at: datetime
    status: str = PENDING  # where it was last seen at rest (a pending one may have run out since)
    expect: set[str] | None = None  # what the last step allows it to come to rest in (None: unchanged)
    open_payment: dict[str, Any] | None = None  # an attempt waiting for the buyer (client-side confirmation)
    payments: list[dict[str, Any]] = field(default_factory=list)  # every Payment the API returned
    checked_in: set[int] = field(default_factory=set)  # numbers of its tickets admitted at the door

    def live(self, t0: datetime, t1: datetime) -> tuple[bool, bool]:
        """(surely, maybe) this booking keeps its tickets during [t0, t1]."""
        if self.status == "confirmed":
            return True, True
        if self.status != PENDING:
            return False, False
        return self.expires_at > t1 + EDGE, self.expires_at > t0 - EDGE

    def may_read(self, status: str, t0: datetime, t1: datetime) -> set[str]:
        """What a read during [t0, t1] may show for a booking at rest in `status`."""
        if status != PENDING:
            return {status}
        surely, maybe = (self.expires_at > t1 + EDGE, self.expires_at > t0 - EDGE)
        return {PENDING} if surely else ({PENDING, "expired"} if maybe else {"expired"})

    def allowed(self, t0: datetime, t1: datetime) -> set[str]:
        out: set[str] = set()
        for status in self.expect if self.expect is not None else {self.status}:
            out |= self.may_read(status, t0, t1)
        return out


@dataclass
class Model:
    capacity: int
    base_price: int
    surge_price: int
    surge_threshold: float
    version: int
    bookings: dict[str, Booking] = field(default_factory=dict)
    hold_attempts: dict[int, list[datetime]] = field(default_factory=dict)

    def taken(self, t0: datetime, t1: datetime, without: str | None = None) -> tuple[int, int]:
        """(fewest, most) tickets sold or held during [t0, t1]."""
        low = high = 0
        for b in self.bookings.values():
            if b.id == without:
                continue
            surely, maybe = b.live(t0, t1)
            low += b.quantity if surely else 0
            high += b.quantity if maybe else 0
        return low, high

    def free(self, t0: datetime, t1: datetime, without: str | None = None) -> tuple[int, int]:
        low, high = self.taken(t0, t1, without)
        return self.capacity - high, self.capacity - low

    def prices(self, t0: datetime, t1: datetime) -> set[int]:
        low, high = self.taken(t0, t1)
        out = set()
        if high / self.capacity >= self.surge_threshold:
            out.add(self.surge_price)
        if low / self.capacity < self.surge_threshold:
            out.add(self.base_price)
        return out

    def hold_answers(self, buyer: int, quantity: int, t0: datetime, t1: datetime) -> set[str]:
        """What POST /v1/events/{id}/bookings may answer (status and problem code)."""
        free_low, free_high = self.free(t0, t1)
        mine = [b.live(t0, t1) for b in self.bookings.values() if b.buyer == buyer and b.status == PENDING]
        limit_surely = any(surely for surely, _ in mine)
        limit_maybe = any(maybe for _, maybe in mine)
        out = set()
        if free_high >= quantity and not limit_surely:
            out.add("201")
        if free_low < quantity:
            out.add("409 sold_out")
        if limit_maybe:
            out.add("409 booking_limit_reached")
        recent = [t for t in self.hold_attempts.get(buyer, []) if t > t0 - timedelta(seconds=65)]
        if len(recent) >= HOLDS_PER_MINUTE:
            out.add("429 rate_limited")
        return out

    def readable(self, b: Booking, t0: datetime, t1: datetime) -> set[str]:
        return b.may_read(b.status, t0, t1)

    def pay_answers(self, b: Booking, method: str | None, t0: datetime, t1: datetime) -> set[str]:
        out = set()
        states = self.readable(b, t0, t1)
        if PENDING in states:
            if method == "pm_card_visa":
                out.add("201")
            elif method == "pm_card_chargeCustomerFail":
                out.add("402 payment_declined")
            else:  # a client-side attempt: a new one, or the one already waiting for the buyer
                out |= {"200", "201"} if b.open_payment is not None else {"201"}
        if states - {PENDING}:
            out.add("409 booking_not_payable")
        return out

    def cancel_answers(self, b: Booking, t0: datetime, t1: datetime) -> set[str]:
        states = self.readable(b, t0, t1)
        out = set()
        if states & {PENDING, "cancelled"}:
            out.add("200")
        if states - {PENDING, "cancelled"}:
            out.add("409 invalid_state")
        return out

    def refund_answers(self, b: Booking) -> set[str]:
        return {"200"} if b.status in ("confirmed", "refunded") else {"409 invalid_state"}

    def check_in_answers(self, b: Booking, number: int) -> set[str]:
        """What the first of the gates scanning ticket `number` at once may answer."""
        if b.status == "refunded":
            return {"409 ticket_revoked"}
        return {"409 already_checked_in"} if number in b.checked_in else {"200"}

    def capacity_answers(self, capacity: int, t0: datetime, t1: datetime) -> set[str]:
        low, high = self.taken(t0, t1)
        out = set()
        if capacity >= high:
            out.add("200")
        if capacity < low or (low <= capacity < high):
            out.add("409 capacity_below_sold")
        return out

    def late_charge_outcome(self, b: Booking, t0: datetime, t1: datetime) -> set[str]:
        """Where a booking comes to rest once a charge of it succeeds at the provider now."""
        states = self.readable(b, t0, t1)
        out: set[str] = set()
        if PENDING in states:
            out.add("confirmed")
        if "expired" in states:
            # API.md: re-acquires the tickets (confirmed) or, when they are gone, is refunded.
            free_low, free_high = self.free(t0, t1, without=b.id)
            if free_high >= b.quantity:
                out.add("confirmed")
            if free_low < b.quantity:
                out.add("expired")
        out |= states - {PENDING, "expired"}  # cancelled / refunded / confirmed stay; the charge is refunded
        return out
