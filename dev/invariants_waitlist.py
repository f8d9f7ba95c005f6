"""The waitlist rules of the invariant checker (dev/invariants.py reads and reports them).

- `waitlist`: every entry has a known status; a buyer has at most one live entry (waiting or
  offered) per event, and the membership records match the live entries exactly; an entry with an
  offer names a booking of its event made for it (same buyer and quantity), and the booking's state
  matches the entry's: offered - pending payment, fulfilled - confirmed or refunded, expired -
  expired (or cancelled with its event), left after an offer - cancelled; an offered entry's
  `offer_expires_at` is its booking's `expires_at` (also after a processing payment extended the
  hold); every booking made for an
  entry is that entry's offer; offers follow the line: no entry was offered before an entry that
  joined earlier and was still waiting; and nobody who did not wait got tickets while someone
  waited: no booking other than an offer was made while an entry had been waiting for longer than
  the line's fence (FENCE_SECONDS, shared/services/waitlist/line.py).

`in_flight` adds: a head of a line whose quantity is free (the line server or the sweep is due).
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from dev.stored import at as _at
from shared.services.waitlist.line import FENCE_SECONDS

RULE = "waitlist"
DESCRIPTION = "one live entry per buyer, offers in join order matching their bookings, no ticket sold past the line"
STATUSES = {"waiting", "offered", "fulfilled", "expired", "left"}
# An offered booking's state for each state of its entry (expired: ran out, or its event was cancelled).
BOOKING_FOR = {
    "offered": {"pending_payment"},
    "fulfilled": {"confirmed", "refunded"},
    "expired": {"expired", "cancelled"},
}
FENCE = timedelta(seconds=FENCE_SECONDS)


def read(db: Any, event_id: str) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """(entry id -> entry, user id -> entry id of the membership records) of one event."""
    from google.cloud.firestore_v1.base_query import FieldFilter

    query = db.collection("waitlist").where(filter=FieldFilter("event_id", "==", event_id))
    entries = {s.id: s.to_dict() or {} for s in query.stream()}
    members = db.collection("events").document(event_id).collection("waitlist_members")
    return entries, {s.id: str((s.to_dict() or {}).get("entry_id")) for s in members.stream()}


def judge(
    event_id: str,
    entries: dict[str, dict[str, Any]],
    members: dict[str, str],
    bookings: dict[str, dict[str, Any]],
) -> list[tuple[str, str, str]]:
    out: list[tuple[str, str, str]] = []
    live = {eid: e for eid, e in entries.items() if e.get("status") in ("waiting", "offered")}
    per_user = Counter(str(e.get("user_id")) for e in live.values())
    for user, n in per_user.items():
        if n > 1:
            out.append((RULE, f"event/{event_id}", f"buyer {user} has {n} live entries"))
    expected_members = {str(e.get("user_id")): eid for eid, e in live.items()}
    if members != expected_members:
        out.append((RULE, f"event/{event_id}", f"memberships {members} do not match live entries {expected_members}"))
    for entry_id, e in sorted(entries.items()):
        out += _entry(entry_id, e, bookings)
    for booking_id, b in sorted(bookings.items()):
        made_for = b.get("waitlist_entry_id")
        if made_for is not None and (entries.get(made_for) or {}).get("booking_id") != booking_id:
            out.append((RULE, f"booking/{booking_id}", f"made for entry {made_for}, which is not offered it"))
    out += _line_order(event_id, entries)
    out += _not_past_the_line(entries, bookings)
    return out


def _entry(entry_id: str, e: dict[str, Any], bookings: dict[str, dict[str, Any]]) -> list[tuple[str, str, str]]:
    subject, status, booking_id = f"waitlist/{entry_id}", e.get("status"), e.get("booking_id")
    if status not in STATUSES:
        return [(RULE, subject, f"unknown status {status!r}")]
    if booking_id is None:
        # expired with no offer: its event was cancelled while it waited
        return [(RULE, subject, f"{status} with no offered booking")] if status in ("offered", "fulfilled") else []
    b = bookings.get(str(booking_id))
    if b is None:
        return [(RULE, subject, f"{status}; its booking {booking_id} is not one of its event")]
    out = []
    if b.get("waitlist_entry_id") != entry_id or (b.get("user_id"), b.get("quantity")) != (
        e.get("user_id"),
        e.get("quantity"),
    ):
        out.append((RULE, subject, f"booking {booking_id} was not made for this entry"))
    allowed = BOOKING_FOR.get(str(status), {"cancelled"})
    if b.get("status") not in allowed:
        out.append((RULE, subject, f"{status}, yet its booking {booking_id} is {b.get('status')}"))
    elif status == "offered" and _at(e.get("offer_expires_at")) != _at(b.get("expires_at")):
        out.append((RULE, subject, f"offer ends {e.get('offer_expires_at')}, its booking {b.get('expires_at')}"))
    return out


def _line_order(event_id: str, entries: dict[str, dict[str, Any]]) -> list[tuple[str, str, str]]:
    """No entry was offered while an earlier one was still waiting."""
    out = []
    ordered = sorted(
        entries.items(), key=lambda kv: (_at(kv[1].get("created_at")) or datetime.max.replace(tzinfo=UTC), kv[0])
    )
    for i, (later_id, later) in enumerate(ordered):
        offered_at = _at(later.get("offered_at"))
        if offered_at is None:
            continue
        for earlier_id, earlier in ordered[:i]:
            if _waiting_at(earlier, offered_at) and (_at(earlier.get("created_at")) or offered_at) < offered_at:
                out.append(
                    (RULE, f"waitlist/{later_id}", f"offered at {offered_at} while {earlier_id} waited before it")
                )
    return out


def _not_past_the_line(
    entries: dict[str, dict[str, Any]], bookings: dict[str, dict[str, Any]]
) -> list[tuple[str, str, str]]:
    out = []
    for booking_id, b in sorted(bookings.items()):
        made = _at(b.get("booking_time"))
        if b.get("waitlist_entry_id") is not None or made is None:
            continue
        for entry_id, e in sorted(entries.items()):
            joined = _at(e.get("created_at"))
            if joined is not None and joined + FENCE < made and _waiting_at(e, made):
                out.append((RULE, f"booking/{booking_id}", f"booked at {made} while entry {entry_id} waited"))
    return out


def _waiting_at(e: dict[str, Any], moment: datetime) -> bool:
    joined, offered, ended = _at(e.get("created_at")), _at(e.get("offered_at")), _at(e.get("ended_at"))
    return (
        joined is not None
        and joined <= moment
        and (offered is None or offered > moment)
        and (ended is None or ended > moment)
    )


def stalled(event_id: str, entries: dict[str, dict[str, Any]], free: int) -> list[str]:
    """The head of the line fits in the free tickets: an offer is due (transient)."""
    waiting = sorted(
        (e for e in entries.values() if e.get("status") == "waiting"),
        key=lambda e: (_at(e.get("created_at")) or datetime.max.replace(tzinfo=UTC), str(e.get("id"))),
    )
    if waiting and int(waiting[0].get("quantity") or 0) <= free:
        return [f"event/{event_id}: waitlist head {waiting[0].get('id')} fits in {free} free ticket(s)"]
    return []
