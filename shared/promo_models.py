"""Promo codes: a discount on each ticket of one event, used at most `max_uses` times at once."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

UNLIMITED_USES = 2**62  # the use slots of a code without max_uses: a range no rush can fill


@dataclass(frozen=True)
class PromoCode:
    event_id: str
    company_id: str
    code: str  # upper case; the document id under its event
    percent_off: int | None
    amount_off: int | None
    max_uses: int | None  # None: no limit
    valid_until: datetime | None
    active: bool
    created_at: datetime
    updated_at: datetime
    seq: int = 1  # counts the code's changes: the sequence of its domain events

    @property
    def id(self) -> str:
        return f"{self.event_id}:{self.code}"

    @property
    def use_slots(self) -> int:
        """How many use slots a booking may claim (docs/promo-codes.md)."""
        return self.max_uses if self.max_uses is not None else UNLIMITED_USES

    def usable_at(self, now: datetime) -> bool:
        return self.active and (self.valid_until is None or now < self.valid_until)

    def discount(self, unit_price: int, quantity: int) -> int:
        """Minor units off a booking of `quantity` tickets at `unit_price` (API.md, Promo codes)."""
        if self.percent_off is not None:
            return unit_price * quantity * self.percent_off // 100
        return min(self.amount_off or 0, unit_price) * quantity

    def changed(self, now: datetime, **changes: object) -> PromoCode:
        return replace(self, **changes, updated_at=now, seq=self.seq + 1)  # type: ignore[arg-type]


def doc_id(code: str) -> str:
    """A code's document id: prefixed, because a code may look like Firestore's reserved `__x__`."""
    return f"c-{code}"


def pool_of(event_id: str, code: str) -> str:
    """The use slots' pool id: event ids and codes never contain ':'."""
    return f"{event_id}:{code}"
