"""Organisers create, list and change their events' promo codes.

Changing `max_uses` resizes the code's use slots the way an event's capacity change resizes its
ticket slots (shared/services/capacity.py): lowering retires the slots above the new limit first,
moving live uses below it, and answers `409 invalid_state` when the live uses do not fit. A code
created without a limit draws from a range too large to retire, so it cannot get one later.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from shared.core.errors import (
    CapacityBelowSold,
    Forbidden,
    InvalidState,
    NotFound,
    PromoCodeExists,
    Unavailable,
)
from shared.dal.records import ConcurrentUpdate, DocumentExists, Revision, UnitOfWork
from shared.domain_events import Actor, change
from shared.models import Event, utcnow
from shared.promo_models import PromoCode
from shared.schemas import ListQuery, Page, PromoCodeIn, PromoCodeOut, PromoCodePatch
from shared.services.identity import Principal
from shared.services.paging import decode_after, encode_after
from shared.services.retry import backoff

MAX_ATTEMPTS = 8
CODE = re.compile(r"[A-Za-z0-9_-]{3,32}")  # stored under a prefixed id: `__x__` is a code too


class CodeStore(Protocol):
    def get(self, event_id: str, code: str) -> tuple[PromoCode, Revision] | None: ...
    def page(self, event_id: str, limit: int, after: str | None) -> tuple[list[PromoCode], str | None]: ...
    def stage_create(self, uow: UnitOfWork, promo: PromoCode) -> None: ...
    def stage_update(self, uow: UnitOfWork, promo: PromoCode, since: Revision) -> None: ...


class EventReader(Protocol):
    def get(self, event_id: str) -> Event | None: ...


class UseCounter(Protocol):
    def count(self, promo: PromoCode, now: datetime) -> int: ...


class Resizer(Protocol):
    def lower(self, event_id: str, old: int, new: int, now: datetime) -> list[int]: ...
    def raise_to(self, event_id: str, old: int, new: int) -> None: ...
    def undo(self, event_id: str, retired: list[int]) -> None: ...


class PromoCodes:
    def __init__(
        self,
        codes: CodeStore,
        events: EventReader,
        uses: UseCounter,
        resizer: Resizer,
        new_uow: Callable[[], UnitOfWork],
    ) -> None:
        self.codes = codes
        self.events = events
        self.uses = uses
        self.resizer = resizer  # a CapacityChanger over the use slots
        self.new_uow = new_uow

    def create(self, principal: Principal, event_id: str, data: PromoCodeIn) -> PromoCodeOut:
        event = self._managed(principal, event_id)
        now = utcnow()
        promo = PromoCode(
            event_id=event.id,
            company_id=event.company_id,
            code=data.code.upper(),
            percent_off=data.percent_off,
            amount_off=data.amount_off,
            max_uses=data.max_uses,
            valid_until=data.valid_until,
            active=data.active,
            created_at=now,
            updated_at=now,
        )
        uow = self.new_uow()
        self.codes.stage_create(uow, promo)
        uow.record(change("created", promo, Actor.user(principal.user_id), now))
        try:
            uow.commit()
        except DocumentExists:
            raise PromoCodeExists(f"this event already has the code {promo.code}") from None
        return PromoCodeOut.of(promo, 0)

    def page(self, principal: Principal, event_id: str, query: ListQuery) -> Page[PromoCodeOut]:
        self._managed(principal, event_id)
        after = decode_after(query.page_token, event_id) if query.page_token else None
        found, last = self.codes.page(event_id, query.limit, after)
        now = utcnow()
        items = [PromoCodeOut.of(p, self.uses.count(p, now)) for p in found]
        return Page[PromoCodeOut](items=items, next_page_token=encode_after(last, event_id) if last else None)

    def update(self, principal: Principal, event_id: str, code: str, patch: PromoCodePatch) -> PromoCodeOut:
        """Compare and set on the code's document, read again after a concurrent change."""
        self._managed(principal, event_id)
        if not CODE.fullmatch(code):
            raise NotFound("promo code not found")
        for attempt in range(MAX_ATTEMPTS):
            found = self.codes.get(event_id, code.upper())
            if found is None:
                raise NotFound("promo code not found")
            current, read_at = found
            now = utcnow()
            revised = current.changed(now, **patch.model_dump(exclude_unset=True))
            retired = self._resize(current, revised, now)
            uow = self.new_uow()
            self.codes.stage_update(uow, revised, since=read_at)
            uow.record(change("updated", revised, Actor.user(principal.user_id), now, before=current))
            try:
                uow.commit()
            except ConcurrentUpdate:
                latest = self.codes.get(event_id, current.code)
                limit = latest[0].use_slots if latest else 0
                self.resizer.undo(current.id, [n for n in retired if n < limit])
                backoff(attempt)
                continue
            except Exception:  # committed or not, nobody knows: clear a raised range once more
                self._after_commit(current, revised)
                raise
            self._after_commit(current, revised)
            return PromoCodeOut.of(revised, self.uses.count(revised, now))
        raise Unavailable("the promo code is changing; retry", retry_after=1)

    def _resize(self, current: PromoCode, revised: PromoCode, now: datetime) -> list[int]:
        old, new = current.use_slots, revised.use_slots
        if new == old:
            return []
        if current.max_uses is None:
            raise InvalidState("a code created without max_uses stays unlimited; deactivate it and create another")
        uses = self.uses.count(current, now)
        if new < uses:
            raise InvalidState(f"max_uses below uses: {uses} live booking(s) carry the code")
        if new > old:
            self.resizer.raise_to(current.id, old, new)
            return []
        try:
            return self.resizer.lower(current.id, old, new, now)
        except CapacityBelowSold:
            raise InvalidState("max_uses below uses: the live bookings that carry the code do not fit") from None

    def _after_commit(self, current: PromoCode, revised: PromoCode) -> None:
        if revised.use_slots > current.use_slots:  # see EventService._after_commit
            self.resizer.raise_to(current.id, current.use_slots, revised.use_slots)

    def _managed(self, principal: Principal, event_id: str) -> Event:
        event = self.events.get(event_id)
        if event is None or not (event.is_published or principal.manages(event.company_id)):
            raise NotFound("event not found")
        if not principal.manages(event.company_id):
            raise Forbidden("only the event's company admins manage its promo codes")
        return event
