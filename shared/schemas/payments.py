"""Payments."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from shared.models import Payment, PublicPaymentStatus
from shared.schemas.common import Strict

PaymentMethod = Annotated[str, StringConstraints(pattern=r"^pm_[A-Za-z0-9_]{1,100}$")]


class PaymentIn(Strict):
    payment_method: PaymentMethod | None = None


class PaymentOut(BaseModel):
    id: str
    booking_id: str
    amount: int
    currency: str
    status: PublicPaymentStatus
    provider: str
    transaction_id: str | None
    client_secret: str | None = Field(description="for client-side confirmation; only shown to the buyer")
    idempotency_key: str
    failure_code: str | None = None
    attention: str | None = Field(default=None, description="why a person should look at it (admins only)")
    created_at: dt.datetime

    @classmethod
    def of(cls, payment: Payment, *, for_buyer: bool) -> PaymentOut:
        return cls(
            id=payment.id,
            booking_id=payment.booking_id,
            amount=payment.amount,
            currency=payment.currency,
            status="processing" if payment.status == "creating" else payment.status,
            provider=payment.provider,
            transaction_id=payment.transaction_id,
            client_secret=payment.client_secret if for_buyer else None,
            idempotency_key=payment.idempotency_key,
            failure_code=payment.failure_code,
            attention=None if for_buyer else payment.attention,
            created_at=payment.created_at,
        )
