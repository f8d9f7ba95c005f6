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
    code: str | None = None  # the promo code it carries (one use of it while it is live)
    offer: bool = False  # made by the waitlist for one of its entries
    total: int = 0  # what it costs: unit_price * quantity - the code's discount

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
class Entry:
    """A waitlist entry as last seen at rest."""

    id: str
    buyer: int
    quantity: int
    status: str = "waiting"
    booking_id: str | None = None


@dataclass
class Model:
    capacity: int
    base_price: int
    surge_price: int
    surge_threshold: float
    version: int
    bookings: dict[str, Booking] = field(default_factory=dict)
    hold_attempts: dict[int, list[datetime]] = field(default_factory=dict)
    codes: dict[str, tuple[int, int]] = field(default_factory=dict)  # promo code -> (percent_off, max_uses)
    entries: dict[str, Entry] = field(default_factory=dict)  # the event's waitlist
    cancelled: bool = False  # its organiser cancelled it: nothing is booked, paid or changed any more

    def waiting(self) -> int:
        return sum(1 for e in self.entries.values() if e.status == "waiting")

    def join_answers(self, buyer: int, quantity: int, t0: datetime, t1: datetime) -> set[str]:
        """What POST /v1/events/{id}/waitlist may answer: only while the quantity cannot be booked."""
        if self.cancelled:
            return {"409 event_cancelled"}
        if any(e.buyer == buyer and e.status in ("waiting", "offered") for e in self.entries.values()):
            return {"409 already_waiting"}
        if self.waiting():
            return {"201"}  # the free tickets are the line's
        free_low, free_high = self.free(t0, t1)
        out = set()
        if free_low < quantity:
            out.add("201")
        if free_high >= quantity:
            out.add("409 tickets_available")
        return out

    def leave_answers(self, entry: Entry) -> set[str]:
        return {"200"} if entry.status == "waiting" else {"409 invalid_state"}

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

    def uses(self, code: str, t0: datetime, t1: datetime, without: str | None = None) -> tuple[int, int]:
        """(fewest, most) live bookings that carry `code` during [t0, t1]."""
        low = high = 0
        for b in self.bookings.values():
            if b.code == code and b.id != without:
                surely, maybe = b.live(t0, t1)
                low, high = low + surely, high + maybe
        return low, high

    def discount(self, code: str | None, unit_price: int, quantity: int) -> int:
        return unit_price * quantity * self.codes[code][0] // 100 if code else 0

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

    def hold_answers(self, buyer: int, quantity: int, t0: datetime, t1: datetime, code: str | None = None) -> set[str]:
        """What POST /v1/events/{id}/bookings may answer (status and problem code)."""
        if self.cancelled:
            return {"409 event_cancelled"}  # it wins over any other refusal
        free_low, free_high = self.free(t0, t1)
        uses_low, uses_high = self.uses(code, t0, t1) if code else (0, 0)
        max_uses = self.codes[code][1] if code else 1
        mine = [b.live(t0, t1) for b in self.bookings.values() if b.buyer == buyer and b.status == PENDING]
        limit_surely = any(surely for surely, _ in mine)
        limit_maybe = any(maybe for _, maybe in mine)
        out = set()
        if self.waiting():
            out.add("409 sold_out")  # while anyone waits, freed tickets are the line's
        if free_high >= quantity and not limit_surely and uses_low < max_uses and not self.waiting():
            out.add("201")
        if uses_high >= max_uses:
            out.add("409 promo_code_exhausted")
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
        if self.cancelled:
            return {"409 event_cancelled"}
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
        if self.cancelled:
            return {"409 event_cancelled"}
        low, high = self.taken(t0, t1)
        out = set()
        if capacity >= high:
            out.add("200")
        if capacity < low or (low <= capacity < high):
            out.add("409 capacity_below_sold")
        return out

    def cancel_event_answers(self, if_match: str) -> set[str]:
        """POST /v1/events/{id}/cancel with the current, a stale or no If-Match."""
        if self.cancelled:
            return {"202"}  # a no-op, whatever its If-Match
        return {{"current": "202", "stale": "412 version_conflict", "missing": "428 precondition_required"}[if_match]}

    def after_cancel(self, b: Booking) -> set[str]:
        """Where a booking comes to rest once its event is cancelled: a confirmed one refunded, a
        pending one cancelled (or expired, if its hold ran out first; refunded, if a payment in
        flight confirmed it first)."""
        out: set[str] = set()
        for status in b.expect if b.expect is not None else {b.status}:
            if status == "confirmed":
                out.add("refunded")
            elif status == PENDING:
                out |= {"cancelled", "expired", "refunded"}
            else:
                out.add(status)
        return out

    def late_charge_outcome(self, b: Booking, t0: datetime, t1: datetime) -> set[str]:
        """Where a booking comes to rest once a charge of it succeeds at the provider now."""
        states = self.readable(b, t0, t1)
        out: set[str] = set()
        if self.cancelled:  # never confirmed now: the money goes back, the booking stays where it is
            return (states - {PENDING}) | ({"cancelled"} if PENDING in states else set())
        if PENDING in states:
            out.add("confirmed")
        if "expired" in states:
            # API.md: re-acquires the tickets (confirmed) or, when they are gone, is refunded.
            free_low, free_high = self.free(t0, t1, without=b.id)
            uses_low, uses_high = self.uses(b.code, t0, t1, without=b.id) if b.code else (0, 0)
            max_uses = self.codes[b.code][1] if b.code else 1
            if free_high >= b.quantity and uses_low < max_uses:
                out.add("confirmed")
            if free_low < b.quantity or uses_high >= max_uses:
                out.add("expired")  # the tickets or the code's uses are gone: refunded
        out |= states - {PENDING, "expired"}  # cancelled / refunded / confirmed stay; the charge is refunded
        return out
