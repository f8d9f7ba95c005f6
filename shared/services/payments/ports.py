"""What the payment use cases need from the stores, and the rules they share."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from shared.dal.records import Claim, IdempotencyRecord, Revision, UnitOfWork
from shared.models import Booking, Event, Payment

MAX_ATTEMPTS = 8
# A provider call that has not answered for this long (its process may have died) is taken over by
# the next request with the same provider idempotency key: the provider answers a call that is
# still running with an idempotency error (409 payment_in_progress here), and a later one with the
# first call's result, so a take-over never charges or refunds twice.
RESUME_AFTER = timedelta(seconds=5)
# How long a second request waits for an attempt or a refund in flight before answering 409.
WAIT_FOR_OTHER = timedelta(seconds=5)


class PaymentStore(Protocol):
    def get(self, payment_id: str) -> tuple[Payment, Revision] | None: ...
    def stage_create(self, uow: UnitOfWork, payment: Payment) -> None: ...
    def stage_update(self, uow: UnitOfWork, payment: Payment, since: Revision) -> None: ...
    def by_company_needing_attention(self, company_id: str, limit: int) -> list[Payment]: ...
    def stuck(self, statuses: list[str], updated_before: datetime, limit: int) -> list[Payment]: ...


class BookingStore(Protocol):
    def get(self, booking_id: str) -> tuple[Booking, Revision] | None: ...
    def stage_update(self, uow: UnitOfWork, before: Booking, after: Booking, since: Revision) -> None: ...


class Inventory(Protocol):
    def claims_of(self, event_id: str, booking_id: str) -> list[Claim]: ...
    def stage_release(self, uow: UnitOfWork, event_id: str, claim: Claim) -> None: ...
    def stage_sell(self, uow: UnitOfWork, event_id: str, claim: Claim) -> None: ...
    def stage_sold(self, uow: UnitOfWork, event_id: str, n: int, booking_id: str, over: Claim | None) -> None: ...
    def stage_extend(self, uow: UnitOfWork, event_id: str, claim: Claim, held_until: datetime) -> None: ...


class IdempotencyStore(Protocol):
    def get(self, key_id: str) -> IdempotencyRecord | None: ...
    def stage_create(self, uow: UnitOfWork, record: IdempotencyRecord, at: datetime) -> None: ...


class ProviderEventStore(Protocol):
    def seen(self, event_id: str) -> bool: ...
    def stage_seen(self, uow: UnitOfWork, event_id: str, payment_id: str | None, at: datetime) -> None: ...


class EventReader(Protocol):
    def get(self, event_id: str) -> Event | None: ...


@dataclass(frozen=True)
class PaymentRules:
    processing_grace: timedelta
    reconcile_window: timedelta = timedelta(days=3)
    stuck_after: timedelta = timedelta(minutes=10)
