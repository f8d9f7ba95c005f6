"""What the booking use cases need from the stores, and their rules."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from shared.dal.records import BuyerHolds, Claim, IdempotencyRecord, Revision, UnitOfWork
from shared.models import Booking, Event

MAX_ATTEMPTS = 12


class BookingStore(Protocol):
    def path(self, booking_id: str) -> str: ...
    def get(self, booking_id: str) -> tuple[Booking, Revision] | None: ...
    def buyer_holds(self, event_id: str, user_id: str) -> BuyerHolds: ...
    def page(
        self, field_name: str, value: str, limit: int, after: tuple[datetime, str] | None
    ) -> tuple[list[Booking], tuple[datetime, str] | None]: ...
    def overdue(self, now: datetime, limit: int) -> list[str]: ...
    def stage_create(self, uow: UnitOfWork, booking: Booking, buyer: BuyerHolds) -> None: ...
    def stage_update(self, uow: UnitOfWork, before: Booking, after: Booking, since: Revision) -> None: ...


class IdempotencyStore(Protocol):
    def get(self, key_id: str) -> IdempotencyRecord | None: ...
    def stage_create(self, uow: UnitOfWork, record: IdempotencyRecord, at: datetime) -> None: ...


class EventReader(Protocol):
    def get(self, event_id: str) -> Event | None: ...


class Inventory(Protocol):
    def taken(self, event_id: str, now: datetime) -> int: ...
    def claims_of(self, event_id: str, booking_id: str) -> list[Claim]: ...
    def stage_claim(
        self, uow: UnitOfWork, event_id: str, n: int, booking_id: str, held_until: datetime, over: Claim | None = None
    ) -> None: ...
    def stage_release(self, uow: UnitOfWork, event_id: str, claim: Claim) -> None: ...
    def stage_sold(self, uow: UnitOfWork, event_id: str, n: int, booking_id: str, over: Claim | None) -> None: ...


@dataclass(frozen=True)
class BookingRules:
    hold_ttl: timedelta
    max_pending_per_buyer: int
    max_holds_per_minute: int = 5  # per buyer and event: holding and cancelling in a loop is refused


@dataclass(frozen=True)
class HoldRequest:
    event_id: str
    quantity: int
    idempotency_key: str | None = None
    promo_code: str | None = None  # as the buyer typed it (matched case-insensitively)
