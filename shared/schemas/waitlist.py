"""Waitlist entries: what a buyer sends to join and what buyers and organisers read."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from shared.schemas.common import Strict
from shared.waitlist_models import WaitlistEntry


class WaitlistJoinIn(Strict):
    quantity: Annotated[int, Field(ge=1, le=100)]


class WaitlistEntryOut(BaseModel):
    id: str
    event_id: str
    user_id: str
    quantity: int
    status: Literal["waiting", "offered", "fulfilled", "expired", "left"]
    booking_id: str | None = Field(description="the offered booking: pay it like any other")
    offer_expires_at: dt.datetime | None
    created_at: dt.datetime

    @classmethod
    def of(cls, entry: WaitlistEntry) -> WaitlistEntryOut:
        return cls(
            id=entry.id,
            event_id=entry.event_id,
            user_id=entry.user_id,
            quantity=entry.quantity,
            status=entry.status,
            booking_id=entry.booking_id,
            offer_expires_at=entry.offer_expires_at,
            created_at=entry.created_at,
        )
