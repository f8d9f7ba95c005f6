"""What the DALs take and return, and the conflicts they report: plain Python, no Firestore import,
so that services (and the cold start of a function) do not pay for the client library."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from shared.models import Booking

if TYPE_CHECKING:
    from shared.domain_events import DomainEvent

SOLD_UNTIL = datetime(9999, 12, 31, tzinfo=UTC)


@dataclass(frozen=True)
class Revision:
    """When a document was last written, as read: the precondition for changing it (compare and set).

    A write staged with it fails with ConcurrentUpdate if anyone wrote the document since."""

    at: datetime


class DocumentExists(Exception):
    """A create() met a document that already exists."""


class ConcurrentUpdate(Exception):
    """A write's precondition failed: someone else changed the document first."""


class UsernameTaken(Exception):
    pass


class IdentityTaken(Exception):
    pass


@dataclass(frozen=True)
class Claim:
    """One ticket slot's claim document."""

    n: int
    state: str  # held | sold | retired
    booking_id: str | None
    held_until: datetime | None
    update_time: Revision  # the precondition for changing it

    def is_free(self, now: datetime) -> bool:
        """Free to take: a hold that ran out. Retired slots are never taken by a hold."""
        return self.state == "held" and self.held_until is not None and self.held_until <= now


@dataclass(frozen=True)
class BuyerHolds:
    """The unpaid bookings one buyer holds for one event (booking id -> expires_at), and when the
    buyer's recent holds were made (the per-minute cap)."""

    pending: dict[str, datetime] = field(default_factory=dict)
    update_time: Revision | None = None  # None: the document does not exist yet
    recent: tuple[datetime, ...] = ()

    def active(self, now: datetime) -> dict[str, datetime]:
        return {b: t for b, t in self.pending.items() if t > now}

    def since(self, start: datetime) -> tuple[datetime, ...]:
        """The recent holds made after `start`, oldest first."""
        return tuple(sorted(t for t in self.recent if t > start))


@dataclass(frozen=True)
class IdempotencyRecord:
    key_id: str
    request_hash: str
    resource_id: str


@dataclass(frozen=True)
class HoldPlan:
    booking: Booking
    claims: list[tuple[int, Claim | None]]  # slot number, expired claim to take over (or None)
    buyer: BuyerHolds
    idempotency: IdempotencyRecord | None = None
    uses: list[tuple[int, Claim | None]] = field(default_factory=list)  # the promo code's use slot


@dataclass(frozen=True)
class EventQuery:
    """What Firestore can filter on; the rest is checked by `matches` on each scanned event."""

    starts_from: datetime
    starts_before: datetime | None = None
    geohash_precision: int | None = None
    geohash_cells: tuple[str, ...] = ()
    token: str | None = None
    after: tuple[datetime, str] | None = None


class UnitOfWork(Protocol):
    """The writes of one commit, gathered from several DALs, and the domain events they make.

    DALs stage writes (each DAL only into its own collections); services record what happened and
    commit: everything is written, or nothing (DocumentExists / ConcurrentUpdate). Paths are
    document paths ("bookings/<id>"); `since` is the precondition of an update or delete."""

    def create(self, path: str, data: dict[str, Any]) -> None: ...
    def update(self, path: str, data: dict[str, Any], since: Revision | None = None) -> None: ...
    def delete(self, path: str, since: Revision | None = None) -> None: ...
    def record(self, event: DomainEvent, inside: str | None = None) -> None:
        """Record a domain event of this commit: a stream record of its own, or carried by the
        document at `inside` that this commit creates (one write fewer where it counts: a hold)."""

    def commit(self) -> list[DomainEvent]: ...
