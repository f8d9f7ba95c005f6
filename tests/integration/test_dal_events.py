"""EventDAL and InventoryDAL against the Firestore emulator.

Every write goes through a FirestoreUnitOfWork, as in production: a create is refused if the event
exists, an update carries the revision (update time) its caller read and is refused if anyone
wrote the event since. Every test works on its own ids, its own search word and its own place or
time window, so the shared emulator database (other tests write to it too) never changes what a
test sees.
"""

from __future__ import annotations

import random
import secrets
import threading
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from google.cloud.firestore_v1.base_query import FieldFilter

from shared import geo
from shared.dal.events import EventDAL
from shared.dal.inventory import InventoryDAL
from shared.dal.records import ConcurrentUpdate, DocumentExists, EventQuery, Revision
from shared.dal.stream import DomainEventDAL
from shared.dal.unit_of_work import FirestoreUnitOfWork
from shared.domain_events import Actor, change
from shared.models import Event

CREATED = datetime(2029, 6, 1, 12, 0, tzinfo=UTC)
FAR = datetime(2000, 1, 1, tzinfo=UTC)  # a scan floor before every event of these tests
MANAGER = Actor.user("manager-1")


def word() -> str:
    """A search word no other test uses (letters and digits only, so it stays one token)."""
    return "w" + secrets.token_hex(6)


def make_event(**overrides: Any) -> Event:
    fields: dict[str, Any] = {
        "id": f"ev-{secrets.token_hex(8)}",
        "company_id": f"co-{secrets.token_hex(4)}",
        "name": "Spring Concert",
        "description": "An evening of music",
        "event_date": date(2031, 5, 1),
        "event_time": time(20, 0),
        "timezone": "Europe/Berlin",
        "venue": "Tempodrom",
        "location_lat": 52.5009,
        "location_long": 13.3807,
        "capacity": 100,
        "base_price": 2500,
        "surge_price": 4000,
        "surge_threshold": 0.8,
        "currency": "EUR",
        "max_tickets_per_booking": 10,
        "status": "published",
        "version": 1,
        "created_at": CREATED,
        "updated_at": CREATED,
    }
    fields.update(overrides)
    return Event(**fields)


def at_utc(moment: datetime, **overrides: Any) -> Event:
    """An event (in UTC) starting at `moment`."""
    return make_event(event_date=moment.date(), event_time=moment.time(), timezone="UTC", **overrides)


def unique_window() -> datetime:
    """Midnight UTC of a random far-future day, a window no other test's events fall into."""
    return datetime(random.randint(2300, 2900), random.randint(1, 12), random.randint(1, 28), tzinfo=UTC)


def unique_place() -> tuple[float, float]:
    return random.uniform(-60.0, 60.0), random.uniform(-170.0, 170.0)


@pytest.fixture
def events(firestore_client: Any) -> EventDAL:
    return EventDAL(firestore_client)


@pytest.fixture
def inventory(firestore_client: Any) -> InventoryDAL:
    return InventoryDAL(firestore_client)


def new_uow(events: EventDAL) -> FirestoreUnitOfWork:
    return FirestoreUnitOfWork(events.client, DomainEventDAL(events.client))


def create(events: EventDAL, *created: Event) -> None:
    """Create the events in one commit, each with its domain event, as EventService.create does."""
    uow = new_uow(events)
    for event in created:
        events.stage_create(uow, event)
        uow.record(change("created", event, MANAGER, event.created_at))
    uow.commit()


def update(events: EventDAL, before: Event, after: Event, since: Revision) -> None:
    """Store `after` if the event is unchanged since `since`, with its domain event (EventService.update)."""
    uow = new_uow(events)
    events.stage_update(uow, after, since=since)
    uow.record(change("updated", after, MANAGER, after.updated_at, before=before))
    uow.commit()


def stream_of(firestore_client: Any, event_id: str) -> list[dict[str, Any]]:
    """The domain-event records of one ticketed event, as stored."""
    query = firestore_client.collection("domain_events").where(filter=FieldFilter("event_id", "==", event_id))
    return [s.to_dict() for s in query.stream()]


def only(ids: set[str]) -> Any:
    return lambda event: event.id in ids


def scan_all(dal: EventDAL, query: EventQuery, matches: Any, limit: int) -> list[list[str]]:
    """Follow cursors until the DAL says nothing is left; the ids of each page."""
    pages: list[list[str]] = []
    after = query.after
    for _ in range(50):
        found, cursor = dal.scan_published(replace(query, after=after), matches, limit, 500)
        pages.append([e.id for e in found])
        if cursor is None:
            return pages
        after = cursor
    raise AssertionError("the scan never ended")


# ---- create / get ----------------------------------------------------------------------


def test_create_then_get_returns_the_same_event(events: EventDAL, firestore_client: Any) -> None:
    event = make_event(name="Winter Gala", description=None, event_time=time(9, 30), max_tickets_per_booking=4)
    create(events, event)

    stored = events.get(event.id)
    assert stored == event
    assert stored is not None
    assert stored.starts_at == datetime(2031, 5, 1, 7, 30, tzinfo=UTC)
    found = events.get_for_update(event.id)
    assert found is not None
    assert found[0] == event
    snap = firestore_client.collection("events").document(event.id).get()
    assert found[1] == Revision(snap.update_time)
    records = stream_of(firestore_client, event.id)
    assert [(r["action"], r["object_id"], r["sequence"]) for r in records] == [("event.created", event.id, 1)]


def test_stored_document_carries_search_tokens_and_geohashes(events: EventDAL, firestore_client: Any) -> None:
    event = make_event(name="The Big-Night 2031", venue="Tempodrom Arena")
    create(events, event)

    doc = firestore_client.collection("events").document(event.id).get().to_dict()
    assert doc["search_tokens"] == sorted({"the", "big", "night", "2031", "tempodrom", "arena"})
    assert doc["starts_at"] == event.starts_at
    full = geo.encode(event.location_lat, event.location_long, 6)
    for precision in range(1, 7):
        assert doc[f"geohash_{precision}"] == full[:precision]


def test_create_with_an_existing_id_is_refused_and_keeps_the_original(events: EventDAL, firestore_client: Any) -> None:
    event = make_event()
    create(events, event)
    before = firestore_client.collection("events").document(event.id).get()

    with pytest.raises(DocumentExists):
        create(events, replace(event, name="Impostor"))

    assert events.get(event.id) == event
    after = firestore_client.collection("events").document(event.id).get()
    assert after.update_time == before.update_time
    assert [r["action"] for r in stream_of(firestore_client, event.id)] == ["event.created"]  # one, not two


def test_get_unknown_is_none(events: EventDAL) -> None:
    missing = f"missing-{secrets.token_hex(6)}"
    assert events.get(missing) is None
    assert events.get_for_update(missing) is None


# ---- stage_update: compare and set on the revision read -----------------------------------


def test_update_with_the_current_revision_writes(events: EventDAL, firestore_client: Any) -> None:
    event = make_event()
    create(events, event)
    found = events.get_for_update(event.id)
    assert found is not None
    current, read_at = found
    revised = current.revised(CREATED + timedelta(days=1), name="Renamed", capacity=50)

    update(events, current, revised, read_at)

    stored = events.get(event.id)
    assert stored == revised
    assert stored is not None
    assert stored.version == 2
    again = events.get_for_update(event.id)
    assert again is not None
    assert again[1].at > read_at.at  # the write moved the revision on
    updated = [r for r in stream_of(firestore_client, event.id) if r["action"] == "event.updated"]
    assert len(updated) == 1
    assert updated[0]["sequence"] == 2
    assert updated[0]["changes"] == {"name": ["Spring Concert", "Renamed"], "capacity": [100, 50]}


def test_update_with_a_stale_revision_is_concurrent_update_and_writes_nothing(
    events: EventDAL, firestore_client: Any
) -> None:
    event = make_event()
    create(events, event)
    found = events.get_for_update(event.id)
    assert found is not None
    current, stale = found
    v2 = current.revised(CREATED, name="Second")
    update(events, current, v2, stale)

    with pytest.raises(ConcurrentUpdate):
        update(events, current, current.revised(CREATED, name="Lost update"), stale)

    assert events.get(event.id) == v2
    latest = events.get_for_update(event.id)
    assert latest is not None
    assert latest[0].version == 2
    names = [r["changes"]["name"][1] for r in stream_of(firestore_client, event.id) if r["action"] == "event.updated"]
    assert names == ["Second"]  # the lost update left no domain event either


def test_update_of_an_event_that_is_gone_is_concurrent_update(events: EventDAL, firestore_client: Any) -> None:
    event = make_event()
    create(events, event)
    found = events.get_for_update(event.id)
    assert found is not None
    firestore_client.collection("events").document(event.id).delete()

    with pytest.raises(ConcurrentUpdate):
        update(events, found[0], found[0].revised(CREATED, name="Ghost"), found[1])

    assert events.get(event.id) is None  # not recreated by the update


def race(dal: EventDAL, event_id: str, rounds_name: str, writers: int) -> tuple[list[object], list[Event]]:
    """Each writer reads the event (revision), waits for all the others to have read, then stages
    its own change with that revision in its own unit of work and commits. Each outcome is "won"
    or the exception raised; also returns what each writer tried to store."""
    barrier = threading.Barrier(writers)
    outcomes: list[object] = [None] * writers
    candidates: list[Event | None] = [None] * writers
    revisions: list[Revision | None] = [None] * writers

    def write(i: int) -> None:
        try:
            found = dal.get_for_update(event_id)
            assert found is not None
            current, read_at = found
            candidates[i] = revised = current.revised(CREATED, name=f"{rounds_name} writer {i}")
            revisions[i] = read_at
            barrier.wait(timeout=30)  # every writer has read before anyone writes
            update(dal, current, revised, read_at)
            outcomes[i] = "won"
        except BaseException as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a writer hung"
    assert len(set(revisions)) == 1, revisions  # all read the same revision: a real race
    return outcomes, [c for c in candidates if c is not None]


@pytest.mark.parametrize("writers", [2, 8])
def test_concurrent_updates_from_the_same_revision_exactly_one_wins(
    events: EventDAL, firestore_client: Any, writers: int
) -> None:
    for round_no in range(5):
        event = make_event()
        create(events, event)

        outcomes, candidates = race(events, event.id, f"round {round_no}", writers)

        winners = [i for i, o in enumerate(outcomes) if o == "won"]
        assert len(winners) == 1, outcomes
        losers = [o for i, o in enumerate(outcomes) if i not in winners]
        assert all(type(o) is ConcurrentUpdate for o in losers), outcomes  # never anything else
        assert len(losers) == writers - 1
        stored = events.get(event.id)
        assert stored == candidates[winners[0]]
        assert stored is not None
        assert stored.version == 2
        updated = [r for r in stream_of(firestore_client, event.id) if r["action"] == "event.updated"]
        assert [r["changes"]["name"][1] for r in updated] == [stored.name]  # only the winner's event


# ---- scan_published -------------------------------------------------------------------------


def test_scan_by_token_finds_published_events_with_that_word_in_start_order(events: EventDAL) -> None:
    w = word()
    base = datetime(2031, 3, 1, 18, 0, tzinfo=UTC)
    late = at_utc(base + timedelta(days=2), name=f"Late {w}")
    early = at_utc(base, name=f"Early {w}")
    in_venue = at_utc(base + timedelta(days=1), name="Elsewhere", venue=f"Hall {w.upper()}")
    draft = at_utc(base, name=f"Draft {w}", status="draft")
    other = at_utc(base, name="Unrelated words")
    create(events, late, early, in_venue, draft, other)

    found, cursor = events.scan_published(EventQuery(starts_from=FAR, token=w), lambda e: True, 10, 500)

    assert [e.id for e in found] == [early.id, in_venue.id, late.id]
    assert found[0] == early
    assert cursor is None


def test_scan_respects_starts_from_inclusive_and_starts_before_exclusive(events: EventDAL) -> None:
    w = word()
    day = unique_window()
    before = at_utc(day - timedelta(minutes=1), name=w)
    at_start = at_utc(day, name=w)
    inside = at_utc(day + timedelta(hours=5), name=w)
    at_end = at_utc(day + timedelta(days=1), name=w)
    create(events, before, at_start, inside, at_end)
    ids = {e.id for e in (before, at_start, inside, at_end)}

    # without a token or cells: a pure start-range query over every published event
    query = EventQuery(starts_from=day, starts_before=day + timedelta(days=1))
    found, cursor = events.scan_published(query, only(ids), 10, 500)
    assert [e.id for e in found] == [at_start.id, inside.id]
    assert cursor is None

    # the same with the token
    found, _ = events.scan_published(replace(query, token=w), lambda e: True, 10, 500)
    assert [e.id for e in found] == [at_start.id, inside.id]


def test_scan_by_geohash_cells_finds_only_events_in_those_cells(events: EventDAL) -> None:
    lat, lng = unique_place()
    precision = 5
    cell = geo.encode(lat, lng, precision)
    height, width = geo.cell_size_deg(precision)
    moment = datetime(2031, 7, 1, 19, 0, tzinfo=UTC)
    here = make_event(
        location_lat=lat, location_long=lng, event_date=moment.date(), event_time=moment.time(), timezone="UTC"
    )
    far = make_event(**{**_fields(here), "id": f"ev-{secrets.token_hex(8)}", "location_lat": lat + 5 * height})
    neighbour_lng = lng + 1.5 * width
    neighbour = make_event(**{**_fields(here), "id": f"ev-{secrets.token_hex(8)}", "location_long": neighbour_lng})
    draft = make_event(**{**_fields(here), "id": f"ev-{secrets.token_hex(8)}", "status": "draft"})
    create(events, here, far, neighbour, draft)
    neighbour_cell = geo.encode(lat, neighbour_lng, precision)
    assert neighbour_cell != cell

    query = EventQuery(starts_from=FAR, geohash_precision=precision, geohash_cells=(cell,))
    found, _ = events.scan_published(query, lambda e: e.company_id == here.company_id, 10, 500)
    assert [e.id for e in found] == [here.id]

    both = replace(query, geohash_cells=(cell, neighbour_cell))
    found, _ = events.scan_published(both, lambda e: e.company_id == here.company_id, 10, 500)
    assert sorted(e.id for e in found) == sorted([here.id, neighbour.id])


def _fields(event: Event) -> dict[str, Any]:
    return {k: v for k, v in event.__dict__.items() if k != "starts_at"}


def test_scan_applies_matches_to_every_scanned_event(events: EventDAL) -> None:
    w = word()
    base = datetime(2031, 4, 1, tzinfo=UTC)
    created = [at_utc(base + timedelta(hours=i), name=w, capacity=10 + i) for i in range(6)]
    create(events, *created)

    found, cursor = events.scan_published(EventQuery(starts_from=FAR, token=w), lambda e: e.capacity % 2 == 0, 10, 500)

    assert [e.id for e in found] == [e.id for e in created if e.capacity % 2 == 0]
    assert cursor is None


def test_scan_cursor_continues_after_the_last_event_returned_with_ties_on_start(events: EventDAL) -> None:
    w = word()
    base = datetime(2031, 8, 1, 20, 0, tzinfo=UTC)
    # three events share one start: the cursor must break the tie by id
    created = [at_utc(base, name=w) for _ in range(3)] + [at_utc(base + timedelta(days=i), name=w) for i in (1, 2)]
    create(events, *created)
    expected = [e.id for e in sorted(created, key=lambda e: (e.starts_at, e.id))]
    query = EventQuery(starts_from=FAR, token=w)

    first, cursor = events.scan_published(query, lambda e: True, 2, 500)
    assert [e.id for e in first] == expected[:2]
    assert cursor == (first[-1].starts_at, first[-1].id)

    second, cursor = events.scan_published(replace(query, after=cursor), lambda e: True, 2, 500)
    assert [e.id for e in second] == expected[2:4]

    pages = scan_all(events, query, lambda e: True, 2)
    flat = [i for page in pages for i in page]
    assert flat == expected  # every event exactly once, in order


def test_scan_stops_at_the_budget_and_returns_a_cursor_to_go_on(events: EventDAL) -> None:
    w = word()
    base = datetime(2031, 9, 1, tzinfo=UTC)
    created = [at_utc(base + timedelta(hours=i), name=w) for i in range(7)]
    create(events, *created)
    query = EventQuery(starts_from=FAR, token=w)
    seen: list[str] = []

    def nothing_matches(event: Event) -> bool:
        seen.append(event.id)
        return False

    found, cursor = events.scan_published(query, nothing_matches, 10, 3)

    assert found == []
    assert seen == [e.id for e in created[:3]]  # read exactly the budget, no more
    # four events are still unread: the scan must say where to go on, not that nothing is left
    assert cursor == (created[2].starts_at, created[2].id)

    seen.clear()
    found, cursor = events.scan_published(replace(query, after=cursor), lambda e: True, 10, 10)
    assert [e.id for e in found] == [e.id for e in created[3:]]
    assert cursor is None


def test_scan_with_a_budget_above_one_chunk_reads_everything(events: EventDAL) -> None:
    w = word()
    base = datetime(2031, 10, 1, tzinfo=UTC)
    created = [at_utc(base + timedelta(minutes=i), name=w) for i in range(55)]
    create(events, *created)

    found, cursor = events.scan_published(EventQuery(starts_from=FAR, token=w), lambda e: True, 100, 500)

    assert [e.id for e in found] == [e.id for e in created]
    assert cursor is None


def test_scan_returns_a_cursor_when_the_page_is_full(events: EventDAL) -> None:
    w = word()
    base = datetime(2031, 11, 1, tzinfo=UTC)
    created = [at_utc(base + timedelta(hours=i), name=w) for i in range(3)]
    create(events, *created)

    found, cursor = events.scan_published(EventQuery(starts_from=FAR, token=w), lambda e: True, 2, 500)

    assert [e.id for e in found] == [e.id for e in created[:2]]
    assert cursor == (created[1].starts_at, created[1].id)


# ---- InventoryDAL.taken ---------------------------------------------------------------------


def seed_slots(client: Any, event_id: str, held_until: list[Any], collection: str = "slots") -> None:
    slots = client.collection("events").document(event_id).collection(collection)
    for i, until in enumerate(held_until):
        doc: dict[str, Any] = {"n": i}
        if until is not None:
            doc["held_until"] = until
        slots.document(f"s{i:03d}").set(doc)


def test_taken_counts_only_unexpired_slots_of_that_event(inventory: InventoryDAL, firestore_client: Any) -> None:
    now = datetime(2031, 1, 1, 12, 0, tzinfo=UTC)
    event_id = f"ev-{secrets.token_hex(8)}"
    other_id = f"ev-{secrets.token_hex(8)}"
    sold = datetime(9999, 12, 31, tzinfo=UTC)
    seed_slots(
        firestore_client,
        event_id,
        [
            now + timedelta(minutes=5),  # held
            now + timedelta(seconds=1),  # held
            sold,  # sold
            now,  # expires exactly now: free
            now - timedelta(minutes=1),  # expired
            None,  # no hold at all
        ],
    )
    seed_slots(firestore_client, other_id, [now + timedelta(minutes=5)] * 4)
    seed_slots(firestore_client, event_id, [now + timedelta(minutes=5)] * 2, collection="not_slots")

    assert inventory.taken(event_id, now) == 3
    assert inventory.taken(other_id, now) == 4
    # the same slots, later: the holds have run out, the sold ticket stays taken
    assert inventory.taken(event_id, now + timedelta(hours=1)) == 1


def test_taken_of_an_event_without_slots_is_zero(inventory: InventoryDAL) -> None:
    now = datetime(2031, 1, 1, tzinfo=UTC)
    assert inventory.taken(f"ev-{secrets.token_hex(8)}", now) == 0
