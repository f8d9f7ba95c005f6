"""Bookings: a hold request and what buyers and admins read."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from shared.models import Booking
from shared.schemas.common import Strict
from shared.schemas.payments import PaymentOut

PromoCodeText = Annotated[str, StringConstraints(min_length=1, max_length=64)]  # checked by the code's rules


class BookingIn(Strict):
    quantity: Annotated[int, Field(ge=1, le=100)]
    promo_code: PromoCodeText | None = Field(default=None, description="matched case-insensitively")


class BookingOut(BaseModel):
    id: str
    event_id: str
    user_id: str
    quantity: int
    unit_price: int
    total_cost: int = Field(description="unit_price * quantity - discount: exactly what is charged")
    promo_code: str | None
    discount: int
    currency: str
    status: Literal["pending_payment", "confirmed", "expired", "cancelled", "refunded"]
    booking_time: dt.datetime
    expires_at: dt.datetime
    payment: PaymentOut | None = Field(default=None, description="the latest Payment, or null")

    @classmethod
    def of(cls, booking: Booking, now: dt.datetime, payment: PaymentOut | None = None) -> BookingOut:
        return cls(
            id=booking.id,
            event_id=booking.event_id,
            user_id=booking.user_id,
            quantity=booking.quantity,
            unit_price=booking.unit_price,
            total_cost=booking.total_cost,
            promo_code=booking.promo_code,
            discount=booking.discount,
            currency=booking.currency,
            status=booking.status_at(now),
            booking_time=booking.booking_time,
            expires_at=booking.expires_at,
            payment=payment,
        )
