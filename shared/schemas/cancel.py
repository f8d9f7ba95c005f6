"""Cancelling an event: the request, and the progress every reader of a cancelled event sees."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from shared.schemas.common import Strict

Reason = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=1000, pattern=r"^[^\x00-\x08\x0b-\x1f\x7f]*$"),
]


class EventCancelIn(Strict):
    reason: Reason = Field(description="why the event is cancelled: every buyer's e-mail quotes it")


class CancellationOut(BaseModel):
    reason: str
    cancelled_at: dt.datetime
    refunds_pending: int = Field(description="confirmed bookings still to refund")
    refunds_done: int = Field(description="bookings refunded since the cancellation")
    refunds_failed: int = Field(description="refunds the payment provider refused: listed in GET /v1/attention")
