"""Promo codes: what an organiser sends and reads (API.md, Promo codes)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Self

from pydantic import AwareDatetime, BaseModel, Field, StringConstraints, field_validator, model_validator

from shared.promo_models import PromoCode
from shared.schemas.common import Money, Strict

CodeText = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{3,32}$")]
MAX_USES = 100_000  # as many as the largest event has tickets
MaxUses = Annotated[int, Field(ge=1, le=MAX_USES)]
Instant = Annotated[
    AwareDatetime, Field(ge=dt.datetime(2000, 1, 1, tzinfo=dt.UTC), le=dt.datetime(2999, 12, 31, tzinfo=dt.UTC))
]


class PromoCodeIn(Strict):
    code: CodeText = Field(description="3-32 characters A-Z 0-9 _ -, matched case-insensitively, stored upper case")
    percent_off: Annotated[int, Field(ge=1, le=100)] | None = None
    amount_off: Annotated[Money, Field(ge=1)] | None = Field(default=None, description="minor units off each ticket")
    max_uses: MaxUses | None = Field(default=None, description="no limit when absent")
    valid_until: Instant | None = None
    active: bool = True

    @field_validator("code")
    @classmethod
    def _not_reserved(cls, code: str) -> str:
        if code.startswith("__") and code.endswith("__"):
            raise ValueError("a code may not start and end with __ (no id in our paths may)")
        return code

    @model_validator(mode="after")
    def _one_discount(self) -> Self:
        if (self.percent_off is None) == (self.amount_off is None):
            raise ValueError("give exactly one of percent_off and amount_off")
        return self


class PromoCodePatch(Strict):
    active: bool | None = None
    max_uses: MaxUses | None = Field(default=None, description="null: no limit (only for a code that had one)")
    valid_until: Instant | None = Field(default=None, description="null: no end")

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if not self.model_fields_set:
            raise ValueError("give at least one of active, max_uses, valid_until")
        if "active" in self.model_fields_set and self.active is None:
            raise ValueError("active cannot be null")
        return self


class PromoCodeOut(BaseModel):
    code: str
    percent_off: int | None
    amount_off: int | None
    max_uses: int | None
    uses: int = Field(description="bookings pending payment (unexpired) or confirmed that carry the code")
    valid_until: dt.datetime | None
    active: bool
    created_at: dt.datetime

    @classmethod
    def of(cls, promo: PromoCode, uses: int) -> PromoCodeOut:
        return cls(
            code=promo.code,
            percent_off=promo.percent_off,
            amount_off=promo.amount_off,
            max_uses=promo.max_uses,
            uses=uses,
            valid_until=promo.valid_until,
            active=promo.active,
            created_at=promo.created_at,
        )
