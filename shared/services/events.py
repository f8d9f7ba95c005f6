"""Event managers create and change events; anyone finds and reads published ones."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol

from shared import geo
from shared.core.errors import (
    CapacityBelowSold,
    EventCancelled,
    Forbidden,
    NotFound,
    PreconditionRequired,
    ValidationFailed,
    VersionConflict,
)
from shared.dal.records import ConcurrentUpdate, EventQuery, Revision, UnitOfWork
from shared.domain_events import Actor, change
from shared.models import Event, new_id, utcnow, words
from shared.schemas import EventIn, EventOut, EventPatch, EventSearch, Page
from shared.schemas.cancel import CancellationOut
from shared.services.identity import Principal
from shared.services.paging import decode_token, encode_token, fingerprint

# The widest UTC offsets in use: a local date starts at most 14 h before, and ends at most 12 h
# after, the same date in UTC.
EARLIEST_OFFSET, LATEST_OFFSET = timedelta(hours=14), timedelta(hours=12)
SCAN_BUDGET = 500


class EventStore(Protocol):
    def get(self, event_id: str) -> Event | None: ...
    def get_for_update(self, event_id: str) -> tuple[Event, Revision] | None: ...
    def stage_create(self, uow: UnitOfWork, event: Event) -> None: ...
    def stage_update(self, uow: UnitOfWork, event: Event, since: Revision) -> None: ...
    def scan_published(
        self, query: EventQuery, matches: Callable[[Event], bool], limit: int, budget: int
    ) -> tuple[list[Event], tuple[datetime, str] | None]: ...


class Inventory(Protocol):
    def taken(self, event_id: str, now: datetime) -> int: ...


class Capacity(Protocol):
    def lower(self, event_id: str, old: int, new: int, now: datetime) -> list[int]: ...
    def raise_to(self, event_id: str, old: int, new: int) -> None: ...
    def undo(self, event_id: str, retired: list[int]) -> None: ...


@dataclass(frozen=True)
class EventView:
    event: Event
    taken: int
    distance_km: float | None = None
    cancellation: CancellationOut | None = None  # a cancelled event's progress (shared/services/cancelling)

    def out(self) -> EventOut:
        return EventOut.of(self.event, self.taken, self.distance_km, self.cancellation)


def _field_error(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, [{"field": field, "message": message}])


def _check_rules(event: Event, now: datetime, *, schedule_changed: bool) -> None:
    if schedule_changed and event.starts_at <= now:
        raise _field_error("event_date", "the event must start in the future")
    if event.surge_price < event.base_price:
        raise _field_error("surge_price", "surge_price must not be below base_price")


class EventService:
    def __init__(
        self,
        events: EventStore,
        inventory: Inventory,
        capacity: Capacity,
        new_uow: Callable[[], UnitOfWork],
        changed: Callable[[str, bool], None] = lambda event_id, raised: None,
    ) -> None:
        self.events = events
        self.new_uow = new_uow
        self.inventory = inventory
        self.capacity = capacity
        self.changed = changed  # told after an event is saved (caches of this process)
        self._counts = ThreadPoolExecutor(max_workers=8, thread_name_prefix="event-counts")  # a page's counts at once

    # ---- managers ---------------------------------------------------------------------------

    def create(self, principal: Principal, data: EventIn) -> EventView:
        if not principal.is_admin or principal.company_id is None:
            raise Forbidden("only event managers create events")
        now = utcnow()
        fields = data.model_dump()
        event = Event(
            id=new_id(),
            company_id=principal.company_id,
            version=1,
            created_at=now,
            updated_at=now,
            **{**fields, "event_time": time.fromisoformat(fields["event_time"])},
        )
        _check_rules(event, now, schedule_changed=True)
        uow = self.new_uow()
        self.events.stage_create(uow, event)
        uow.record(change("created", event, Actor.user(principal.user_id), now))
        uow.commit()
        return EventView(event, 0)

    def update(self, principal: Principal, event_id: str, patch: EventPatch, if_match: str | None) -> EventView:
        """Compare and set: the version the caller read must still be the stored one, and the
        document must not change between this read and the write. Of concurrent updates with the
        same If-Match exactly one wins; the others are 412, whatever the contention."""
        found = self.events.get_for_update(event_id)
        if found is None or not (found[0].is_public or principal.manages(found[0].company_id)):
            raise NotFound("event not found")
        current, read_at = found
        if not principal.manages(current.company_id):
            raise Forbidden("only the owning company's admins change an event")
        if current.is_cancelled:
            raise EventCancelled("a cancelled event is not changed any more")
        expected = _expected_version(if_match, patch.version)
        if current.version != expected:
            raise VersionConflict(f"current version is {current.version}")
        now = utcnow()
        changes = patch.changes()
        if "event_time" in changes:
            changes["event_time"] = time.fromisoformat(changes["event_time"])
        revised = current.revised(now, **changes)
        schedule_changed = revised.starts_at != current.starts_at
        _check_rules(revised, now, schedule_changed=schedule_changed)
        taken = self.inventory.taken(event_id, now)
        if revised.capacity < taken:
            raise CapacityBelowSold(f"{taken} tickets are sold or held")
        retired = self._fit_inventory(current.capacity, revised.capacity, event_id, now)
        uow = self.new_uow()
        self.events.stage_update(uow, revised, since=read_at)
        uow.record(change("updated", revised, Actor.user(principal.user_id), now, before=current))
        try:
            uow.commit()
        except ConcurrentUpdate:
            latest = self.events.get(event_id)
            # Give back only what the winner's capacity does not retire itself.
            self.capacity.undo(event_id, [n for n in retired if latest is None or n < latest.capacity])
            if latest is not None and latest.is_cancelled:
                raise EventCancelled("the event was cancelled meanwhile") from None
            raise VersionConflict(f"current version is {latest.version if latest else expected + 1}") from None
        except Exception:  # committed or not, nobody knows (the answer was lost): act as if it was
            self._after_commit(event_id, current, revised)
            raise
        self._after_commit(event_id, current, revised)
        return EventView(revised, self.inventory.taken(event_id, now))

    def _after_commit(self, event_id: str, current: Event, revised: Event) -> None:
        if revised.capacity > current.capacity:
            # Once more, now that the raise is committed: a stale lowering (of an older version) may
            # have retired a slot of [old, new) after the first pass; its own undo read the
            # capacity before this commit, so it left it (docs/inventory.md, "Capacity changes").
            # Harmless if the commit did not happen: those slots lie above the capacity it kept.
            self.capacity.raise_to(event_id, current.capacity, revised.capacity)
        # this process's cached event is read again; a raised capacity frees tickets for the line
        self.changed(event_id, revised.capacity > current.capacity)

    def _fit_inventory(self, old: int, new: int, event_id: str, now: datetime) -> list[int]:
        if new < old:
            return self.capacity.lower(event_id, old, new, now)
        if new > old:
            self.capacity.raise_to(event_id, old, new)
        return []

    # ---- everyone ---------------------------------------------------------------------------

    def get(self, principal: Principal | None, event_id: str) -> EventView:
        event = self._visible(principal, event_id)
        return EventView(event, self.inventory.taken(event_id, utcnow()))

    def search(self, criteria: EventSearch) -> Page[EventOut]:
        now = utcnow()
        query_fingerprint = _fingerprint(criteria)
        after = decode_token(criteria.page_token, query_fingerprint) if criteria.page_token else None
        query, matches, distance = _plan(criteria, now, after)
        found, cursor = self.events.scan_published(query, matches, criteria.limit, SCAN_BUDGET)
        views = self._with_availability(found, now, distance)
        token = encode_token(cursor, query_fingerprint) if cursor else None
        return Page[EventOut](items=[v.out() for v in views], next_page_token=token)

    def _visible(self, principal: Principal | None, event_id: str) -> Event:
        event = self.events.get(event_id)
        if event is None:
            raise NotFound("event not found")
        if not event.is_public and not (principal and principal.manages(event.company_id)):
            raise NotFound("event not found")
        return event

    def _with_availability(
        self, events: list[Event], now: datetime, distance: Callable[[Event], float | None]
    ) -> list[EventView]:
        if not events:
            return []
        taken = list(self._counts.map(lambda e: self.inventory.taken(e.id, now), events))
        return [EventView(e, t, distance(e)) for e, t in zip(events, taken, strict=True)]


def _expected_version(if_match: str | None, body_version: int | None) -> int:
    if if_match:
        tag = if_match.strip().removeprefix("W/").strip('"')
        if not (tag.isascii() and tag.isdigit() and len(tag) <= 18):  # "²".isdigit() is True too
            raise _field_error("If-Match", 'If-Match must be "<version>"')
        return int(tag)
    if body_version is not None:
        return body_version
    raise PreconditionRequired()


def _plan(
    criteria: EventSearch, now: datetime, after: tuple[datetime, str] | None
) -> tuple[EventQuery, Callable[[Event], bool], Callable[[Event], float | None]]:
    """Split the search into what Firestore filters and what is checked per scanned event."""
    starts_from = now
    if criteria.from_:
        starts_from = max(now, _utc_midnight(criteria.from_) - EARLIEST_OFFSET)
    starts_before = _utc_midnight(criteria.to + timedelta(days=1)) + LATEST_OFFSET if criteria.to else None
    wanted = sorted(set(words(criteria.q or "")), key=len, reverse=True)
    cells = None
    if criteria.lat is not None and criteria.lng is not None and criteria.radius_km is not None:
        cells = geo.covering_cells(criteria.lat, criteria.lng, criteria.radius_km)
    query = EventQuery(
        starts_from=starts_from,
        starts_before=starts_before,
        geohash_precision=cells[0] if cells else None,
        geohash_cells=tuple(cells[1]) if cells else (),
        token=wanted[0] if wanted and not cells else None,
        after=after,
    )

    def distance(event: Event) -> float | None:
        if criteria.lat is None or criteria.lng is None:
            return None
        return geo.haversine_km(criteria.lat, criteria.lng, event.location_lat, event.location_long)

    def matches(event: Event) -> bool:
        if event.starts_at < now:
            return False
        if criteria.from_ and event.event_date < criteria.from_:
            return False
        if criteria.to and event.event_date > criteria.to:
            return False
        if wanted and not set(wanted) <= set(event.search_tokens()):
            return False
        d = distance(event)
        return d is None or criteria.radius_km is None or d <= criteria.radius_km

    return query, matches, distance


def _utc_midnight(day: date) -> datetime:
    return datetime.combine(day, time(0, 0), UTC)


def _fingerprint(criteria: EventSearch) -> str:
    return fingerprint(criteria.model_dump(mode="json", exclude={"page_token", "limit"}))
