"""The uses of promo codes, claimed and given back with the bookings that carry them.

A booking with a code claims one use slot of the code in the commit that creates it, exactly as it
claims its ticket slots (docs/promo-codes.md): `max_uses` is the size of the slot range, so at most
`max_uses` live bookings carry the code under any rush, and no document is written by two
bookings. The use follows its booking: extended with the hold, sold with the confirmation,
deleted when the booking expires, is cancelled or refunded. Each step is staged into the unit of
work of the booking's own change, so a booking and its use never disagree after a crash.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Protocol

from shared.core.errors import PromoCodeExhausted, PromoCodeInvalid
from shared.dal.records import Claim, Revision, UnitOfWork
from shared.models import Booking
from shared.payments.minimums import minimum_charge
from shared.promo_models import PromoCode, pool_of
from shared.services.slots import NoFreeSlots, SlotPicker

Picks = list[tuple[int, Claim | None]]
CODE = re.compile(r"[A-Za-z0-9_-]{3,32}")  # what a code can be (anything else is no code of ours)


class CodeReader(Protocol):
    def get(self, event_id: str, code: str) -> tuple[PromoCode, Revision] | None: ...


class UseSlots(Protocol):
    def live(self, pool: str, now: datetime) -> int: ...
    def claims_of(self, event_id: str, booking_id: str) -> list[Claim]: ...
    def stage_claim(
        self, uow: UnitOfWork, event_id: str, n: int, booking_id: str, held_until: datetime, over: Claim | None = None
    ) -> None: ...
    def stage_sold(self, uow: UnitOfWork, event_id: str, n: int, booking_id: str, over: Claim | None) -> None: ...
    def stage_sell(self, uow: UnitOfWork, event_id: str, claim: Claim) -> None: ...
    def stage_extend(self, uow: UnitOfWork, event_id: str, claim: Claim, held_until: datetime) -> None: ...
    def stage_release(self, uow: UnitOfWork, event_id: str, claim: Claim) -> None: ...


class PromoUses:
    def __init__(self, codes: CodeReader, slots: UseSlots, picker: SlotPicker) -> None:
        self.codes = codes
        self.slots = slots
        self.picker = picker  # its own picker: use slots are numbered per code, not per event

    def usable(self, event_id: str, code: str, now: datetime) -> PromoCode:
        """The code as a booking may use it now: PromoCodeInvalid if unknown, inactive or past."""
        found = self.codes.get(event_id, code.upper()) if CODE.fullmatch(code) else None
        if found is None or not found[0].usable_at(now):
            raise PromoCodeInvalid(f"{code.upper()} is not a valid promo code for this event")
        return found[0]

    def reserve(self, promo: PromoCode, now: datetime, reread: bool = False) -> Picks:
        """One free use slot, reserved in this process (give it back with `done`)."""
        try:
            return self.picker.pick(promo.id, promo.use_slots, 1, now, reread=reread)
        except NoFreeSlots:
            raise PromoCodeExhausted(f"{promo.code} has been used {promo.max_uses} time(s)") from None

    def done(self, promo: PromoCode, picks: Picks, claimed: bool) -> None:
        self.picker.done(promo.id, picks, claimed)

    def collided(self, promo: PromoCode, picks: Picks, now: datetime) -> None:
        self.picker.collided(promo.id, picks, now)

    def count(self, promo: PromoCode, now: datetime) -> int:
        return self.slots.live(promo.id, now)

    # ---- staged with the booking's own change -----------------------------------------------------

    def stage_claim(self, uow: UnitOfWork, booking: Booking, picks: Picks) -> None:
        """The new booking's use: held with it, or sold at once when the booking is confirmed."""
        if not booking.promo_code:
            return
        pool = _pool(booking)
        for n, over in picks:
            if booking.status == "confirmed":
                self.slots.stage_sold(uow, pool, n, booking.id, over)
            else:
                self.slots.stage_claim(uow, pool, n, booking.id, booking.expires_at, over)

    def stage_extend(self, uow: UnitOfWork, booking: Booking, until: datetime) -> None:
        if booking.promo_code:
            for claim in self.slots.claims_of(_pool(booking), booking.id):
                if claim.state == "held":
                    self.slots.stage_extend(uow, _pool(booking), claim, until)

    def stage_sell(self, uow: UnitOfWork, booking: Booking, now: datetime, reread: bool = False) -> Picks:
        """Confirming: the booking's held use becomes sold; a late payment whose use lapsed and was
        given back claims a free one again (PromoCodeExhausted when none is left). Returns what was
        newly claimed, for `done` or `collided` after the commit."""
        if not booking.promo_code:
            return []
        pool = _pool(booking)
        mine = self.slots.claims_of(pool, booking.id)
        for claim in mine:
            if claim.state == "held":
                self.slots.stage_sell(uow, pool, claim)
        if any(c.state in ("held", "sold") for c in mine):
            return []
        own = frozenset(c.n for c in mine)
        found = self.codes.get(booking.event_id, booking.promo_code)
        slots = found[0].use_slots if found else 0
        try:
            picks = self.picker.pick(pool, slots, 1, now, reread=reread, avoid=own)
        except NoFreeSlots:
            raise PromoCodeExhausted(f"{booking.promo_code}'s uses were taken after the hold ran out") from None
        self.picker.done(pool, picks, claimed=False)
        for n, over in picks:
            self.slots.stage_sold(uow, pool, n, booking.id, over)
        return picks

    def stage_release(self, uow: UnitOfWork, booking: Booking) -> list[int]:
        """The booking's use is given back (expiry, cancel, refund); returns the slots released."""
        if not booking.promo_code:
            return []
        mine = [c for c in self.slots.claims_of(_pool(booking), booking.id) if c.state in ("held", "sold")]
        for claim in mine:
            self.slots.stage_release(uow, _pool(booking), claim)
        return [c.n for c in mine]

    def lost(self, booking: Booking, picks: Picks, now: datetime) -> None:
        """A late payment's commit failed: learn what the use slots it picked hold now."""
        self.picker.collided(_pool(booking), picks, now)

    def released(self, booking: Booking, numbers: list[int]) -> None:
        if numbers:
            self.picker.released(_pool(booking), numbers)


def _pool(booking: Booking) -> str:
    assert booking.promo_code is not None
    return pool_of(booking.event_id, booking.promo_code)


def refuse_below_minimum_charge(promo: PromoCode, quantity: int, unit_price: int, currency: str) -> None:
    """A code that leaves a total above 0 but below the smallest card payment would make a booking
    nobody can pay: refused before anything is claimed (a total of 0 is confirmed at once)."""
    total = unit_price * quantity - promo.discount(unit_price, quantity)
    smallest = minimum_charge(currency)
    if 0 < total < smallest:
        raise PromoCodeInvalid(
            f"with {promo.code} the total would be {total} (minor units of {currency}), below the "
            f"smallest card payment of {smallest}; book more tickets or without the code"
        )
