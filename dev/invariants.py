"""The system's invariants, checked against the real stores: Firestore and the payment provider.

One module, used by the end-to-end tests, the race matrix and the flash-sale benchmark. It reads the
stored documents and localstripe's PaymentIntents and Refunds directly (never the API, never the
service's own DALs or models), so a bug in the service's view of its data cannot hide a bug in the
data. The rules (`RULES` holds the same list):

- `capacity`: for every event, tickets sold + held <= capacity, and no live claim sits at or above
  the capacity (a live claim is a sold one, or a held one whose `held_until` is still ahead).
- `slot_twice`: no ticket slot is claimed twice by live claims (one claim document per slot, at the
  slot's own document id, is what makes that so: a claim written elsewhere that lands on a slot
  already claimed is reported here).
- `charge_booking`: every charge the provider kept (a succeeded PaymentIntent not refunded in full)
  is exactly one confirmed booking: the booking exists, is confirmed, the payment that confirmed it
  (`paid_by`) is that charge, for the booking's price; every confirmed booking is such a charge;
  every other charge is refunded in full.
- `charged_twice`: no booking has more than one kept charge.
- `visible`: every booking and payment is in a state a person can see: a known status; a payment
  stuck before the provider answered (`creating`), a payment of no booking, or a payment whose
  record disagrees with the provider is listed for the admins (`attention` set, and the
  `needs_attention` index field that `GET /v1/attention` queries agrees with it); a booking's
  latest payment exists.
- `inventory`: the stored inventory adds up. Every claim is well formed and at its slot's document;
  it names a booking of its event that exists; a confirmed booking owns exactly `quantity` sold
  claims; a live pending booking owns exactly `quantity` held claims, held until its `expires_at`
  (extended together when a payment is processing); a pending booking past its hold and a released
  booking (expired, cancelled, refunded) own no live claim; no retired slot lies below the capacity
  (a ticket nobody could sell); a buyer's pending-holds record (the per-buyer cap) lists exactly
  their live pending bookings, each until its `expires_at`.
- `email`: the confirmation email went out once per confirmed booking: its notification record
  says `sent`, and with `mail_dir` (the local SMTP sink's folder) exactly one message names it; a
  booking that was confirmed and then refunded got at most one; a booking never confirmed got none.
- `tickets`: every confirmed booking has exactly `quantity` tickets, numbered 1..quantity, each
  valid or checked in; every refunded booking's tickets are revoked; a booking never confirmed has
  none; a checked-in ticket says when, a valid one does not; no ticket is checked in twice (the
  stream holds at most one `ticket.checked_in` per ticket).
- `promo`: uses of a code <= `max_uses`; each live booking with a code holds exactly one use of
  it and costs what the code says (dev/invariants_promo.py has the details).
- `waitlist`: one live entry per buyer; offers in join order, each matching its booking; nobody
  who did not wait got tickets while someone waited (dev/invariants_waitlist.py has the details).
- `cancel`: once a cancelled event's fan-out settled, no charge of its bookings is kept, none is
  pending or confirmed and every ticket is revoked, unless the refund failed and its payment is in
  the attention list; each buyer it found live was told once (dev/invariants_cancel.py).
- `quiet` (only with `settle` > 0): the system came to rest within `settle` seconds.

When to call it: once the system is quiet. Some states are legitimately transient: a payment
in flight (`creating`, `processing`, a refund under way), a succeeded payment the finaliser has not
confirmed yet, a provider charge whose webhook has not arrived, a domain event awaiting the relay to
Pub/Sub, a confirmed booking whose email has not gone yet. `in_flight` lists them; `check(...,
settle=s)` waits up to `s` seconds for none to be left and for the rules to hold (re-reading every
`interval`), and reports what is still in flight as `quiet` violations if the time runs out. With
`settle=0` (the default) the caller says the system is quiet, and the stores are judged as they are.
Time itself is not a transition to wait for: a pending booking past `expires_at` is expired whether
or not the expiry task has run, and `now` is taken after the reads, so an expiry that lands during
the reads is judged consistently.

Scope: `event_ids` limits every read to those events (their bookings, payments, claims, buyers'
records, and the provider's intents whose metadata names one of their bookings or payments), so
that tests sharing one stack see only their own data. Without it, everything stored is checked.
"""

from __future__ import annotations

import email
import email.policy
import re
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

from dev import invariants_cancel, invariants_promo, invariants_waitlist
from dev.stored import at as _at
from shared.dal.inventory import slot_id
from shared.dal.records import SOLD_UNTIL
from shared.models import BookingStatus, PaymentStatus

if TYPE_CHECKING:
    import stripe

    from dev.stack import Stack

RULES = {
    "capacity": "for every event, tickets sold + held <= capacity",
    "slot_twice": "no ticket slot in two live claims",
    "charge_booking": "every kept charge is exactly one confirmed booking, and every other charge is refunded",
    "charged_twice": "no booking is charged twice",
    "visible": "every booking and payment is in a state a person can see (the buyer, or the admin's attention list)",
    "inventory": "the stored inventory adds up",
    "email": "the confirmation email went out once per confirmed booking",
    "tickets": "a confirmed booking has quantity valid tickets, a refunded one revoked ones, none checked in twice",
    invariants_promo.RULE: invariants_promo.DESCRIPTION,
    invariants_waitlist.RULE: invariants_waitlist.DESCRIPTION,
    invariants_cancel.RULE: invariants_cancel.DESCRIPTION,
    "quiet": "the system came to rest within the settle time",
}
BOOKING_STATUSES = set(get_args(BookingStatus))
RELEASED = {"expired", "cancelled", "refunded"}
PAYMENT_STATUSES = set(get_args(PaymentStatus))  # nested Literals flatten: "creating" and the public ones
CLAIM_STATES = {"held", "sold", "retired"}
_CONFIRMATION = re.compile(r"your booking (\S+) is confirmed")


@dataclass(frozen=True, order=True)
class Violation:
    rule: str  # one of RULES
    subject: str  # what breaks it: "event/<id>", "booking/<id>", "payment/<id>", "intent/<id>", "slot/<event>/<n>"
    detail: str

    def __str__(self) -> str:
        return f"[{self.rule}] {self.subject}: {self.detail}"


# ---- what is stored ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Claim:
    doc_id: str
    event_id: str
    n: Any
    state: Any
    booking_id: Any
    held_until: datetime | None

    def live(self, now: datetime) -> bool:
        """Keeps a ticket from being sold: sold, or held until later than now."""
        if self.state == "sold":
            return True
        return self.state == "held" and self.held_until is not None and self.held_until > now

    @property
    def where(self) -> str:
        return f"slot/{self.event_id}/{self.n}"


@dataclass(frozen=True)
class _Intent:
    id: str
    status: str
    amount: int
    currency: str
    booking_id: str | None
    payment_id: str | None
    refunded: int  # amount refunded (succeeded refunds)

    @property
    def kept(self) -> bool:
        """Money the provider took and did not give back (all of it, or some)."""
        return self.status == "succeeded" and self.refunded < self.amount

    @property
    def refunded_in_full(self) -> bool:
        return self.status == "succeeded" and self.refunded >= self.amount

    def describe(self) -> str:
        refunded = f", {self.refunded} refunded" if self.refunded else ""
        return f"{self.id} ({self.status}, {self.amount} {self.currency.upper()}{refunded})"


@dataclass
class _Snapshot:
    events: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    claims: dict[str, list[_Claim]] = field(default_factory=dict)
    buyers: dict[str, dict[str, dict[str, datetime]]] = field(default_factory=dict)  # event -> user -> pending
    bookings: dict[str, dict[str, Any]] = field(default_factory=dict)  # the events' bookings
    elsewhere: dict[str, dict[str, Any] | None] = field(default_factory=dict)  # other bookings claims name
    payments: dict[str, dict[str, Any]] = field(default_factory=dict)
    notifications: dict[str, str | None] = field(default_factory=dict)  # booking id -> state
    awaiting_relay: list[dict[str, Any]] = field(default_factory=list)
    intents: dict[str, _Intent] = field(default_factory=dict)
    emails: Counter[str] | None = None  # booking id -> confirmation messages in the sink
    tickets: dict[str, dict[str, Any]] = field(default_factory=dict)  # the events' tickets by id
    check_ins: Counter[str] = field(default_factory=Counter)  # ticket id -> ticket.checked_in events
    promos: dict[str, Any] = field(default_factory=dict)  # event -> invariants_promo.read(...)
    waitlists: dict[str, Any] = field(default_factory=dict)  # event -> invariants_waitlist.read(...)
    cancels: dict[str, dict[str, str | None]] = field(default_factory=dict)  # event -> invariants_cancel.read


def _read(db: Any, provider: Any, event_ids: Iterable[str] | None, mail_dir: Path | None) -> _Snapshot:
    from google.cloud.firestore_v1.base_query import FieldFilter

    snap = _Snapshot()
    if event_ids is None:
        stored = {s.id for s in db.collection("events").select([]).stream()}
        stored |= {str((s.to_dict() or {}).get("event_id")) for s in db.collection("bookings").stream()}
        scope = sorted(stored)
    else:
        scope = sorted(set(event_ids))
    refs = [db.collection("events").document(e) for e in scope]
    found = {s.id: s.to_dict() for s in db.get_all(refs) if s.exists} if refs else {}
    for event_id in scope:
        snap.events[event_id] = found.get(event_id)
        event_ref = db.collection("events").document(event_id)
        snap.claims[event_id] = [_claim(event_id, s) for s in event_ref.collection("slots").stream()]
        snap.promos[event_id] = invariants_promo.read(db, event_id)
        snap.waitlists[event_id] = invariants_waitlist.read(db, event_id)
        snap.buyers[event_id] = {
            s.id: {str(k): t for k, v in ((s.to_dict() or {}).get("pending") or {}).items() if (t := _at(v))}
            for s in event_ref.collection("buyers").stream()
        }
        by_event = FieldFilter("event_id", "==", event_id)
        for s in db.collection("bookings").where(filter=by_event).stream():
            snap.bookings[s.id] = s.to_dict() or {}
        for s in db.collection("payments").where(filter=by_event).stream():
            snap.payments[s.id] = s.to_dict() or {}
        for s in db.collection("tickets").where(filter=by_event).stream():
            snap.tickets[s.id] = s.to_dict() or {}
        checked_in = FieldFilter("action", "==", "ticket.checked_in")
        for s in db.collection("domain_events").where(filter=by_event).where(filter=checked_in).stream():
            snap.check_ins[str((s.to_dict() or {}).get("object_id"))] += 1
    named = {c.booking_id for cs in snap.claims.values() for c in cs if isinstance(c.booking_id, str)}
    named |= {str(p.get("booking_id")) for p in snap.payments.values()}
    others = sorted(named - set(snap.bookings))
    if others:
        got = {s.id: s.to_dict() for s in db.get_all([db.collection("bookings").document(b) for b in others])}
        snap.elsewhere = {b: got.get(b) for b in others}
    if snap.bookings:
        refs = [db.collection("notifications").document(f"{b}-confirmation") for b in snap.bookings]
        states = {s.id.removesuffix("-confirmation"): (s.to_dict() or {}).get("state") for s in db.get_all(refs)}
        snap.notifications = {b: states.get(b) for b in snap.bookings}
    for event_id in scope:
        mine = [b for b, d in snap.bookings.items() if d.get("event_id") == event_id]
        snap.cancels[event_id] = invariants_cancel.read(db, snap.events.get(event_id), mine)
    in_scope = set(scope)
    relay = db.collection("domain_events").where(filter=FieldFilter("relay_due", "<=", SOLD_UNTIL))
    snap.awaiting_relay = [d for s in relay.stream() if (d := s.to_dict() or {}).get("event_id") in in_scope]
    snap.intents = _read_intents(provider, set(snap.bookings), set(snap.payments), everything=event_ids is None)
    if mail_dir is not None:
        snap.emails = _confirmations(mail_dir)
    return snap


def _claim(event_id: str, snap: Any) -> _Claim:
    doc = snap.to_dict() or {}
    return _Claim(snap.id, event_id, doc.get("n"), doc.get("state"), doc.get("booking_id"), _at(doc.get("held_until")))


def _read_intents(provider: Any, bookings: set[str], payments: set[str], *, everything: bool) -> dict[str, _Intent]:
    """The provider's PaymentIntents about these bookings or payments, with what was refunded of each."""
    listed = [i.to_dict() for i in provider.v1.payment_intents.list(params={"limit": 100}).auto_paging_iter()]
    refunds = [r.to_dict() for r in provider.v1.refunds.list(params={"limit": 100}).auto_paging_iter()]
    charge_of: dict[str, str] = {}
    for intent in listed:
        charge = intent.get("latest_charge")
        charge_id = charge.get("id") if isinstance(charge, dict) else charge
        if isinstance(charge_id, str):
            charge_of[charge_id] = str(intent["id"])
    refunded: Counter[str] = Counter()
    for refund in refunds:
        if refund.get("status") not in (None, "succeeded"):
            continue
        intent_id = refund.get("payment_intent") or charge_of.get(str(refund.get("charge")))
        if intent_id:
            refunded[str(intent_id)] += int(refund.get("amount") or 0)
    intents: dict[str, _Intent] = {}
    for intent in listed:
        metadata = intent.get("metadata") or {}
        booking_id, payment_id = metadata.get("booking_id"), metadata.get("payment_id")
        if everything or booking_id in bookings or payment_id in payments:
            intents[str(intent["id"])] = _Intent(
                id=str(intent["id"]),
                status=str(intent.get("status")),
                amount=int(intent.get("amount") or 0),
                currency=str(intent.get("currency") or ""),
                booking_id=booking_id,
                payment_id=payment_id,
                refunded=refunded[str(intent["id"])],
            )
    return intents


_PARSED: dict[Path, str | None] = {}  # an .eml file -> the booking it confirms (messages are never rewritten)


def _confirmations(mail_dir: Path) -> Counter[str]:
    counts: Counter[str] = Counter()
    if not mail_dir.is_dir():
        return counts
    for path in sorted(mail_dir.glob("*.eml")):
        if path not in _PARSED:
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            body = message.get_body(preferencelist=("plain",)) if isinstance(message, EmailMessage) else None
            match = _CONFIRMATION.search(str(body.get_content())) if body is not None else None
            _PARSED[path] = match.group(1) if match else None
        booking_id = _PARSED[path]
        if booking_id:
            counts[booking_id] += 1
    return counts


# ---- what is in flight ------------------------------------------------------------------------------


def _in_flight(snap: _Snapshot) -> list[str]:
    """What a quiet system has no more of (each is transient, and each has a job that ends it)."""
    busy: list[str] = []
    for pid, p in sorted(snap.payments.items()):
        status = p.get("status")
        if status in ("creating", "processing"):
            busy.append(f"payment/{pid} is {status}")
        elif status == "succeeded" and p.get("refund_started_at") is not None:
            busy.append(f"payment/{pid} is being refunded")
        elif status == "succeeded":
            booking = snap.bookings.get(str(p.get("booking_id"))) or snap.elsewhere.get(str(p.get("booking_id")))
            if booking is not None and not (booking.get("status") == "confirmed" and booking.get("paid_by") == pid):
                busy.append(f"payment/{pid} succeeded; its booking is {booking.get('status')} (finaliser to run)")
    for intent in snap.intents.values():
        payment = snap.payments.get(intent.payment_id or "")
        if intent.status == "processing":
            busy.append(f"intent/{intent.id} is processing at the provider")
        elif intent.kept and payment is not None and payment.get("status") not in ("succeeded", "refunded"):
            busy.append(f"intent/{intent.id} succeeded; payment/{payment.get('id')} is {payment.get('status')}")
    now = datetime.now(UTC)
    for event_id, (entries, _members) in snap.waitlists.items():
        stored = snap.events.get(event_id) or {}
        free = int(stored.get("capacity") or 0) - sum(1 for c in snap.claims.get(event_id, []) if c.live(now))
        if stored.get("status") == "published":
            busy += invariants_waitlist.stalled(event_id, entries, free)
        live = [e for e in entries.values() if e.get("status") in ("waiting", "offered")]
        if stored.get("status") == "cancelled" and live:
            busy.append(f"event/{event_id} is cancelled; {len(live)} waitlist entries still live")
    grouped = invariants_promo.by_event(snap.bookings)
    for event_id, event in snap.events.items():
        busy += invariants_cancel.in_flight(event_id, event, grouped.get(event_id, {}), snap.payments)
    for record in snap.awaiting_relay:
        busy.append(f"domain event {record.get('id')} ({record.get('action')}) awaits the relay")
    for bid, b in sorted(snap.bookings.items()):
        if b.get("status") == "confirmed" and snap.notifications.get(bid) != "sent":
            busy.append(f"booking/{bid} is confirmed; its email is {snap.notifications.get(bid) or 'not sent'}")
    return busy


# ---- the rules ----------------------------------------------------------------------------------


def _judge(snap: _Snapshot, now: datetime) -> list[Violation]:
    found: list[Violation] = []
    found += _inventory_and_capacity(snap, now)
    found += _money(snap)
    found += _visible(snap)
    found += _emails(snap)
    found += _tickets(snap)
    grouped = invariants_promo.by_event(snap.bookings)
    for event_id, promos in snap.promos.items():
        found += [Violation(*v) for v in invariants_promo.judge(event_id, promos, grouped.get(event_id, {}), now)]
    for event_id, (entries, members) in snap.waitlists.items():
        found += [
            Violation(*v) for v in invariants_waitlist.judge(event_id, entries, members, grouped.get(event_id, {}))
        ]
    for event_id, notices in snap.cancels.items():
        mine = grouped.get(event_id, {})
        tickets = {t: d for t, d in snap.tickets.items() if d.get("booking_id") in mine}
        found += [
            Violation(*v)
            for v in invariants_cancel.judge(
                event_id, snap.events.get(event_id), mine, snap.payments, tickets, snap.intents.values(), notices
            )
        ]
    return sorted(set(found))


def _tickets(snap: _Snapshot) -> list[Violation]:
    out: list[Violation] = []
    by_booking: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for ticket_id, ticket in snap.tickets.items():
        by_booking[str(ticket.get("booking_id"))].append(ticket)
        subject = f"ticket/{ticket_id}"
        status, checked_in_at = ticket.get("status"), ticket.get("checked_in_at")
        if status not in ("valid", "checked_in", "revoked"):
            out.append(Violation("tickets", subject, f"unknown status {status!r}"))
        if status == "checked_in" and checked_in_at is None:
            out.append(Violation("tickets", subject, "checked in, but not when"))
        if status == "valid" and checked_in_at is not None:
            out.append(Violation("tickets", subject, f"valid, yet checked in at {checked_in_at}"))
        if snap.check_ins[ticket_id] > 1:
            out.append(Violation("tickets", subject, f"checked in {snap.check_ins[ticket_id]} times"))
        if ticket.get("booking_id") not in snap.bookings:
            out.append(Violation("tickets", subject, f"of booking {ticket.get('booking_id')}, not one of its event"))
    for booking_id, booking in snap.bookings.items():
        subject, status = f"booking/{booking_id}", booking.get("status")
        tickets = by_booking.get(booking_id, [])
        numbers = sorted(int(t.get("number") or 0) for t in tickets)
        states = sorted(str(t.get("status")) for t in tickets)
        if status in ("confirmed", "refunded") and numbers != list(range(1, int(booking.get("quantity", 0)) + 1)):
            out.append(Violation("tickets", subject, f"{status} with tickets numbered {numbers}"))
        if status == "confirmed" and set(states) - {"valid", "checked_in"}:
            out.append(Violation("tickets", subject, f"confirmed with tickets {states}"))
        if status == "refunded" and set(states) - {"revoked"}:
            out.append(Violation("tickets", subject, f"refunded with tickets {states}"))
        if status not in ("confirmed", "refunded") and tickets:
            out.append(Violation("tickets", subject, f"{status} with {len(tickets)} ticket(s)"))
    return out


def _live_booking(booking: dict[str, Any], now: datetime) -> bool:
    status = booking.get("status")
    expires_at = _at(booking.get("expires_at"))
    return status == "confirmed" or (status == "pending_payment" and expires_at is not None and expires_at > now)


def _inventory_and_capacity(snap: _Snapshot, now: datetime) -> list[Violation]:
    out: list[Violation] = []
    for event_id, event in snap.events.items():
        claims = snap.claims.get(event_id, [])
        bookings = {b: d for b, d in snap.bookings.items() if d.get("event_id") == event_id}
        if event is None:
            if claims or bookings:
                out.append(
                    Violation("inventory", f"event/{event_id}", "claims or bookings of an event that is not stored")
                )
            continue
        capacity = event.get("capacity")
        if not isinstance(capacity, int):
            out.append(Violation("inventory", f"event/{event_id}", f"capacity is {capacity!r}"))
            continue
        out += _claims_well_formed(event_id, claims, capacity, now)
        live = [c for c in claims if c.live(now)]
        if len(live) > capacity:
            out.append(
                Violation("capacity", f"event/{event_id}", f"{len(live)} tickets sold or held, capacity {capacity}")
            )
        for c in live:
            if isinstance(c.n, int) and not 0 <= c.n < capacity:
                out.append(Violation("capacity", c.where, f"a {c.state} ticket outside capacity {capacity}"))
        booked = sum(int(b.get("quantity") or 0) for b in bookings.values() if _live_booking(b, now))
        if booked > capacity:
            out.append(
                Violation("capacity", f"event/{event_id}", f"live bookings hold {booked} tickets, capacity {capacity}")
            )
        out += _claims_per_booking(event_id, claims, bookings, snap, now)
        out += _buyers(event_id, snap.buyers.get(event_id, {}), bookings, now)
    return out


def _claims_well_formed(event_id: str, claims: list[_Claim], capacity: int, now: datetime) -> list[Violation]:
    out: list[Violation] = []
    by_slot: dict[Any, list[_Claim]] = defaultdict(list)
    for c in claims:
        by_slot[c.n if isinstance(c.n, int) else c.doc_id].append(c)
    for c in claims:
        if not isinstance(c.n, int) or c.n < 0:
            out.append(Violation("inventory", f"slot/{event_id}/{c.doc_id}", f"slot number {c.n!r}"))
            continue
        if c.state not in CLAIM_STATES:
            out.append(Violation("inventory", c.where, f"claim state {c.state!r}"))
        elif c.state == "retired":
            if c.booking_id is not None:
                out.append(Violation("inventory", c.where, f"a retired slot names booking {c.booking_id}"))
            if c.n < capacity:
                out.append(
                    Violation("inventory", c.where, f"retired below capacity {capacity}: a ticket nobody can sell")
                )
        elif not isinstance(c.booking_id, str) or c.held_until is None:
            out.append(
                Violation("inventory", c.where, f"a {c.state} claim of booking {c.booking_id!r} until {c.held_until}")
            )
        elif c.state == "sold" and c.held_until != SOLD_UNTIL:
            out.append(Violation("inventory", c.where, f"a sold claim held only until {c.held_until.isoformat()}"))
        if c.doc_id != slot_id(event_id, c.n):
            twins = [t for t in by_slot[c.n] if t is not c and t.live(now)]
            if c.live(now) and twins:
                continue  # reported as slot_twice below
            out.append(Violation("inventory", c.where, f"claim stored as {c.doc_id}, not at its slot's document"))
    for n, same in by_slot.items():
        live = [c for c in same if c.live(now)]
        if len(live) > 1:
            names = ", ".join(f"{c.doc_id} ({c.state}, booking {c.booking_id})" for c in live)
            out.append(Violation("slot_twice", f"slot/{event_id}/{n}", f"{len(live)} live claims: {names}"))
    return out


def _claims_per_booking(
    event_id: str, claims: list[_Claim], bookings: dict[str, dict[str, Any]], snap: _Snapshot, now: datetime
) -> list[Violation]:
    out: list[Violation] = []
    owned: dict[str, list[_Claim]] = defaultdict(list)
    for c in claims:
        if c.state in ("held", "sold") and isinstance(c.booking_id, str):
            owned[c.booking_id].append(c)
    for booking_id, mine in owned.items():
        if booking_id in bookings:
            continue
        other = snap.elsewhere.get(booking_id)
        where = f"booking of event {other.get('event_id')}" if other else "booking that does not exist"
        slots = sorted(c.n for c in mine if isinstance(c.n, int))
        out.append(Violation("inventory", f"booking/{booking_id}", f"slots {slots} of event {event_id} name a {where}"))
    for booking_id, b in bookings.items():
        mine = owned.get(booking_id, [])
        quantity, status = b.get("quantity"), b.get("status")
        expires_at = _at(b.get("expires_at"))
        live_claims = [c for c in mine if c.live(now)]
        shown = sorted(f"{c.n}:{c.state}" for c in mine)
        if status == "confirmed":
            sold = [c for c in mine if c.state == "sold"]
            if len(mine) != quantity or len(sold) != quantity:
                out.append(Violation("inventory", f"booking/{booking_id}", f"confirmed for {quantity}, owns {shown}"))
        elif status == "pending_payment" and expires_at is not None and expires_at > now:
            held = [c for c in mine if c.state == "held" and c.held_until == expires_at]
            if len(mine) != quantity or len(held) != quantity:
                until = sorted({c.held_until.isoformat() for c in mine if c.held_until})
                out.append(
                    Violation(
                        "inventory",
                        f"booking/{booking_id}",
                        f"pending for {quantity} until {expires_at.isoformat()}, owns {shown} until {until}",
                    )
                )
        elif live_claims:
            state = "expired" if status == "pending_payment" else status
            live = sorted(f"{c.n}:{c.state}" for c in live_claims)
            out.append(Violation("inventory", f"booking/{booking_id}", f"{state}, still owns live claims {live}"))
    return out


def _buyers(
    event_id: str, buyers: dict[str, dict[str, datetime]], bookings: dict[str, dict[str, Any]], now: datetime
) -> list[Violation]:
    """The per-buyer cap's records: each buyer's active entries are exactly their live pending bookings."""
    out: list[Violation] = []
    for user_id, pending in buyers.items():
        for booking_id, until in pending.items():
            if until <= now:
                continue  # a hold that ran out: ignored by the cap, dropped by the buyer's next hold
            b = bookings.get(booking_id)
            if b is None or b.get("status") != "pending_payment" or b.get("user_id") != user_id:
                state = "missing" if b is None else f"{b.get('status')} (buyer {b.get('user_id')})"
                out.append(
                    Violation("inventory", f"booking/{booking_id}", f"counted as pending for buyer {user_id}: {state}")
                )
            elif _at(b.get("expires_at")) != until:
                out.append(
                    Violation(
                        "inventory",
                        f"booking/{booking_id}",
                        f"buyer {user_id}'s record says until {until.isoformat()}, the booking {b.get('expires_at')}",
                    )
                )
    for booking_id, b in bookings.items():
        expires_at = _at(b.get("expires_at"))
        if b.get("status") != "pending_payment" or expires_at is None or expires_at <= now:
            continue
        if booking_id not in buyers.get(str(b.get("user_id")), {}):
            out.append(
                Violation("inventory", f"booking/{booking_id}", "live pending booking not counted in its buyer's holds")
            )
    return out


def _money(snap: _Snapshot) -> list[Violation]:
    out: list[Violation] = []
    kept_by_booking: dict[str, list[_Intent]] = defaultdict(list)
    for intent in snap.intents.values():
        if intent.kept:
            payment = snap.payments.get(intent.payment_id or "")
            booking_id = intent.booking_id or (payment or {}).get("booking_id") or "?"
            kept_by_booking[str(booking_id)].append(intent)
    for booking_id, kept in sorted(kept_by_booking.items()):
        if len(kept) > 1:
            charges = ", ".join(i.describe() for i in sorted(kept, key=lambda i: i.id))
            out.append(Violation("charged_twice", f"booking/{booking_id}", f"{len(kept)} charges kept: {charges}"))
            continue
        intent = kept[0]
        b = snap.bookings.get(booking_id) or snap.elsewhere.get(booking_id)
        subject = f"intent/{intent.id}"
        if b is None:
            out.append(Violation("charge_booking", subject, f"kept charge {intent.describe()} of no booking"))
            continue
        if b.get("status") != "confirmed":
            out.append(Violation("charge_booking", subject, f"kept charge, booking {booking_id} is {b.get('status')}"))
            continue
        paying = snap.payments.get(str(b.get("paid_by")))
        if paying is None or paying.get("transaction_id") != intent.id:
            tx = paying.get("transaction_id") if paying else None
            detail = f"kept charge, booking {booking_id} was confirmed by payment {b.get('paid_by')} ({tx})"
            out.append(Violation("charge_booking", subject, detail))
        elif intent.refunded:
            out.append(
                Violation("charge_booking", subject, f"confirmed booking's charge partly refunded: {intent.describe()}")
            )
        elif (intent.amount, intent.currency.upper()) != (b.get("total_cost"), str(b.get("currency")).upper()):
            costs = f"{b.get('total_cost')} {b.get('currency')}"
            out.append(Violation("charge_booking", subject, f"charged {intent.describe()}, the booking costs {costs}"))
    for booking_id, b in sorted(snap.bookings.items()):
        if b.get("status") != "confirmed" or len(kept_by_booking.get(booking_id, [])) > 1:
            continue
        if b.get("paid_by") is None and b.get("total_cost") == 0 and booking_id not in kept_by_booking:
            continue  # nothing to pay (a promo code took it all): confirmed with no charge (rule `promo`)
        paid_by = b.get("paid_by")
        paying = snap.payments.get(str(paid_by))
        subject = f"booking/{booking_id}"
        if paying is None:
            out.append(
                Violation("charge_booking", subject, f"confirmed, paid by payment {paid_by!r} that is not stored")
            )
            continue
        charge = snap.intents.get(str(paying.get("transaction_id")))
        if paying.get("status") != "succeeded":
            out.append(
                Violation("charge_booking", subject, f"confirmed, its payment {paid_by} is {paying.get('status')}")
            )
        elif charge is None:
            tx = paying.get("transaction_id")
            out.append(Violation("charge_booking", subject, f"confirmed, the provider has no charge {tx}"))
        elif not charge.kept:
            out.append(
                Violation("charge_booking", subject, f"confirmed, the provider kept nothing: {charge.describe()}")
            )
    return out


def _visible(snap: _Snapshot) -> list[Violation]:
    out: list[Violation] = []
    for booking_id, b in sorted(snap.bookings.items()):
        if b.get("status") not in BOOKING_STATUSES:
            out.append(Violation("visible", f"booking/{booking_id}", f"status {b.get('status')!r}"))
        latest = b.get("latest_payment_id")
        if latest is not None and latest not in snap.payments:
            out.append(Violation("visible", f"booking/{booking_id}", f"its latest payment {latest} is not stored"))
    for payment_id, p in sorted(snap.payments.items()):
        subject, status = f"payment/{payment_id}", p.get("status")
        attention, flagged = p.get("attention"), p.get("needs_attention")
        if (attention is not None) != (flagged is True):
            detail = (
                f"attention {attention!r} but needs_attention {flagged!r}: GET /v1/attention does not list it right"
            )
            out.append(Violation("visible", subject, detail))
        if status not in PAYMENT_STATUSES:
            out.append(Violation("visible", subject, f"status {status!r}"))
            continue
        if attention is not None and flagged is True:
            continue  # a person is told
        booking_id = str(p.get("booking_id"))
        if booking_id not in snap.bookings and snap.elsewhere.get(booking_id) is None:
            out.append(Violation("visible", subject, f"{status} payment of booking {booking_id}, which is not stored"))
        if status == "creating":
            out.append(Violation("visible", subject, "stuck before the provider answered, and nobody is told"))
            continue
        problem = _disagrees_with_provider(p, snap.intents)
        if problem:
            out.append(Violation("visible", subject, f"{problem}, and nobody is told"))
    return out


def _disagrees_with_provider(payment: dict[str, Any], intents: dict[str, _Intent]) -> str | None:
    status, tx = payment.get("status"), payment.get("transaction_id")
    if tx is None:
        return f"{status} without a provider intent" if status in ("succeeded", "refunded", "processing") else None
    intent = intents.get(str(tx))
    if intent is None:
        return f"{status}, the provider has no intent {tx}"
    said = f"we say {status}, the provider says {intent.describe()}"
    if status == "succeeded" and not (intent.kept and intent.refunded == 0):
        return said
    if status == "refunded" and not intent.refunded_in_full:
        return said
    if status not in ("succeeded", "refunded") and intent.status == "succeeded":
        return said
    return None


def _emails(snap: _Snapshot) -> list[Violation]:
    out: list[Violation] = []
    for booking_id, b in sorted(snap.bookings.items()):
        status = b.get("status")
        ever = status == "confirmed" or any(
            isinstance(h, dict) and h.get("status") == "confirmed" for h in b.get("history") or ()
        )
        record = snap.notifications.get(booking_id)
        sent = None if snap.emails is None else snap.emails.get(booking_id, 0)
        subject = f"booking/{booking_id}"
        if status == "confirmed":
            if record != "sent":
                out.append(Violation("email", subject, f"confirmed, its confirmation is {record or 'not recorded'}"))
            if sent is not None and sent != 1:
                out.append(Violation("email", subject, f"confirmed, {sent} confirmation emails"))
        elif ever:
            if sent is not None and sent > 1:
                out.append(Violation("email", subject, f"{status} after confirmation, {sent} confirmation emails"))
        else:
            if record is not None:
                out.append(Violation("email", subject, f"{status}, never confirmed, confirmation {record}"))
            if sent:
                out.append(Violation("email", subject, f"{status}, never confirmed, {sent} confirmation emails"))
    return out


# ---- the checker --------------------------------------------------------------------------------


def check(
    firestore_client: Any,
    stripe_client: Any,
    *,
    event_ids: Iterable[str] | None = None,
    mail_dir: Path | None = None,
    now: datetime | None = None,
    settle: float = 0.0,
    interval: float = 0.5,
    meanwhile: Callable[[], object] | None = None,
) -> list[Violation]:
    """Every violation of the invariants in the stores, sorted; [] when they hold.

    `settle` > 0: wait up to that many seconds for the system to be quiet and the rules to hold,
    reading again every `interval` seconds; what is still in flight then is reported as `quiet`.
    `meanwhile` runs before each wait: what the deployment's schedulers would do in that time (the
    sweep that publishes what a crashed process left in the outbox).
    `settle` = 0: the caller says the system is quiet; judged once, in-flight states as they are.
    `now` (default: the time right after the reads) decides which holds have run out."""
    scope = None if event_ids is None else sorted(set(event_ids))
    deadline = time.monotonic() + settle
    while True:
        snap = _read(firestore_client, stripe_client, scope, mail_dir)
        at = now or datetime.now(UTC)
        busy = _in_flight(snap) if settle > 0 else []
        violations = [] if busy else _judge(snap, at)
        if not busy and not violations:
            return []
        if time.monotonic() >= deadline:
            if busy:
                violations = _judge(snap, at)
                violations += [Violation("quiet", "system", f"still in flight after {settle:g}s: {b}") for b in busy]
            return sorted(set(violations))
        if meanwhile is not None:
            meanwhile()
        time.sleep(interval)


def in_flight(firestore_client: Any, stripe_client: Any, *, event_ids: Iterable[str] | None = None) -> list[str]:
    """What is still moving in these events (empty: the system is quiet)."""
    scope = None if event_ids is None else sorted(set(event_ids))
    return _in_flight(_read(firestore_client, stripe_client, scope, None))


def assert_holds(
    firestore_client: Any,
    stripe_client: Any,
    *,
    event_ids: Iterable[str] | None = None,
    mail_dir: Path | None = None,
    now: datetime | None = None,
    settle: float = 0.0,
) -> None:
    """check(...), raising AssertionError that lists every violation."""
    violations = check(firestore_client, stripe_client, event_ids=event_ids, mail_dir=mail_dir, now=now, settle=settle)
    if violations:
        listed = "\n".join(f"  {v}" for v in violations)
        raise AssertionError(f"{len(violations)} invariant violation(s):\n{listed}")


def clients_for(stack: Stack) -> tuple[Any, stripe.StripeClient]:
    """A Firestore client for the stack's emulator and a Stripe client for its localstripe."""
    import os
    from unittest import mock

    import stripe
    from google.cloud import firestore

    with mock.patch.dict(os.environ, {"FIRESTORE_EMULATOR_HOST": stack.host("firestore")}):
        db = firestore.Client(project=stack.project)
    return db, stripe.StripeClient("sk_test_local", base_addresses={"api": f"http://{stack.host('stripe')}"})
