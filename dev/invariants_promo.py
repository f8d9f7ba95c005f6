"""The promo code rules of the invariant checker (dev/invariants.py reads and reports them).

- `promo`: uses of a code <= `max_uses`, and no live use outside the code's slot range; every
  live booking (pending and unexpired, or confirmed) that carries a code owns exactly one live use
  of it (held until the booking's `expires_at`, or sold when it is confirmed); a booking that is
  released or past its hold owns none; every live use names such a booking; each use sits at its
  slot's own document; a booking's `total_cost` is `unit_price * quantity - discount`, with the
  discount the code's formula of API.md (`discount` 0 without a code); a confirmed booking that
  paid nothing costs 0; no use slot below `max_uses` is retired (a use nobody could take).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dev.stored import at as _at
from shared.dal.inventory import slot_id

RULE = "promo"
DESCRIPTION = "uses of a code <= max_uses, each live booking with a code holds one use, and it costs what the code says"


@dataclass(frozen=True)
class Use:
    doc_id: str
    n: Any
    state: Any
    booking_id: Any
    held_until: datetime | None

    def live(self, now: datetime) -> bool:
        if self.state == "sold":
            return True
        return self.state == "held" and self.held_until is not None and self.held_until > now


def read(db: Any, event_id: str) -> dict[str, tuple[dict[str, Any], list[Use]]]:
    """code -> (its document, its use claims), for one event."""
    found: dict[str, tuple[dict[str, Any], list[Use]]] = {}
    codes = db.collection("events").document(event_id).collection("promo_codes")
    for snap in codes.stream():
        uses = []
        for u in snap.reference.collection("uses").stream():
            d = u.to_dict() or {}
            uses.append(Use(u.id, d.get("n"), d.get("state"), d.get("booking_id"), _at(d.get("held_until"))))
        doc = snap.to_dict() or {}
        found[str(doc.get("code", snap.id))] = (doc, uses)
    return found


def judge(
    event_id: str,
    promos: dict[str, tuple[dict[str, Any], list[Use]]],
    bookings: dict[str, dict[str, Any]],
    now: datetime,
) -> list[tuple[str, str, str]]:
    """(rule, subject, detail) of every violation in one event."""
    out: list[tuple[str, str, str]] = []
    for code, (doc, uses) in sorted(promos.items()):
        subject = f"promo/{event_id}/{code}"
        limit = doc.get("max_uses")
        live = [u for u in uses if u.live(now)]
        if isinstance(limit, int) and len(live) > limit:
            out.append((RULE, subject, f"{len(live)} live uses, max_uses {limit}"))
        for u in uses:
            if u.doc_id != slot_id(f"{event_id}:{code}", u.n if isinstance(u.n, int) else -1):
                out.append((RULE, subject, f"use {u.doc_id} is not at its slot's document (n={u.n!r})"))
            if u.state == "retired" and isinstance(limit, int) and isinstance(u.n, int) and u.n < limit:
                out.append((RULE, subject, f"use slot {u.n} is retired below max_uses {limit}: a use nobody can take"))
            if u.live(now) and isinstance(limit, int) and isinstance(u.n, int) and not 0 <= u.n < limit:
                out.append((RULE, subject, f"a live use at slot {u.n}, outside max_uses {limit}"))
            owner = bookings.get(str(u.booking_id))
            if u.live(now) and (owner is None or owner.get("promo_code") != code):
                out.append(
                    (RULE, subject, f"live use {u.n} names booking {u.booking_id}, which does not carry the code")
                )
    for booking_id, b in sorted(bookings.items()):
        out += _booking(booking_id, b, promos, now)
    return out


def _booking(
    booking_id: str, b: dict[str, Any], promos: dict[str, tuple[dict[str, Any], list[Use]]], now: datetime
) -> list[tuple[str, str, str]]:
    out: list[tuple[str, str, str]] = []
    subject = f"booking/{booking_id}"
    code, discount = b.get("promo_code"), int(b.get("discount") or 0)
    unit, quantity, total = int(b.get("unit_price") or 0), int(b.get("quantity") or 0), b.get("total_cost")
    if total != unit * quantity - discount or discount < 0 or (total or 0) < 0:
        out.append((RULE, subject, f"costs {total}, but {unit} x {quantity} - {discount}"))
    if b.get("status") == "confirmed" and b.get("paid_by") is None and total != 0:
        out.append((RULE, subject, f"confirmed with no payment, yet it costs {total}"))
    if code is None:
        if discount:
            out.append((RULE, subject, f"a discount of {discount} without a code"))
        return out
    if code not in promos:
        return [*out, (RULE, subject, f"carries code {code}, which its event does not have")]
    doc, uses = promos[code]
    percent, amount = doc.get("percent_off"), doc.get("amount_off")
    expected = unit * quantity * percent // 100 if percent is not None else min(int(amount or 0), unit) * quantity
    if discount != expected:
        out.append((RULE, subject, f"discount {discount}, code {code} gives {expected}"))
    mine = [u for u in uses if u.booking_id == booking_id and u.live(now)]
    status, expires_at = b.get("status"), _at(b.get("expires_at"))
    if status == "confirmed":
        if [u.state for u in mine] != ["sold"]:
            out.append((RULE, subject, f"confirmed with uses {[u.state for u in mine]} of {code}"))
    elif status == "pending_payment" and expires_at is not None and expires_at > now:
        if len(mine) != 1 or mine[0].state != "held" or mine[0].held_until != expires_at:
            held = [(u.state, u.held_until) for u in mine]
            out.append((RULE, subject, f"pending until {expires_at} with uses {held} of {code}"))
    elif mine:
        out.append((RULE, subject, f"{status} (or past its hold) yet owns {len(mine)} live use(s) of {code}"))
    return out


def by_event(bookings: dict[str, dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    grouped: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for booking_id, b in bookings.items():
        grouped[str(b.get("event_id"))][booking_id] = b
    return grouped
