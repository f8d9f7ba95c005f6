"""EventService against fakes: who may create, see and change events; search, dates, distance, paging."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pydantic
import pytest

from shared import geo
from shared.core.errors import (
    CapacityBelowSold,
    Forbidden,
    NotFound,
    PreconditionRequired,
    ValidationFailed,
    VersionConflict,
)
from shared.domain_events import INTEGRATION_EVENTS, Actor
from shared.models import Event, new_id
from shared.schemas import EventIn, EventOut, EventPatch, EventSearch
from shared.services.events import SCAN_BUDGET, EventService
from shared.services.identity import Principal
from shared.services.paging import encode_token
from tests.unit.fakes import DocumentStore, FakeCapacity, FakeEventStore, FakeInventory

ADMIN_A = Principal("user-a", "admin", "company-a")
ADMIN_B = Principal("user-b", "admin", "company-b")
BUYER = Principal("user-c", "user", None)
DAY = date.today() + timedelta(days=400)  # always in the future, whenever the suite runs
NOW = datetime.now(UTC)


def event_in(**overrides: Any) -> EventIn:
    body: dict[str, Any] = {
        "name": "Spring Concert",
        "description": "An evening of music",
        "event_date": DAY.isoformat(),
        "event_time": "20:00",
        "timezone": "Europe/Berlin",
        "venue": "Tempodrom",
        "location_lat": 52.5009,
        "location_long": 13.3807,
        "capacity": 100,
        "base_price": 2500,
        "surge_price": 4000,
        "surge_threshold": 0.8,
        "currency": "EUR",
    }
    body.update(overrides)
    return EventIn.model_validate(body)


def make_event(**overrides: Any) -> Event:
    fields: dict[str, Any] = {
        "id": new_id(),
        "company_id": "company-a",
        "name": "Spring Concert",
        "description": None,
        "event_date": DAY,
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
        "created_at": NOW,
        "updated_at": NOW,
    }
    fields.update(overrides)
    return Event(**fields)


def search_for(**params: Any) -> EventSearch:
    return EventSearch.model_validate({k.rstrip("_"): v for k, v in params.items()})


@pytest.fixture
def docs() -> DocumentStore:
    return DocumentStore()


@pytest.fixture
def store(docs: DocumentStore) -> FakeEventStore:
    return FakeEventStore(docs)


@pytest.fixture
def inventory(docs: DocumentStore) -> FakeInventory:
    return FakeInventory(docs)


@pytest.fixture
def capacity() -> FakeCapacity:
    return FakeCapacity()


@pytest.fixture
def service(
    docs: DocumentStore, store: FakeEventStore, inventory: FakeInventory, capacity: FakeCapacity
) -> EventService:
    return EventService(store, inventory, capacity, docs.new_uow)


def field_of(raised: pytest.ExceptionInfo[ValidationFailed]) -> list[str]:
    return [e["field"] for e in raised.value.extra["errors"]]


# ---- create -------------------------------------------------------------------------------


def test_admin_creates_a_published_event_for_their_company(
    service: EventService, store: FakeEventStore, docs: DocumentStore
) -> None:
    view = service.create(ADMIN_A, event_in())
    event = store.get(view.event.id)
    assert event == view.event
    assert (event.company_id, event.version, event.status) == ("company-a", 1, "published")
    assert event.max_tickets_per_booking == 10
    out = view.out()
    assert (out.available_tickets, out.current_price, out.event_time) == (100, 2500, "20:00")
    [created] = docs.events
    assert (created.action, created.object_id, created.actor, created.sequence) == (
        "event.created",
        event.id,
        Actor.user("user-a"),
        1,
    )
    assert (created.company_id, created.event_id, created.topics) == ("company-a", event.id, (INTEGRATION_EVENTS,))


def test_starts_at_is_the_local_time_in_utc(service: EventService) -> None:
    view = service.create(ADMIN_A, event_in(event_date="2031-07-01", event_time="20:00", timezone="Europe/Berlin"))
    assert view.event.starts_at == datetime(2031, 7, 1, 18, 0, tzinfo=UTC)


def test_admin_may_create_a_draft(service: EventService) -> None:
    assert service.create(ADMIN_A, event_in(status="draft")).event.status == "draft"


@pytest.mark.parametrize("who", [BUYER, Principal("user-x", "admin", None)])
def test_only_admins_of_a_company_create_events(service: EventService, store: FakeEventStore, who: Principal) -> None:
    with pytest.raises(Forbidden):
        service.create(who, event_in())
    assert store.events == {}


@pytest.mark.parametrize(
    "when",
    [{"event_date": "2020-01-01"}, {"event_date": date.today().isoformat(), "event_time": "00:00", "timezone": "UTC"}],
)
def test_event_starting_in_the_past_is_refused(
    service: EventService, store: FakeEventStore, when: dict[str, str]
) -> None:
    with pytest.raises(ValidationFailed) as raised:
        service.create(ADMIN_A, event_in(**when))
    assert field_of(raised) == ["event_date"]
    assert store.events == {}


def test_surge_price_below_base_price_is_refused(service: EventService, store: FakeEventStore) -> None:
    with pytest.raises(ValidationFailed) as raised:
        service.create(ADMIN_A, event_in(base_price=3000, surge_price=2999))
    assert field_of(raised) == ["surge_price"]
    assert store.events == {}


def test_surge_price_equal_to_base_price_is_fine(service: EventService) -> None:
    assert service.create(ADMIN_A, event_in(base_price=3000, surge_price=3000)).event.surge_price == 3000


@pytest.mark.parametrize(
    "bad",
    [
        {"timezone": "Mars/Olympus"},
        {"event_time": "24:00"},
        {"capacity": 0},
        {"surge_threshold": 0},
        {"surge_threshold": 1.5},
        {"currency": "eur"},
        {"location_lat": 91},
        {"base_price": -1},
        {"organiser": "me"},
    ],
)
def test_invalid_event_bodies_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(pydantic.ValidationError):
        event_in(**bad)


# ---- get ----------------------------------------------------------------------------------


@pytest.mark.parametrize("who", [None, BUYER, ADMIN_A, ADMIN_B])
def test_published_event_is_visible_to_everyone(service: EventService, store: FakeEventStore, who: Any) -> None:
    event = store.add(make_event())
    assert service.get(who, event.id).event == event


@pytest.mark.parametrize("who", [None, BUYER, ADMIN_B])
def test_draft_is_hidden_from_everyone_but_its_company(service: EventService, store: FakeEventStore, who: Any) -> None:
    event = store.add(make_event(status="draft"))
    with pytest.raises(NotFound):
        service.get(who, event.id)


def test_draft_is_visible_to_its_company_admins(service: EventService, store: FakeEventStore) -> None:
    event = store.add(make_event(status="draft"))
    assert service.get(ADMIN_A, event.id).event == event


def test_unknown_event_is_not_found(service: EventService) -> None:
    with pytest.raises(NotFound):
        service.get(None, "no-such-event")


def test_event_shows_available_tickets_and_current_price(
    service: EventService, store: FakeEventStore, inventory: FakeInventory
) -> None:
    event = store.add(make_event(capacity=100, surge_threshold=0.8))
    inventory.set_taken(event.id, 79)
    before = service.get(None, event.id).out()
    inventory.set_taken(event.id, 80)
    after = service.get(None, event.id).out()
    assert (before.available_tickets, before.current_price) == (21, 2500)
    assert (after.available_tickets, after.current_price) == (20, 4000)


@pytest.mark.parametrize(
    ("capacity", "threshold", "taken", "price"),
    [
        (100, 0.8, 0, 2500),
        (100, 0.8, 79, 2500),
        (100, 0.8, 80, 4000),
        (100, 0.8, 100, 4000),
        (10, 0.7, 6, 2500),
        (10, 0.7, 7, 4000),
        (3, 1 / 3, 1, 4000),
        (100, 0.29, 28, 2500),
        (100, 0.29, 29, 4000),
        (1, 1.0, 0, 2500),
        (1, 1.0, 1, 4000),
    ],
)
def test_unit_price_switches_to_surge_at_the_threshold(capacity: int, threshold: float, taken: int, price: int) -> None:
    assert make_event(capacity=capacity, surge_threshold=threshold).unit_price(taken) == price


def test_available_tickets_never_go_negative() -> None:
    assert EventOut.of(make_event(capacity=5), taken=7).available_tickets == 0


# ---- update -------------------------------------------------------------------------------


def test_update_applies_changes_and_bumps_the_version(
    service: EventService, store: FakeEventStore, docs: DocumentStore
) -> None:
    event = store.add(make_event())
    view = service.update(ADMIN_A, event.id, EventPatch(name="Summer Concert"), '"1"')
    assert view.event.version == 2
    assert view.event.name == "Summer Concert"
    assert view.event.updated_at >= event.updated_at
    assert store.get(event.id) == view.event
    [updated] = docs.events
    assert (updated.action, updated.actor, updated.sequence) == ("event.updated", Actor.user("user-a"), 2)
    assert updated.changes == {"name": ["Spring Concert", "Summer Concert"]}


def test_each_update_is_one_more_in_the_events_sequence(
    service: EventService, store: FakeEventStore, docs: DocumentStore
) -> None:
    event = store.add(make_event())
    for version in (1, 2, 3):
        service.update(ADMIN_A, event.id, EventPatch(name=f"Name {version}"), f'"{version}"')
    assert [e.sequence for e in docs.events_of(event.id)] == [2, 3, 4]
    assert store.get(event.id).version == 4  # type: ignore[union-attr]


@pytest.mark.parametrize("if_match", ['"1"', "1", 'W/"1"', ' "1" '])
def test_if_match_forms_are_accepted(service: EventService, store: FakeEventStore, if_match: str) -> None:
    event = store.add(make_event())
    assert service.update(ADMIN_A, event.id, EventPatch(name="X"), if_match).event.version == 2


def test_version_in_the_body_replaces_if_match(service: EventService, store: FakeEventStore) -> None:
    event = store.add(make_event())
    assert service.update(ADMIN_A, event.id, EventPatch(name="X", version=1), None).event.version == 2


def test_update_without_a_version_is_precondition_required(service: EventService, store: FakeEventStore) -> None:
    event = store.add(make_event())
    with pytest.raises(PreconditionRequired) as raised:
        service.update(ADMIN_A, event.id, EventPatch(name="X"), None)
    assert raised.value.status == 428
    assert store.get(event.id) == event


@pytest.mark.parametrize("if_match", ['"abc"', '"\u00b2"', '"\u0661"', '"' + "9" * 19 + '"'])
def test_unparseable_if_match_is_a_validation_error(
    service: EventService, store: FakeEventStore, if_match: str
) -> None:
    """Letters, digits that are not ASCII ("²", Arabic-Indic one), and numbers past any version."""
    event = store.add(make_event())
    with pytest.raises(ValidationFailed):
        service.update(ADMIN_A, event.id, EventPatch(name="X"), if_match)


def test_stale_version_is_a_version_conflict(service: EventService, store: FakeEventStore, docs: DocumentStore) -> None:
    event = store.add(make_event(version=3))
    with pytest.raises(VersionConflict) as raised:
        service.update(ADMIN_A, event.id, EventPatch(name="X"), '"2"')
    assert (raised.value.status, raised.value.code) == (412, "version_conflict")
    assert store.get(event.id) == event
    assert docs.events == []


@pytest.mark.parametrize(
    ("winner", "given_back"),
    [
        (EventPatch(name="Renamed meanwhile"), list(range(90, 100))),
        (EventPatch(capacity=95), list(range(90, 95))),  # the winner's capacity retires 95..99 itself
    ],
)
def test_change_saved_by_someone_else_meanwhile_is_a_version_conflict(
    service: EventService,
    store: FakeEventStore,
    docs: DocumentStore,
    capacity: FakeCapacity,
    winner: EventPatch,
    given_back: list[int],
) -> None:
    """Both read version 1; the other writer commits between this update's read and its commit."""
    event = store.add(make_event(capacity=100))
    docs.before_next_commit(lambda: service.update(ADMIN_A, event.id, winner, '"1"'))
    with pytest.raises(VersionConflict) as raised:
        service.update(ADMIN_A, event.id, EventPatch(capacity=90), '"1"')
    assert (raised.value.status, raised.value.code) == (412, "version_conflict")
    saved = store.get(event.id)
    assert saved is not None
    assert (saved.version, saved.capacity) == (2, winner.capacity or 100)  # the other writer's
    assert capacity.undone == [(event.id, given_back)]
    assert docs.actions(event.id) == ["event.updated"], "only the winner's change is in the stream"


def test_of_concurrent_updates_with_the_same_version_exactly_one_wins(
    service: EventService, store: FakeEventStore, docs: DocumentStore
) -> None:
    event = store.add(make_event())
    outcomes: list[str] = []

    def other() -> None:
        try:
            service.update(ADMIN_A, event.id, EventPatch(name="B"), '"1"')
            outcomes.append("B saved")
        except VersionConflict:
            outcomes.append("B 412")

    docs.before_next_commit(other)
    try:
        service.update(ADMIN_A, event.id, EventPatch(name="A"), '"1"')
        outcomes.append("A saved")
    except VersionConflict:
        outcomes.append("A 412")
    assert sorted(outcomes) == ["A 412", "B saved"]
    assert store.get(event.id).name == "B"  # type: ignore[union-attr]
    assert len(docs.events_of(event.id)) == 1


def test_other_companys_admin_cannot_change_a_published_event(service: EventService, store: FakeEventStore) -> None:
    event = store.add(make_event())
    with pytest.raises(Forbidden):
        service.update(ADMIN_B, event.id, EventPatch(name="Mine now"), '"1"')
    assert store.get(event.id) == event


def test_buyer_cannot_change_an_event(service: EventService, store: FakeEventStore) -> None:
    event = store.add(make_event())
    with pytest.raises(Forbidden):
        service.update(BUYER, event.id, EventPatch(name="Mine now"), '"1"')


def test_other_companys_draft_does_not_exist_for_its_admin(service: EventService, store: FakeEventStore) -> None:
    event = store.add(make_event(status="draft"))
    with pytest.raises(NotFound):
        service.update(ADMIN_B, event.id, EventPatch(name="X"), '"1"')


def test_update_of_an_unknown_event_is_not_found(service: EventService) -> None:
    with pytest.raises(NotFound):
        service.update(ADMIN_A, "no-such-event", EventPatch(name="X"), '"1"')


def test_capacity_below_tickets_taken_is_refused(
    service: EventService, store: FakeEventStore, inventory: FakeInventory, capacity: FakeCapacity, docs: DocumentStore
) -> None:
    event = store.add(make_event(capacity=100))
    inventory.set_taken(event.id, 40)
    with pytest.raises(CapacityBelowSold) as raised:
        service.update(ADMIN_A, event.id, EventPatch(capacity=39), '"1"')
    assert raised.value.status == 409
    assert store.get(event.id) == event
    assert capacity.changes == []
    assert docs.events == []


def test_capacity_down_to_tickets_taken_is_allowed(
    service: EventService, store: FakeEventStore, inventory: FakeInventory, capacity: FakeCapacity
) -> None:
    event = store.add(make_event(capacity=100))
    inventory.set_taken(event.id, 40)
    view = service.update(ADMIN_A, event.id, EventPatch(capacity=40), '"1"')
    assert view.out().available_tickets == 0
    assert capacity.changes == [("lower", event.id, 100, 40)]


def test_raising_capacity_frees_the_slots_above(
    service: EventService, store: FakeEventStore, capacity: FakeCapacity
) -> None:
    event = store.add(make_event(capacity=100))
    service.update(ADMIN_A, event.id, EventPatch(capacity=150), '"1"')
    # before the commit, and once more after it (a stale lowering may have retired one meanwhile)
    assert capacity.changes == [("raise", event.id, 100, 150), ("raise", event.id, 100, 150)]


def test_a_raise_whose_commit_answer_was_lost_still_clears_its_range_and_the_cache(
    docs: DocumentStore, store: FakeEventStore, inventory: FakeInventory, capacity: FakeCapacity
) -> None:
    """The event was saved (or not: nobody knows): this process reads it again, and the raised
    range is cleared once more, which is harmless if the save did not happen."""
    told: list[tuple[str, bool]] = []
    service = EventService(store, inventory, capacity, docs.new_uow, changed=lambda e, raised: told.append((e, raised)))
    event = store.add(make_event(capacity=100))
    docs.answers_to_lose = 1

    with pytest.raises(ConnectionError):
        service.update(ADMIN_A, event.id, EventPatch(capacity=150), '"1"')

    assert capacity.changes == [("raise", event.id, 100, 150), ("raise", event.id, 100, 150)]
    assert told == [(event.id, True)], "the cached event is dropped, the line served"
    assert store.get(event.id).capacity == 150  # type: ignore[union-attr]


def test_moving_the_event_into_the_past_is_refused(service: EventService, store: FakeEventStore) -> None:
    event = store.add(make_event())
    with pytest.raises(ValidationFailed) as raised:
        service.update(ADMIN_A, event.id, EventPatch(event_date=date(2020, 1, 1)), '"1"')
    assert field_of(raised) == ["event_date"]
    assert store.get(event.id) == event


def test_moving_the_time_converts_to_a_new_start(service: EventService, store: FakeEventStore) -> None:
    event = store.add(make_event(timezone="UTC"))
    view = service.update(ADMIN_A, event.id, EventPatch(event_time="21:30"), '"1"')
    assert view.event.starts_at == datetime.combine(DAY, time(21, 30), UTC)


def test_renaming_an_event_that_already_started_is_allowed(service: EventService, store: FakeEventStore) -> None:
    event = store.add(make_event(event_date=date.today() - timedelta(days=1)))
    assert service.update(ADMIN_A, event.id, EventPatch(name="Renamed"), '"1"').event.name == "Renamed"


def test_update_cannot_put_surge_price_below_base_price(service: EventService, store: FakeEventStore) -> None:
    event = store.add(make_event(base_price=2500, surge_price=4000))
    with pytest.raises(ValidationFailed) as raised:
        service.update(ADMIN_A, event.id, EventPatch(surge_price=2000), '"1"')
    assert field_of(raised) == ["surge_price"]


@pytest.mark.parametrize("body", [{}, {"version": 1}, {"name": None}, {"capacity": None}, {"company_id": "x"}])
def test_event_patch_must_change_an_allowed_field(body: dict[str, Any]) -> None:
    with pytest.raises(pydantic.ValidationError):
        EventPatch.model_validate(body)


# ---- search -------------------------------------------------------------------------------


def names(page: Any) -> list[str]:
    return [item.name for item in page.items]


def test_search_finds_published_upcoming_events_soonest_first(service: EventService, store: FakeEventStore) -> None:
    store.add(make_event(name="Later", event_date=DAY + timedelta(days=2)))
    store.add(make_event(name="Sooner", event_date=DAY))
    store.add(make_event(name="Draft", status="draft"))
    store.add(make_event(name="Over", event_date=date.today() - timedelta(days=1)))
    assert names(service.search(search_for())) == ["Sooner", "Later"]


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("rock", ["Rock Night", "Rock Classics"]),
        ("ROCK hamburg", ["Rock Classics"]),
        ("night", ["Rock Night", "Jazz Night"]),
        ("berlin", ["Rock Night"]),
        ("rock jazz", []),
        ("opera", []),
        ("  Jazz,  HALL! ", ["Jazz Night"]),
    ],
)
def test_search_words_must_all_match_name_or_venue(
    service: EventService, store: FakeEventStore, q: str, expected: list[str]
) -> None:
    store.add(make_event(name="Rock Night", venue="Berlin Arena", event_date=DAY))
    store.add(make_event(name="Jazz Night", venue="Hamburg Hall", event_date=DAY + timedelta(days=1)))
    store.add(make_event(name="Rock Classics", venue="Hamburg Hall", event_date=DAY + timedelta(days=2)))
    assert names(service.search(search_for(q=q))) == expected


def test_search_from_and_to_are_inclusive_local_dates(service: EventService, store: FakeEventStore) -> None:
    for offset in range(4):
        store.add(make_event(name=f"day{offset}", event_date=DAY + timedelta(days=offset), event_time=time(23, 30)))
    one, two = (DAY + timedelta(days=1)).isoformat(), (DAY + timedelta(days=2)).isoformat()
    assert names(service.search(search_for(from_=one, to=two))) == ["day1", "day2"]
    assert names(service.search(search_for(from_=one, to=one))) == ["day1"]
    assert names(service.search(search_for(from_=two))) == ["day2", "day3"]
    assert names(service.search(search_for(to=one))) == ["day0", "day1"]


def test_search_by_date_uses_the_events_own_calendar(service: EventService, store: FakeEventStore) -> None:
    # 00:30 on DAY in UTC+14 is still the previous day in UTC; 23:30 on DAY in UTC-11 is the next day.
    store.add(make_event(name="kiritimati", event_date=DAY, event_time=time(0, 30), timezone="Pacific/Kiritimati"))
    store.add(make_event(name="pago", event_date=DAY, event_time=time(23, 30), timezone="Pacific/Pago_Pago"))
    store.add(
        make_event(
            name="eve", event_date=DAY - timedelta(days=1), event_time=time(23, 30), timezone="Pacific/Pago_Pago"
        )
    )
    store.add(
        make_event(
            name="next", event_date=DAY + timedelta(days=1), event_time=time(0, 30), timezone="Pacific/Kiritimati"
        )
    )
    assert min(e.starts_at for e in store.events.values()).date() < DAY  # the UTC dates differ
    found = names(service.search(search_for(from_=DAY.isoformat(), to=DAY.isoformat())))
    assert sorted(found) == ["kiritimati", "pago"]


def test_search_from_a_past_date_still_hides_started_events(service: EventService, store: FakeEventStore) -> None:
    store.add(make_event(name="over", event_date=date.today() - timedelta(days=2)))
    store.add(make_event(name="coming"))
    assert names(service.search(search_for(from_=(date.today() - timedelta(days=5)).isoformat()))) == ["coming"]


def test_search_around_a_point_keeps_events_within_the_radius(service: EventService, store: FakeEventStore) -> None:
    store.add(make_event(name="Tempodrom", location_lat=52.5009, location_long=13.3807))
    store.add(make_event(name="Potsdam", location_lat=52.3906, location_long=13.0645, event_date=DAY + timedelta(1)))
    store.add(make_event(name="Hamburg", location_lat=53.5511, location_long=9.9937, event_date=DAY + timedelta(2)))
    page = service.search(search_for(lat=52.52, lng=13.405, radius_km=30))
    assert names(page) == ["Tempodrom", "Potsdam"]
    expected = [geo.haversine_km(52.52, 13.405, item.location_lat, item.location_long) for item in page.items]
    assert [item.distance_km for item in page.items] == pytest.approx(expected, abs=0.001)
    assert 2 < expected[0] < 3


def test_search_with_a_radius_too_wide_for_cells_still_filters_by_distance(
    service: EventService, store: FakeEventStore
) -> None:
    store.add(make_event(name="Berlin", location_lat=52.52, location_long=13.405))
    store.add(make_event(name="Sydney", location_lat=-33.87, location_long=151.21, event_date=DAY + timedelta(1)))
    page = service.search(search_for(lat=52.52, lng=13.405, radius_km=9000))
    assert names(page) == ["Berlin"]
    assert store.scans[-1].geohash_precision is None


def test_search_near_the_antimeridian_finds_events_across_it(service: EventService, store: FakeEventStore) -> None:
    store.add(make_event(name="Taveuni", location_lat=-16.80, location_long=179.98, timezone="Pacific/Fiji"))
    store.add(make_event(name="East", location_lat=-16.80, location_long=-179.98, timezone="Pacific/Fiji"))
    page = service.search(search_for(lat=-16.80, lng=179.999, radius_km=5))
    assert sorted(names(page)) == ["East", "Taveuni"]


def test_search_without_a_point_has_no_distance(service: EventService, store: FakeEventStore) -> None:
    store.add(make_event())
    assert service.search(search_for()).items[0].distance_km is None


def collect(service: EventService, **params: Any) -> tuple[list[str], int]:
    seen: list[str] = []
    token, pages = None, 0
    while True:
        page = service.search(search_for(**params, **({"page_token": token} if token else {})))
        seen.extend(item.id for item in page.items)
        pages += 1
        token = page.next_page_token
        if token is None:
            return seen, pages
        assert pages < 100


def test_pages_return_every_match_exactly_once_in_order(service: EventService, store: FakeEventStore) -> None:
    expected = []
    for i in range(23):
        start = time(12 + i % 3, 0)  # several events share a start: ties are ordered by id
        wanted = store.add(make_event(name=f"Rock {i}", event_date=DAY + timedelta(days=i // 3), event_time=start))
        store.add(make_event(name=f"Jazz {i}", event_date=DAY + timedelta(days=i // 3), event_time=start))
        expected.append(wanted)
    expected.sort(key=lambda e: (e.starts_at, e.id))
    seen, pages = collect(service, q="rock", limit=5)
    assert seen == [e.id for e in expected]
    assert pages >= 5


def test_pages_continue_past_a_long_run_of_non_matches(service: EventService, store: FakeEventStore) -> None:
    for i in range(SCAN_BUDGET + 20):
        store.add(make_event(name=f"Jazz {i}", event_time=time(10, 0)))
    late = store.add(make_event(name="Rock", event_time=time(22, 0)))
    seen, _ = collect(service, q="rock", from_=DAY.isoformat(), limit=5)
    assert seen == [late.id]


@pytest.mark.parametrize("token", ["garbage", "e30", "!!!", "eyJ0IjogMX0", "a" * 999])
def test_bad_page_token_is_a_validation_error(service: EventService, token: str) -> None:
    with pytest.raises(ValidationFailed) as raised:
        service.search(search_for(page_token=token))
    assert field_of(raised) == ["page_token"]


def first_token(service: EventService, store: FakeEventStore, **params: Any) -> str:
    for i in range(3):
        store.add(make_event(name=f"Rock {i}", event_date=DAY + timedelta(days=i)))
    token = service.search(search_for(**params, limit=1)).next_page_token
    assert token is not None
    return token


def test_page_token_of_another_search_is_refused(service: EventService, store: FakeEventStore) -> None:
    token = first_token(service, store, q="rock")
    with pytest.raises(ValidationFailed):
        service.search(search_for(q="jazz", page_token=token))
    with pytest.raises(ValidationFailed):
        service.search(search_for(page_token=token))


def test_page_token_keeps_working_with_another_limit(service: EventService, store: FakeEventStore) -> None:
    token = first_token(service, store, q="rock")
    assert len(service.search(search_for(q="rock", limit=10, page_token=token)).items) == 2


def test_tampered_page_token_is_refused(service: EventService, store: FakeEventStore) -> None:
    token = first_token(service, store, q="rock")
    payload = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    for changed in ({**payload, "f": payload["f"][::-1]}, {**payload, "t": payload["t"][:19]}, {"t": payload["t"]}):
        tampered = base64.urlsafe_b64encode(json.dumps(changed).encode()).decode().rstrip("=")
        with pytest.raises(ValidationFailed):
            service.search(search_for(q="rock", page_token=tampered))


@pytest.mark.parametrize("doc_id", ["../users/x", "a/b", "", "x" * 500])
def test_page_token_naming_an_impossible_event_id_is_refused(
    service: EventService, store: FakeEventStore, doc_id: str
) -> None:
    """The fingerprint is not secret, so a client can rebuild a token: its cursor must still be checked."""
    token = first_token(service, store, q="rock")
    payload = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    forged = encode_token((datetime.fromisoformat(payload["t"]), doc_id), payload["f"])
    with pytest.raises(ValidationFailed):
        service.search(search_for(q="rock", page_token=forged))


def test_last_page_has_no_token(service: EventService, store: FakeEventStore) -> None:
    store.add(make_event())
    assert service.search(search_for(limit=5)).next_page_token is None


@pytest.mark.parametrize(
    "params",
    [
        {"lat": 52.5},
        {"lat": 52.5, "lng": 13.4},
        {"from": "2031-02-01", "to": "2031-01-01"},
        {"q": "!!!"},
        {"limit": 0},
        {"limit": 101},
        {"radius_km": 0, "lat": 1, "lng": 1},
        {"sort": "price"},
    ],
)
def test_incoherent_searches_are_refused(params: dict[str, Any]) -> None:
    with pytest.raises(pydantic.ValidationError):
        EventSearch.model_validate(params)


def test_event_copies_keep_their_derived_start() -> None:
    event = make_event(timezone="UTC")
    moved = replace(event, event_time=time(9, 0))
    assert moved.starts_at == datetime.combine(DAY, time(9, 0), UTC)
