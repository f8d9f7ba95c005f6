"""In-memory stand-ins for Firestore, the DALs, the payment provider and the other ports, for unit tests.

One `DocumentStore` (document path -> data and the Revision of its last write) plays Firestore: the
fake DALs map models to documents on it, as the real DALs do, and its unit of work applies a
commit's writes all at once or not at all (ConcurrentUpdate on a stale `since` or a missing
document, DocumentExists on a create that meets one). It records what was committed: the documents,
the domain events, and the messages the relay published. The fake gateway records the money it
moved. So a test asserts on behaviour (what was committed, published, charged), not on calls.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar

import pytest

from shared.core.auth import Identity
from shared.core.errors import Unauthenticated
from shared.core.ticket_codes import TicketCodes, new_key_setting
from shared.dal.records import (
    SOLD_UNTIL,
    BuyerHolds,
    Claim,
    ConcurrentUpdate,
    DocumentExists,
    EventQuery,
    IdempotencyRecord,
    IdentityTaken,
    Revision,
    UnitOfWork,
    UsernameTaken,
)
from shared.domain_events import DomainEvent
from shared.models import Booking, Company, Event, Payment, User
from shared.notify import Attachment
from shared.payments.gateway import (
    BadSignature,
    Declined,
    Intent,
    NotCancellable,
    ProviderEvent,
    ProviderUnavailable,
)
from shared.promo_models import PromoCode
from shared.services.bookings.holding import Holding
from shared.services.bookings.ports import BookingRules
from shared.services.bookings.releasing import Releasing
from shared.services.counting import TakenCounter
from shared.services.payments.finalising import Finalising
from shared.services.payments.intake import ProviderEventIntake
from shared.services.payments.ledger import PaymentLedger
from shared.services.payments.paying import Paying
from shared.services.payments.ports import PaymentRules
from shared.services.payments.reconciling import Reconciling
from shared.services.payments.refunding import Refunding
from shared.services.promo.uses import PromoUses
from shared.services.slots import SlotPicker
from shared.services.tickets.issuing import TicketIssuer
from shared.services.waitlist.hooks import WaitlistHooks
from shared.services.waitlist.line import WaitingLine
from shared.ticket_models import Ticket
from shared.waitlist_models import WaitlistEntry

DELETE = object()  # an update's value that removes the field (Firestore's DELETE_FIELD)
T = TypeVar("T")


# ---- Firestore: documents, commits, the stream and its relay ------------------------------------


class DocumentStore:
    """Committed documents by path, and what the commits recorded and published."""

    def __init__(self) -> None:
        self.docs: dict[str, tuple[dict[str, Any], Revision]] = {}
        self.events: list[DomainEvent] = []  # committed domain events, in commit order
        self.published: list[tuple[str, dict[str, Any]]] = []  # (topic, message) relayed after commits
        self._ticks = 0
        self._before_commit: list[Callable[[], object]] = []
        self.answers_to_lose = 0  # the next commits succeed, and their callers see an error

    def new_uow(self) -> FakeUnitOfWork:
        return FakeUnitOfWork(self)

    def get(self, path: str) -> tuple[dict[str, Any], Revision] | None:
        return self.docs.get(path)

    def children(self, collection: str) -> list[tuple[str, dict[str, Any], Revision]]:
        """The documents directly in a collection (path without a trailing slash)."""
        prefix = collection + "/"
        return [(p, d, r) for p, (d, r) in self.docs.items() if p.startswith(prefix) and "/" not in p[len(prefix) :]]

    def put(self, path: str, data: dict[str, Any]) -> None:
        """Write a document outside any unit of work (test set-up)."""
        self.docs[path] = (data, self._tick())

    def before_next_commit(self, action: Callable[[], object]) -> None:
        """Run `action` (another writer, who wins) just before the next commit applies, after its reads."""
        self._before_commit.append(action)

    def apply(
        self, writes: list[tuple[str, str, dict[str, Any] | None, Revision | None]], recorded: list[DomainEvent]
    ) -> None:
        actions, self._before_commit = self._before_commit, []
        for action in actions:  # an action's own commits run before this one, and are not delayed
            action()
        staged = dict(self.docs)
        revision = self._tick()
        for op, path, data, since in writes:
            current = staged.get(path)
            if op == "create":
                if current is not None:
                    raise DocumentExists(path)
                staged[path] = (dict(data or {}), revision)
                continue
            if (current is None and (op == "update" or since is not None)) or (
                current is not None and since is not None and current[1] != since
            ):
                raise ConcurrentUpdate(path)
            if op == "delete":
                staged.pop(path, None)
            elif current is not None:
                staged[path] = (_merged(current[0], data or {}), revision)
        self.docs = staged
        self.events.extend(recorded)
        for event in recorded:
            self.published.extend((topic, event.message()) for topic in event.topics)

    # ---- what tests read ------------------------------------------------------------------------

    def events_of(self, object_id: str) -> list[DomainEvent]:
        return [e for e in self.events if e.object_id == object_id]

    def actions(self, object_id: str | None = None) -> list[str]:
        return [e.action for e in self.events if object_id is None or e.object_id == object_id]

    def topics(self) -> list[str]:
        return [topic for topic, _ in self.published]

    def _tick(self) -> Revision:
        self._ticks += 1
        return Revision(datetime(2000, 1, 1, tzinfo=UTC) + timedelta(microseconds=self._ticks))


class FakeUnitOfWork:
    """Gathers writes and domain events; `commit` applies them to the store at once, or raises."""

    def __init__(self, store: DocumentStore) -> None:
        self.store = store
        self.writes: list[tuple[str, str, dict[str, Any] | None, Revision | None]] = []
        self.recorded: list[DomainEvent] = []
        self.carriers: list[str] = []

    def create(self, path: str, data: dict[str, Any]) -> None:
        self.writes.append(("create", path, data, None))

    def update(self, path: str, data: dict[str, Any], since: Revision | None = None) -> None:
        self.writes.append(("update", path, data, since))

    def delete(self, path: str, since: Revision | None = None) -> None:
        self.writes.append(("delete", path, None, since))

    def record(self, event: DomainEvent, inside: str | None = None) -> None:
        self.recorded.append(event)
        if inside is not None:
            self.carriers.append(inside)

    def commit(self) -> list[DomainEvent]:
        created = {path for kind, path, _, _ in self.writes if kind == "create"}
        if not set(self.carriers) <= created:
            raise ValueError("an event is carried only by a document this commit creates")
        self.store.apply(self.writes, self.recorded)
        if self.store.answers_to_lose:
            self.store.answers_to_lose -= 1
            raise ConnectionError("the commit went through; its answer was lost")
        return list(self.recorded)


def _merged(doc: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """Firestore's update: top-level fields replaced, dotted paths set or deleted inside maps."""
    out = dict(doc)
    for key, value in changes.items():
        *parents, leaf = key.split(".")
        target = out
        for name in parents:
            target[name] = dict(target.get(name) or {})
            target = target[name]
        if value is DELETE:
            target.pop(leaf, None)
        else:
            target[leaf] = value
    return out


def _to_doc(obj: Any) -> dict[str, Any]:
    return {f.name: getattr(obj, f.name) for f in fields(obj) if f.init}


def _from_doc(cls: type[T], doc: dict[str, Any]) -> T:
    return cls(**{f.name: doc[f.name] for f in fields(cls) if f.init and f.name in doc})  # type: ignore[arg-type]


class _Collection:
    collection: str

    def __init__(self, store: DocumentStore) -> None:
        self.store = store

    def path(self, doc_id: str) -> str:
        return f"{self.collection}/{doc_id}"


# ---- the DALs -----------------------------------------------------------------------------------


class FakeEventStore(_Collection):
    collection = "events"

    def __init__(self, store: DocumentStore) -> None:
        super().__init__(store)
        self.scans: list[EventQuery] = []

    @property
    def events(self) -> dict[str, Event]:
        return {d["id"]: _from_doc(Event, d) for _, d, _ in self.store.children(self.collection)}

    def add(self, event: Event) -> Event:
        self.store.put(self.path(event.id), _to_doc(event))
        return event

    def get(self, event_id: str) -> Event | None:
        found = self.get_for_update(event_id)
        return found[0] if found else None

    def get_for_update(self, event_id: str) -> tuple[Event, Revision] | None:
        found = self.store.get(self.path(event_id))
        return (_from_doc(Event, found[0]), found[1]) if found else None

    def stage_create(self, uow: UnitOfWork, event: Event) -> None:
        uow.create(self.path(event.id), _to_doc(event))

    def stage_update(self, uow: UnitOfWork, event: Event, since: Revision) -> None:
        uow.update(self.path(event.id), _to_doc(event), since=since)

    def scan_published(
        self, query: EventQuery, matches: Callable[[Event], bool], limit: int, budget: int
    ) -> tuple[list[Event], tuple[datetime, str] | None]:
        """What EventDAL.scan_published does, over a list: index filters, (starts_at, id) order, budget."""
        self.scans.append(query)
        candidates = sorted((e for e in self.events.values() if _indexed(e, query)), key=lambda e: (e.starts_at, e.id))
        found: list[Event] = []
        cursor = query.after
        for scanned, event in enumerate(candidates, start=1):
            cursor = (event.starts_at, event.id)
            if matches(event):
                found.append(event)
                if len(found) == limit:
                    return found, cursor
            if scanned == budget:
                return found, cursor
        return found, None


def _indexed(event: Event, query: EventQuery) -> bool:
    """The filters Firestore applies before `matches` sees an event."""
    if not event.is_published or event.starts_at < query.starts_from:
        return False
    if query.starts_before is not None and event.starts_at >= query.starts_before:
        return False
    if query.geohash_precision is not None:
        if event.geohashes()[query.geohash_precision] not in query.geohash_cells:
            return False
    elif query.token is not None and query.token not in event.search_tokens():
        return False
    return query.after is None or (event.starts_at, event.id) > query.after


class FakeBookingStore(_Collection):
    """Bookings, and each buyer's pending holds per event (`events/<id>/buyers/<user>`)."""

    collection = "bookings"

    def get(self, booking_id: str) -> tuple[Booking, Revision] | None:
        found = self.store.get(self.path(booking_id))
        return (_from_doc(Booking, found[0]), found[1]) if found else None

    def all(self) -> list[Booking]:
        return [_from_doc(Booking, d) for _, d, _ in self.store.children(self.collection)]

    def buyer_holds(self, event_id: str, user_id: str) -> BuyerHolds:
        found = self.store.get(_buyer_path(event_id, user_id))
        if not found:
            return BuyerHolds()
        return BuyerHolds(dict(found[0]["pending"]), found[1], tuple(found[0].get("recent", ())))

    def page(
        self, field_name: str, value: str, limit: int, after: tuple[datetime, str] | None
    ) -> tuple[list[Booking], tuple[datetime, str] | None]:
        found = sorted(
            (
                b
                for b in self.all()
                if getattr(b, field_name) == value and (after is None or (b.booking_time, b.id) < after)
            ),
            key=lambda b: (b.booking_time, b.id),
            reverse=True,
        )
        more, found = len(found) > limit, found[:limit]
        return found, (found[-1].booking_time, found[-1].id) if more and found else None

    def overdue(self, now: datetime, limit: int) -> list[str]:
        return [b.id for b in self.all() if b.status == "pending_payment" and b.expires_at <= now][:limit]

    def stage_create(self, uow: UnitOfWork, booking: Booking, buyer: BuyerHolds) -> None:
        uow.create(self.path(booking.id), _to_doc(booking))
        pending = {booking.id: booking.expires_at} if booking.status == "pending_payment" else {}
        doc = {
            "pending": {**buyer.active(booking.booking_time), **pending},
            "recent": [*buyer.recent, booking.booking_time],
        }
        path = _buyer_path(booking.event_id, booking.user_id)
        if buyer.update_time is None:
            uow.create(path, doc)
        else:
            uow.update(path, doc, since=buyer.update_time)

    def stage_update(self, uow: UnitOfWork, before: Booking, after: Booking, since: Revision) -> None:
        uow.update(self.path(after.id), _to_doc(after), since=since)
        path = _buyer_path(after.event_id, after.user_id)
        if before.status == "pending_payment" and after.status != "pending_payment":
            uow.update(path, {f"pending.{after.id}": DELETE})
        elif after.status == "pending_payment" and after.expires_at != before.expires_at:
            uow.update(path, {f"pending.{after.id}": after.expires_at})


def _buyer_path(event_id: str, user_id: str) -> str:
    return f"events/{event_id}/buyers/{user_id}"


class FakeInventory:
    """Slot claims (`events/<id>/slots/<n>`): held, sold or retired; taken = held_until > now."""

    def __init__(self, store: DocumentStore) -> None:
        self.store = store

    def path(self, event_id: str, n: int) -> str:
        return f"events/{event_id}/slots/{n}"

    def set_taken(self, event_id: str, taken: int) -> None:
        """Make exactly `taken` tickets of the event sold (test set-up)."""
        for path, _, _ in self.store.children(f"events/{event_id}/slots"):
            del self.store.docs[path]
        for n in range(taken):
            self.store.put(
                self.path(event_id, n), {"n": n, "state": "sold", "booking_id": "b-other", "held_until": SOLD_UNTIL}
            )

    def claims(self, event_id: str) -> dict[int, Claim]:
        found = (Claim(**d, update_time=r) for _, d, r in self.store.children(f"events/{event_id}/slots"))
        return {c.n: c for c in found}

    def taken(self, event_id: str, now: datetime) -> int:
        return sum(1 for c in self.claims(event_id).values() if c.held_until is not None and c.held_until > now)

    def claims_of(self, event_id: str, booking_id: str) -> list[Claim]:
        return [c for c in self.claims(event_id).values() if c.booking_id == booking_id]

    def claims_at(self, event_id: str, numbers: list[int]) -> dict[int, Claim]:
        found = self.claims(event_id)
        return {n: found[n] for n in numbers if n in found}

    def stage_claim(
        self, uow: UnitOfWork, event_id: str, n: int, booking_id: str, held_until: datetime, over: Claim | None = None
    ) -> None:
        self._claim(
            uow, event_id, n, {"n": n, "state": "held", "booking_id": booking_id, "held_until": held_until}, over
        )

    def stage_sold(self, uow: UnitOfWork, event_id: str, n: int, booking_id: str, over: Claim | None) -> None:
        self._claim(
            uow, event_id, n, {"n": n, "state": "sold", "booking_id": booking_id, "held_until": SOLD_UNTIL}, over
        )

    def stage_release(self, uow: UnitOfWork, event_id: str, claim: Claim) -> None:
        uow.delete(self.path(event_id, claim.n), since=claim.update_time)

    def stage_sell(self, uow: UnitOfWork, event_id: str, claim: Claim) -> None:
        uow.update(self.path(event_id, claim.n), {"state": "sold", "held_until": SOLD_UNTIL}, since=claim.update_time)

    def stage_extend(self, uow: UnitOfWork, event_id: str, claim: Claim, held_until: datetime) -> None:
        uow.update(self.path(event_id, claim.n), {"held_until": held_until}, since=claim.update_time)

    def _claim(self, uow: UnitOfWork, event_id: str, n: int, doc: dict[str, Any], over: Claim | None) -> None:
        if over is None:
            uow.create(self.path(event_id, n), doc)
        else:
            uow.update(self.path(event_id, n), doc, since=over.update_time)


class FakeUseSlots(FakeInventory):
    """A promo code's use slots: claims like ticket slots, in the pool `<event>:<CODE>`."""

    def live(self, pool: str, now: datetime) -> int:
        return self.taken(pool, now)


class FakePromoCodeStore:
    def __init__(self, store: DocumentStore) -> None:
        self.store = store

    def path(self, event_id: str, code: str) -> str:
        return f"events/{event_id}/promo_codes/c-{code}"

    def get(self, event_id: str, code: str) -> tuple[PromoCode, Revision] | None:
        found = self.store.get(self.path(event_id, code))
        return (_from_doc(PromoCode, found[0]), found[1]) if found else None

    def add(self, promo: PromoCode) -> None:
        self.store.put(self.path(promo.event_id, promo.code), _to_doc(promo))

    def stage_create(self, uow: UnitOfWork, promo: PromoCode) -> None:
        uow.create(self.path(promo.event_id, promo.code), _to_doc(promo))

    def stage_update(self, uow: UnitOfWork, promo: PromoCode, since: Revision) -> None:
        uow.update(self.path(promo.event_id, promo.code), _to_doc(promo), since=since)


class FakeWaitlistStore(_Collection):
    """Waitlist entries, and the membership that keeps one live entry per buyer and event."""

    collection = "waitlist"

    def get(self, entry_id: str) -> tuple[WaitlistEntry, Revision] | None:
        found = self.store.get(self.path(entry_id))
        return (_from_doc(WaitlistEntry, found[0]), found[1]) if found else None

    def all(self) -> list[WaitlistEntry]:
        return [_from_doc(WaitlistEntry, d) for _, d, _ in self.store.children(self.collection)]

    def waiting(self, event_id: str) -> int:
        return sum(1 for e in self.all() if e.event_id == event_id and e.status == "waiting")

    def is_member(self, event_id: str, user_id: str) -> bool:
        return self.store.get(f"events/{event_id}/waitlist_members/{user_id}") is not None

    def line(self, event_id: str, limit: int) -> list[tuple[WaitlistEntry, Revision]]:
        waiting = sorted(
            (e for e in self.all() if e.event_id == event_id and e.status == "waiting"),
            key=lambda e: (e.created_at, e.id),
        )
        return [found for e in waiting[:limit] if (found := self.get(e.id))]

    def events_with_waiters(self, limit: int) -> list[str]:
        return sorted({e.event_id for e in self.all() if e.status == "waiting"})[:limit]

    def stage_join(self, uow: UnitOfWork, entry: WaitlistEntry) -> None:
        uow.create(self.path(entry.id), _to_doc(entry))
        uow.create(f"events/{entry.event_id}/waitlist_members/{entry.user_id}", {"entry_id": entry.id})

    def stage_update(self, uow: UnitOfWork, before: WaitlistEntry, after: WaitlistEntry, since: Revision) -> None:
        uow.update(self.path(after.id), _to_doc(after), since=since)
        if before.live and not after.live:
            uow.delete(f"events/{after.event_id}/waitlist_members/{after.user_id}")


class FakePaymentStore(_Collection):
    collection = "payments"

    def get(self, payment_id: str) -> tuple[Payment, Revision] | None:
        found = self.store.get(self.path(payment_id))
        return (_from_doc(Payment, found[0]), found[1]) if found else None

    def all(self) -> list[Payment]:
        return [_from_doc(Payment, d) for _, d, _ in self.store.children(self.collection)]

    def stage_create(self, uow: UnitOfWork, payment: Payment) -> None:
        uow.create(self.path(payment.id), _to_doc(payment))

    def stage_update(self, uow: UnitOfWork, payment: Payment, since: Revision) -> None:
        uow.update(self.path(payment.id), _to_doc(payment), since=since)

    def by_company_needing_attention(self, company_id: str, limit: int) -> list[Payment]:
        return [p for p in self.all() if p.company_id == company_id and p.attention is not None][:limit]

    def stuck(self, statuses: list[str], updated_before: datetime, limit: int) -> list[Payment]:
        return [p for p in self.all() if p.status in statuses and p.updated_at <= updated_before][:limit]


class FakeTicketStore(_Collection):
    collection = "tickets"

    def get(self, ticket_id: str) -> tuple[Ticket, Revision] | None:
        found = self.store.get(self.path(ticket_id))
        return (_from_doc(Ticket, found[0]), found[1]) if found else None

    def all(self) -> list[Ticket]:
        return [_from_doc(Ticket, d) for _, d, _ in self.store.children(self.collection)]

    def of_booking(self, booking_id: str, quantity: int) -> list[tuple[Ticket, Revision]]:
        found = (self.get(Ticket.id_of(booking_id, n)) for n in range(1, quantity + 1))
        return [pair for pair in found if pair is not None]

    def stage_issue(self, uow: UnitOfWork, ticket: Ticket) -> None:
        uow.create(self.path(ticket.id), _to_doc(ticket))

    def stage_update(self, uow: UnitOfWork, ticket: Ticket, since: Revision) -> None:
        uow.update(self.path(ticket.id), _to_doc(ticket), since=since)


class FakeIdempotencyStore(_Collection):
    collection = "idempotency"

    def get(self, key_id: str) -> IdempotencyRecord | None:
        found = self.store.get(self.path(key_id))
        return IdempotencyRecord(key_id, found[0]["request_hash"], found[0]["resource_id"]) if found else None

    def stage_create(self, uow: UnitOfWork, record: IdempotencyRecord, at: datetime) -> None:
        doc = {"request_hash": record.request_hash, "resource_id": record.resource_id, "created_at": at}
        uow.create(self.path(record.key_id), doc)


class FakeProviderEventStore(_Collection):
    collection = "webhook_events"

    def seen(self, event_id: str) -> bool:
        return self.store.get(self.path(event_id)) is not None

    def stage_seen(self, uow: UnitOfWork, event_id: str, payment_id: str | None, at: datetime) -> None:
        uow.create(self.path(event_id), {"payment_id": payment_id, "received_at": at})


class FakeUserStore(_Collection):
    """Users, their identities, unique usernames and companies, each commit all or nothing."""

    collection = "users"

    @property
    def users(self) -> dict[str, User]:
        return {d["id"]: _from_doc(User, d) for _, d, _ in self.store.children(self.collection)}

    @property
    def companies(self) -> dict[str, Company]:
        return {d["id"]: _from_doc(Company, d) for _, d, _ in self.store.children("companies")}

    def get(self, user_id: str) -> User | None:
        found = self.get_for_update(user_id)
        return found[0] if found else None

    def get_for_update(self, user_id: str) -> tuple[User, Revision] | None:
        found = self.store.get(self.path(user_id))
        return (_from_doc(User, found[0]), found[1]) if found else None

    def access_for(self, identity_key: str) -> tuple[str, str, str | None] | None:
        found = self.store.get(f"identities/{identity_key}")
        return (found[0]["user_id"], found[0]["role"], found[0]["company_id"]) if found else None

    def register(self, user: User, company: Company | None) -> None:
        uow = self.store.new_uow()
        uow.create(
            f"identities/{user.identity_key}", {"user_id": user.id, "role": user.role, "company_id": user.company_id}
        )
        uow.create(f"usernames/{user.username.casefold()}", {"user_id": user.id})
        uow.create(self.path(user.id), _to_doc(user))
        if company is not None:
            uow.create(f"companies/{company.id}", _to_doc(company))
        try:
            uow.commit()
        except DocumentExists:
            if self.store.get(f"identities/{user.identity_key}") is not None:
                raise IdentityTaken from None
            raise UsernameTaken from None

    def update(self, user: User, previous_username: str, since: Revision) -> None:
        uow = self.store.new_uow()
        if user.username.casefold() != previous_username.casefold():
            uow.create(f"usernames/{user.username.casefold()}", {"user_id": user.id})
            uow.delete(f"usernames/{previous_username.casefold()}")
        uow.update(self.path(user.id), _to_doc(user), since=since)
        try:
            uow.commit()
        except DocumentExists:
            raise UsernameTaken from None


class FakeCompanyStore(_Collection):
    collection = "companies"

    def get(self, company_id: str) -> Company | None:
        found = self.store.get(self.path(company_id))
        return _from_doc(Company, found[0]) if found else None


# ---- the other ports ----------------------------------------------------------------------------


class FakeCapacity:
    """Records capacity changes; CapacityChanger itself is tested against slot fakes elsewhere."""

    def __init__(self) -> None:
        self.changes: list[tuple[str, str, int, int]] = []
        self.undone: list[tuple[str, list[int]]] = []

    def lower(self, event_id: str, old: int, new: int, now: datetime) -> list[int]:
        self.changes.append(("lower", event_id, old, new))
        return list(range(new, old))

    def raise_to(self, event_id: str, old: int, new: int) -> None:
        self.changes.append(("raise", event_id, old, new))

    def undo(self, event_id: str, retired: list[int]) -> None:
        self.undone.append((event_id, retired))


class FakeExpiryScheduler:
    def __init__(self) -> None:
        self.scheduled: dict[str, datetime] = {}  # booking id -> when its expiry task runs

    def schedule_expiry(self, booking_id: str, at: datetime) -> None:
        self.scheduled[booking_id] = at


class FakeMailer:
    """The email sender and the log of messages sent (ConfirmationNotifier's SentLog)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str]] = []  # (to, subject, body)
        self.attachments: list[list[Attachment]] = []  # per message: (file name, media type, content)
        self.claimed: set[tuple[str, str]] = set()

    def send(self, to: str, subject: str, body: str, attachments: Sequence[Attachment] = ()) -> None:
        self.sent.append((to, subject, body))
        self.attachments.append(list(attachments))

    def claim(self, booking_id: str, kind: str) -> bool:
        if (booking_id, kind) in self.claimed:
            return False
        self.claimed.add((booking_id, kind))
        return True

    def mark_sent(self, booking_id: str, kind: str) -> None:
        pass

    def release(self, booking_id: str, kind: str) -> None:
        self.claimed.discard((booking_id, kind))


Outcome = Literal["succeed", "decline", "require_action", "process"]


@dataclass
class FakeGateway:
    """The payment provider: intents, and the money it moved (charges, refunds) and cancellations.

    Calls with an idempotency key it has seen answer as the first call did, as Stripe does. An
    intent created with a payment method is confirmed with the next outcome of `will(...)`
    (default: succeed); `time_out(method)` makes the next such call fail before reaching it."""

    name: str = "stripe"
    intents: dict[str, Intent] = field(default_factory=dict)
    charges: list[tuple[str, int, str]] = field(default_factory=list)  # (intent, amount, currency)
    refunds: list[tuple[str, int, str]] = field(default_factory=list)  # (intent, amount, idempotency key)
    cancellations: list[str] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    timeouts: list[str] = field(default_factory=list)
    delivered: list[str] = field(default_factory=list)  # ids of the webhook events made
    _outcomes: dict[str, Outcome] = field(default_factory=dict)  # intent id -> what confirming it does
    _answers: dict[str, Any] = field(default_factory=dict)  # idempotency key -> Intent, refund id or error

    def will(self, *outcomes: Outcome) -> None:
        self.outcomes.extend(outcomes)

    def time_out(self, method: str) -> None:
        self.timeouts.append(method)

    def refunded(self, intent_id: str) -> int:
        return sum(amount for i, amount, _ in self.refunds if i == intent_id)

    def create_intent(
        self,
        *,
        amount: int,
        currency: str,
        metadata: dict[str, str],
        idempotency_key: str,
        payment_method: str | None = None,
    ) -> Intent:
        return self._once(
            idempotency_key, "create_intent", lambda: self._create(amount, currency, metadata, payment_method)
        )

    def confirm_intent(self, intent_id: str, *, idempotency_key: str) -> Intent:
        return self._once(idempotency_key, "confirm_intent", lambda: self._confirm(intent_id))

    def retrieve_intent(self, intent_id: str) -> Intent:
        return self.intents[intent_id]

    def cancel_intent(self, intent_id: str, *, idempotency_key: str) -> Intent:
        def cancel() -> Intent:
            intent = self.intents[intent_id]
            if intent.status not in ("requires_payment_method", "requires_confirmation", "requires_action"):
                raise NotCancellable(intent.status)
            self.cancellations.append(intent_id)
            return self._set(intent_id, "canceled")

        return self._once(idempotency_key, "cancel_intent", cancel)

    def recent_intents(self, since: datetime) -> Iterator[Intent]:
        return iter(list(self.intents.values()))

    def refund(self, intent_id: str, *, idempotency_key: str) -> str:
        def refund() -> str:
            intent = self.intents[intent_id]
            self.refunds.append((intent_id, intent.amount, idempotency_key))
            return f"re_{len(self.refunds)}"

        return self._once(idempotency_key, "refund", refund)

    def settle(self, intent_id: str, outcome: Outcome = "succeed") -> Intent:
        """The buyer finishes paying outside our API (client-side confirmation, 3-D Secure), or an
        asynchronous payment method settles."""
        self._outcomes[intent_id] = outcome
        try:
            return self._confirm(intent_id)
        except Declined:
            return self.intents[intent_id]

    def webhook(self, intent_id: str, status: str | None = None, event_id: str | None = None) -> tuple[bytes, str]:
        """A signed delivery of the provider event saying what became of the intent."""
        intent = self.intents[intent_id]
        event_id = event_id or f"evt_{len(self.delivered) + 1}"
        self.delivered.append(event_id)
        body = {
            "id": event_id,
            "status": status or intent.status,
            "intent": {
                "id": intent.id,
                "status": intent.status,
                "amount": intent.amount,
                "currency": intent.currency,
                "metadata": intent.metadata,
            },
        }
        payload = json.dumps(body).encode()
        return payload, _sign(payload)

    def parse_webhook(self, payload: bytes, signature: str | None) -> ProviderEvent:
        if signature != _sign(payload):
            raise BadSignature()
        body = json.loads(payload)
        return ProviderEvent(body["id"], body["status"], Intent(**body["intent"]))

    def _once(self, key: str, method: str, call: Callable[[], T]) -> T:
        if method in self.timeouts:
            self.timeouts.remove(method)
            raise ProviderUnavailable(f"{method} timed out")
        if key not in self._answers:
            try:
                self._answers[key] = call()
            except (Declined, NotCancellable) as exc:
                self._answers[key] = exc
        answer = self._answers[key]
        if isinstance(answer, Exception):
            raise answer
        return answer  # type: ignore[no-any-return]

    def _create(self, amount: int, currency: str, metadata: dict[str, str], payment_method: str | None) -> Intent:
        intent_id = f"pi_{len(self.intents) + 1}"
        status = "requires_confirmation" if payment_method else "requires_payment_method"
        intent = Intent(intent_id, status, amount, currency, f"{intent_id}_secret", dict(metadata))
        self.intents[intent_id] = intent
        self._outcomes[intent_id] = self.outcomes.pop(0) if self.outcomes else "succeed"
        return intent

    def _confirm(self, intent_id: str) -> Intent:
        outcome = self._outcomes[intent_id]
        if outcome == "decline":
            self._set(intent_id, "requires_payment_method")
            raise Declined("card_declined", intent_id)
        status = {"succeed": "succeeded", "require_action": "requires_action", "process": "processing"}[outcome]
        return self._set(intent_id, status)

    def _set(self, intent_id: str, status: str) -> Intent:
        intent = replace(self.intents[intent_id], status=status)
        self.intents[intent_id] = intent
        if status == "succeeded":
            self.charges.append((intent_id, intent.amount, intent.currency))
        return intent


def _sign(payload: bytes) -> str:
    return hashlib.sha256(b"whsec_test" + payload).hexdigest()


class FakeVerifier:
    """Tokens are whatever the test registered: token -> Identity. Anything else is refused."""

    ISSUER = "https://issuer.example"

    def __init__(self) -> None:
        self.identities: dict[str, Identity] = {}
        self.calls = 0

    def issue(self, subject: str, email: str | None = None) -> str:
        token = f"token-{subject}"
        self.identities[token] = Identity(issuer=self.ISSUER, subject=subject, email=email)
        return token

    def verify(self, token: str) -> Identity:
        self.calls += 1
        try:
            return self.identities[token]
        except KeyError:
            raise Unauthenticated("token not valid") from None


# ---- time and wiring ----------------------------------------------------------------------------


class Clock:
    """The services' `utcnow`, frozen until a test moves it on."""

    MODULES = (
        "shared.services.bookings.holding",
        "shared.services.bookings.releasing",
        "shared.services.bookings.queries",
        "shared.services.payments.ledger",
        "shared.services.payments.paying",
        "shared.services.payments.intake",
        "shared.services.payments.finalising",
        "shared.services.payments.refunding",
        "shared.services.payments.reconciling",
    )

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.at = datetime.now(UTC)
        for module in self.MODULES:
            monkeypatch.setattr(f"{module}.utcnow", self.now)

    def now(self) -> datetime:
        return self.at

    def advance(self, by: timedelta) -> datetime:
        self.at += by
        return self.at


class Wired:
    """The booking and payment services over one document store, wired as shared.bootstrap does."""

    def __init__(
        self,
        hold_ttl: timedelta = timedelta(minutes=10),
        max_pending: int = 2,
        grace: timedelta = timedelta(minutes=15),
        store: DocumentStore | None = None,
        max_holds_per_minute: int = 5,
    ) -> None:
        """`store`: the documents of another Wired (another process of the same deployment)."""
        self.store = store or DocumentStore()
        self.events = FakeEventStore(self.store)
        self.bookings = FakeBookingStore(self.store)
        self.payments = FakePaymentStore(self.store)
        self.inventory = FakeInventory(self.store)
        self.keys = FakeIdempotencyStore(self.store)
        self.tickets = FakeTicketStore(self.store)
        self.codes = TicketCodes.from_setting(new_key_setting("unit"))
        issuer = TicketIssuer(self.tickets, self.codes)
        self.gateway = FakeGateway()
        self.expiry = FakeExpiryScheduler()
        new_uow, gateway = self.store.new_uow, lambda: self.gateway
        picker = SlotPicker(self.inventory, random.Random(7))
        rules = BookingRules(hold_ttl, max_pending, max_holds_per_minute)
        self.counter = counter = TakenCounter(self.inventory.taken)
        self.promo_codes = FakePromoCodeStore(self.store)
        self.use_slots = FakeUseSlots(self.store)
        promos = PromoUses(self.promo_codes, self.use_slots, SlotPicker(self.use_slots, random.Random(8)))
        self.waitlist = FakeWaitlistStore(self.store)
        self.served: list[str] = []  # events whose waitlist was asked to be served (the Cloud Tasks)
        line = WaitingLine(self.waitlist.waiting, max_age=0)
        hooks = WaitlistHooks(self.waitlist, self.served.append)
        self.holding = Holding(
            self.bookings,
            self.keys,
            self.events,
            self.inventory,
            picker,
            counter,
            self.expiry,
            rules,
            new_uow,
            promos,
            issuer,
            line,
        )
        self.releasing = Releasing(self.bookings, self.inventory, picker, counter, new_uow, promos, hooks)
        self.ledger = ledger = PaymentLedger(
            self.payments, self.bookings, self.inventory, new_uow, PaymentRules(grace), self.expiry, promos, hooks
        )
        self.paying = Paying(self.payments, self.bookings, self.keys, ledger, gateway, new_uow)
        self.intake = ProviderEventIntake(self.payments, FakeProviderEventStore(self.store), ledger, gateway, new_uow)
        self.refunding = Refunding(
            self.payments,
            self.bookings,
            self.inventory,
            ledger,
            gateway,
            new_uow,
            issuer,
            promos,
            hooks,
            released=picker.released,
        )
        self.finalising = Finalising(
            self.payments,
            self.bookings,
            self.events,
            self.inventory,
            picker,
            ledger,
            self.refunding,
            issuer,
            new_uow,
            promos,
            hooks,
        )
        self.reconciling = Reconciling(self.payments, self.bookings, ledger, self.finalising, gateway, ledger.rules)

    def booking_of(self, booking_id: str) -> Booking:
        found = self.bookings.get(booking_id)
        assert found is not None, f"no booking {booking_id}"
        return found[0]

    def payment_of(self, payment_id: str) -> Payment:
        found = self.payments.get(payment_id)
        assert found is not None, f"no payment {payment_id}"
        return found[0]

    def claims_of(self, booking: Booking) -> list[Claim]:
        return sorted(self.inventory.claims_of(booking.event_id, booking.id), key=lambda c: c.n)
