"""Waitlist entries: a buyer waiting for `quantity` tickets of a sold-out event, served in join order."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

WaitlistStatus = Literal["waiting", "offered", "fulfilled", "expired", "left"]
LIVE: tuple[WaitlistStatus, ...] = ("waiting", "offered")  # one live entry per buyer and event


@dataclass(frozen=True)
class WaitlistEntry:
    id: str
    event_id: str
    company_id: str
    user_id: str
    buyer_subject: str
    quantity: int
    status: WaitlistStatus
    created_at: datetime  # the entry's place in the line
    updated_at: datetime
    booking_id: str | None = None  # the offered booking
    offer_expires_at: datetime | None = None
    offered_at: datetime | None = None
    ended_at: datetime | None = None  # left, expired or fulfilled
    seq: int = 1  # counts the entry's changes: the sequence of its domain events

    @property
    def live(self) -> bool:
        return self.status in LIVE

    def moved_to(self, status: WaitlistStatus, now: datetime, **changes: object) -> WaitlistEntry:
        ended = {} if status in LIVE else {"ended_at": now}
        return replace(self, status=status, updated_at=now, seq=self.seq + 1, **ended, **changes)  # type: ignore[arg-type]
