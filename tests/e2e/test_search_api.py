"""GET /v1/events: public search by words, dates and distance, soonest first, paginated.

Each test names its events with a word of its own (and, for distance searches, picks a random
place and its own company), so the shared database never changes what a test sees.
"""

from __future__ import annotations

import math
import random
import secrets
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
import requests

from shared.dal.events import EventDAL
from shared.dal.stream import DomainEventDAL
from shared.dal.unit_of_work import FirestoreUnitOfWork
from shared.models import Event
from tests.conftest import Api

EARTH_RADIUS_KM = 6371.0088


def assert_problem(response: requests.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json")
    body = response.json()
    assert {"type", "title", "status", "detail", "code"} <= set(body)
    assert (body["status"], body["code"]) == (status, code)
    return dict(body)


def word() -> str:
    return "s" + secrets.token_hex(6)


def search(api: Api, **params: Any) -> requests.Response:
    if "from_" in params:
        params["from"] = params.pop("from_")
    return api.call("GET", "/v1/events", params=params)


def found(api: Api, **params: Any) -> list[dict[str, Any]]:
    response = search(api, **params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"items", "next_page_token"}
    return list(body["items"])


def ids(items: list[dict[str, Any]]) -> list[str]:
    return [i["id"] for i in items]


def all_pages(api: Api, **params: Any) -> list[list[dict[str, Any]]]:
    pages: list[list[dict[str, Any]]] = []
    token = None
    for _ in range(100):
        response = search(api, **params, **({"page_token": token} if token else {}))
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append(body["items"])
        token = body["next_page_token"]
        if token is None:
            return pages
        assert isinstance(token, str)
        assert token
    raise AssertionError("next_page_token never became null")


def haversine_km(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(a))


def destination(lat: float, lng: float, bearing_deg: float, km: float) -> tuple[float, float]:
    """The point `km` away from (lat, lng) along the great circle with this initial bearing."""
    d = km / EARTH_RADIUS_KM
    b, p1, l1 = math.radians(bearing_deg), math.radians(lat), math.radians(lng)
    p2 = math.asin(math.sin(p1) * math.cos(d) + math.cos(p1) * math.sin(d) * math.cos(b))
    l2 = l1 + math.atan2(math.sin(b) * math.sin(d) * math.cos(p1), math.cos(d) - math.sin(p1) * math.sin(p2))
    lng2 = (math.degrees(l2) + 540.0) % 360.0 - 180.0
    return math.degrees(p2), lng2


@pytest.fixture
def admin(api: Api) -> tuple[str, dict[str, Any]]:
    return api.register_admin()


def make(api: Api, admin: tuple[str, dict[str, Any]], **overrides: Any) -> dict[str, Any]:
    return api.create_event(admin[0], **overrides)


# ---- words ----------------------------------------------------------------------------------


def test_q_matches_whole_words_of_name_and_venue_case_insensitively(
    api: Api, admin: tuple[str, dict[str, Any]]
) -> None:
    w = word()
    in_name = make(api, admin, name=f"Concert {w}", event_date="2032-01-01")
    in_venue = make(api, admin, name="Plain Title", venue=f"Hall {w.upper()}", event_date="2032-01-02")
    hyphenated = make(api, admin, name=f"{w.capitalize()}-Festival", event_date="2032-01-03")
    make(api, admin, name=f"x{w}y", event_date="2032-01-04")  # contains it, but not as a word
    make(api, admin, name="Concert", description=f"about {w}", event_date="2032-01-05")  # description is not searched

    expected = [in_name["id"], in_venue["id"], hyphenated["id"]]
    assert ids(found(api, q=w)) == expected
    assert ids(found(api, q=w.upper())) == expected
    assert ids(found(api, q=f"  {w.capitalize()}  ")) == expected


def test_q_with_several_words_needs_all_of_them(api: Api, admin: tuple[str, dict[str, Any]]) -> None:
    w1, w2 = word(), word()
    both = make(api, admin, name=f"{w1} night", venue=f"{w2} arena", event_date="2032-02-01")
    make(api, admin, name=f"{w1} only", event_date="2032-02-02")
    make(api, admin, name=f"{w2} only", event_date="2032-02-03")

    assert ids(found(api, q=f"{w2} {w1}")) == [both["id"]]
    assert ids(found(api, q=f"{w1}, {w2.upper()}!")) == [both["id"]]
    assert len(found(api, q=w1)) == 2


def test_q_without_matches_is_an_empty_page(api: Api) -> None:
    response = search(api, q=word())

    assert response.status_code == 200, response.text
    assert response.json() == {"items": [], "next_page_token": None}


def test_search_items_are_the_events_as_get_shows_them(api: Api, admin: tuple[str, dict[str, Any]]) -> None:
    w = word()
    event = make(api, admin, name=f"Show {w}")

    [item] = found(api, q=w)

    shown = api.call("GET", f"/v1/events/{event['id']}").json()
    assert {k: v for k, v in item.items() if k != "distance_km"} == {
        k: v for k, v in shown.items() if k != "distance_km"
    }


# ---- what is listed -------------------------------------------------------------------------


def test_only_published_events_that_have_not_started_are_listed(
    api: Api, admin: tuple[str, dict[str, Any]], firestore_client: Any
) -> None:
    w = word()
    published = make(api, admin, name=f"Open {w}")
    make(api, admin, name=f"Draft {w}", status="draft")
    unpublished = make(api, admin, name=f"Later draft {w}")
    patched = api.call(
        "PATCH", f"/v1/events/{unpublished['id']}", admin[0], json={"status": "draft"}, headers={"If-Match": '"1"'}
    )
    assert patched.status_code == 200, patched.text
    # a published event that has already started (stored directly: the API refuses past dates)
    stamp = datetime(2001, 1, 1, tzinfo=UTC)
    started = Event(
        id=f"past{secrets.token_hex(8)}",
        company_id=admin[1]["company_id"],
        name=f"Over {w}",
        description=None,
        event_date=date(2001, 1, 1),
        event_time=time(20, 0),
        timezone="UTC",
        venue="Tempodrom",
        location_lat=52.5,
        location_long=13.4,
        capacity=10,
        base_price=100,
        surge_price=100,
        surge_threshold=1.0,
        currency="EUR",
        max_tickets_per_booking=10,
        status="published",
        version=1,
        created_at=stamp,
        updated_at=stamp,
    )
    uow = FirestoreUnitOfWork(firestore_client, DomainEventDAL(firestore_client))
    EventDAL(firestore_client).stage_create(uow, started)
    uow.commit()

    assert ids(found(api, q=w)) == [published["id"]]


def test_results_are_soonest_first(api: Api, admin: tuple[str, dict[str, Any]]) -> None:
    w = word()
    schedule = [
        ("2032-03-05", "10:00", "UTC"),
        ("2032-03-01", "23:00", "Europe/Berlin"),  # 22:00Z
        ("2032-03-01", "20:00", "America/New_York"),  # 01:00Z next day
        ("2032-03-02", "09:00", "Asia/Tokyo"),  # 00:00Z
        ("2032-03-01", "08:00", "UTC"),
    ]
    random.shuffle(schedule)
    for d, t, tz in schedule:
        make(api, admin, name=f"Timed {w}", event_date=d, event_time=t, timezone=tz)

    items = found(api, q=w)

    starts = [i["starts_at"] for i in items]
    assert starts == [
        "2032-03-01T08:00:00Z",
        "2032-03-01T22:00:00Z",
        "2032-03-02T00:00:00Z",
        "2032-03-02T01:00:00Z",
        "2032-03-05T10:00:00Z",
    ]


# ---- dates ----------------------------------------------------------------------------------


def test_from_and_to_are_inclusive_local_dates(api: Api, admin: tuple[str, dict[str, Any]]) -> None:
    w = word()
    day = date(2033, 4, 10)
    by_day = {
        offset: make(api, admin, name=f"Day {w}", event_date=(day + timedelta(days=offset)).isoformat())
        for offset in (-1, 0, 1, 2, 3)
    }

    result = found(api, q=w, from_=day.isoformat(), to=(day + timedelta(days=2)).isoformat())

    assert ids(result) == [by_day[o]["id"] for o in (0, 1, 2)]
    assert ids(found(api, q=w, from_=day.isoformat(), to=day.isoformat())) == [by_day[0]["id"]]
    assert ids(found(api, q=w, from_=(day + timedelta(days=2)).isoformat())) == [by_day[o]["id"] for o in (2, 3)]
    assert ids(found(api, q=w, to=(day - timedelta(days=1)).isoformat())) == [by_day[-1]["id"]]


def test_dates_are_the_events_local_dates_at_the_extreme_time_zones(
    api: Api, admin: tuple[str, dict[str, Any]]
) -> None:
    w = word()
    first, last = date(2033, 6, 10), date(2033, 6, 12)

    def at(day: date, hhmm: str, tz: str) -> dict[str, Any]:
        return make(api, admin, name=f"Edge {w}", event_date=day.isoformat(), event_time=hhmm, timezone=tz)

    # local date inside the range although the UTC date is outside it
    early = at(first, "00:30", "Pacific/Kiritimati")  # UTC+14: the day before in UTC
    late = at(last, "23:30", "Pacific/Pago_Pago")  # UTC-11: the day after in UTC
    # local date outside the range although the UTC date is inside it
    at(first - timedelta(days=1), "23:30", "Pacific/Pago_Pago")
    at(last + timedelta(days=1), "00:30", "Pacific/Kiritimati")

    result = found(api, q=w, from_=first.isoformat(), to=last.isoformat())

    assert ids(result) == [early["id"], late["id"]]
    assert [i["event_date"] for i in result] == [first.isoformat(), last.isoformat()]


# ---- distance -------------------------------------------------------------------------------


def place() -> tuple[float, float]:
    return random.uniform(-55.0, 55.0), random.uniform(-170.0, 170.0)


def test_radius_keeps_exactly_the_events_within_great_circle_distance(
    api: Api, admin: tuple[str, dict[str, Any]]
) -> None:
    lat, lng = place()
    radius = 10.0
    company = admin[1]["company_id"]
    points = {
        "centre": (0.0, 0.0),
        "north_in": (0.0, 9.95),
        "north_out": (0.0, 10.05),
        "east_in": (90.0, 9.95),
        "east_out": (90.0, 10.05),
        "south_west_in": (225.0, 9.9),
        "diagonal_out": (45.0, 10.1),  # inside the bounding square, outside the circle
        "far": (180.0, 40.0),
    }
    created: dict[str, dict[str, Any]] = {}
    for n, (label, (bearing, km)) in enumerate(points.items()):
        plat, plng = destination(lat, lng, bearing, km)
        created[label] = make(
            api,
            admin,
            name=f"Near {label}",
            event_date=(date(2034, 1, 1) + timedelta(days=n)).isoformat(),
            location_lat=plat,
            location_long=plng,
        )

    items = [i for i in found(api, lat=lat, lng=lng, radius_km=radius, limit=100) if i["company_id"] == company]

    inside = [created[k]["id"] for k in points if k.endswith("_in") or k == "centre"]
    assert ids(items) == inside  # soonest first: they were created in date order
    for item in items:
        expected = haversine_km(lat, lng, item["location_lat"], item["location_long"])
        assert item["distance_km"] == pytest.approx(expected, abs=0.002)
        assert item["distance_km"] <= radius


def test_radius_search_works_across_the_antimeridian(api: Api, admin: tuple[str, dict[str, Any]]) -> None:
    lat = random.uniform(-50.0, 50.0)
    centre_lng = 179.998
    company = admin[1]["company_id"]
    east_lat, east_lng = destination(lat, centre_lng, 90.0, 5.0)
    assert east_lng < 0  # the event lies on the other side of the 180th meridian
    event = make(api, admin, location_lat=east_lat, location_long=east_lng)

    items = [i for i in found(api, lat=lat, lng=centre_lng, radius_km=8, limit=100) if i["company_id"] == company]

    assert ids(items) == [event["id"]]
    assert items[0]["distance_km"] == pytest.approx(5.0, abs=0.01)


def test_very_wide_radius_still_filters_exactly(api: Api, admin: tuple[str, dict[str, Any]]) -> None:
    w = word()
    berlin = make(api, admin, name=f"Wide {w}", location_lat=52.52, location_long=13.405, event_date="2034-02-01")
    make(api, admin, name=f"Wide {w}", location_lat=-33.87, location_long=151.21, event_date="2034-02-02")  # Sydney

    items = found(api, q=w, lat=48.8566, lng=2.3522, radius_km=3000)  # around Paris

    assert ids(items) == [berlin["id"]]
    assert items[0]["distance_km"] == pytest.approx(haversine_km(48.8566, 2.3522, 52.52, 13.405), abs=0.002)


# ---- combined -------------------------------------------------------------------------------


def test_all_filters_combine(api: Api, admin: tuple[str, dict[str, Any]]) -> None:
    w = word()
    lat, lng = place()
    near = destination(lat, lng, 0.0, 3.0)
    far = destination(lat, lng, 0.0, 30.0)

    def at(name: str, day: str, where: tuple[float, float]) -> dict[str, Any]:
        return make(api, admin, name=name, event_date=day, location_lat=where[0], location_long=where[1])

    hit = at(f"Combo {w}", "2035-05-05", near)
    at(f"Combo {w}", "2035-05-05", far)  # too far
    at(f"Combo {w}", "2035-05-07", near)  # too late
    at("Combo other", "2035-05-05", near)  # wrong words

    items = found(api, q=w, from_="2035-05-04", to="2035-05-06", lat=lat, lng=lng, radius_km=5)

    assert ids(items) == [hit["id"]]
    assert items[0]["distance_km"] == pytest.approx(3.0, abs=0.01)


# ---- pagination -----------------------------------------------------------------------------


def test_pages_cover_every_match_exactly_once_in_order(api: Api, admin: tuple[str, dict[str, Any]]) -> None:
    w = word()
    created = [make(api, admin, name=f"Paged {w}", event_date="2036-01-01") for _ in range(4)]  # same start
    created += [make(api, admin, name=f"Paged {w}", event_date=f"2036-01-0{d}") for d in (2, 3, 4)]

    everything = found(api, q=w, limit=100)
    pages = all_pages(api, q=w, limit=3)

    assert sorted(ids(everything)) == sorted(e["id"] for e in created)
    assert [len(p) for p in pages[:2]] == [3, 3]
    assert all(len(p) <= 3 for p in pages)
    flat = [i for page in pages for i in ids(page)]
    assert flat == ids(everything)
    starts = [i["starts_at"] for i in everything]
    assert starts == sorted(starts)


@pytest.mark.parametrize("limit", [1, 2, 5])
def test_pagination_with_any_limit_ends_with_a_null_token(
    api: Api, admin: tuple[str, dict[str, Any]], limit: int
) -> None:
    w = word()
    for d in range(1, 6):
        make(api, admin, name=f"Limit {w}", event_date=f"2036-02-0{d}")

    pages = all_pages(api, q=w, limit=limit)

    flat = [i for page in pages for i in ids(page)]
    assert len(flat) == 5
    assert len(set(flat)) == 5
    assert flat == ids(found(api, q=w))


def test_geo_search_pages_too(api: Api, admin: tuple[str, dict[str, Any]]) -> None:
    w = word()
    lat, lng = place()
    for d in range(1, 6):
        plat, plng = destination(lat, lng, 72.0 * d, 1.0 * d)
        make(api, admin, name=f"Geo {w}", event_date=f"2036-03-0{d}", location_lat=plat, location_long=plng)

    pages = all_pages(api, q=w, lat=lat, lng=lng, radius_km=10, limit=2)

    flat = [i for page in pages for i in ids(page)]
    assert len(flat) == len(set(flat)) == 5


def test_default_page_size_is_20(api: Api, admin: tuple[str, dict[str, Any]]) -> None:
    w = word()
    for n in range(21):
        make(api, admin, name=f"Many {w}", event_date=(date(2036, 4, 1) + timedelta(days=n)).isoformat())

    first = search(api, q=w).json()

    assert len(first["items"]) == 20
    assert first["next_page_token"]
    rest = search(api, q=w, page_token=first["next_page_token"]).json()
    assert len(rest["items"]) == 1
    assert rest["next_page_token"] is None


def test_page_token_of_another_search_is_refused(api: Api, admin: tuple[str, dict[str, Any]]) -> None:
    w = word()
    for d in range(1, 4):
        make(api, admin, name=f"Token {w}", event_date=f"2036-05-0{d}")
    token = search(api, q=w, limit=1).json()["next_page_token"]
    assert token

    assert_problem(search(api, q=word(), limit=1, page_token=token), 422, "validation_error")
    assert_problem(search(api, q=w, limit=1, from_="2036-05-01", page_token=token), 422, "validation_error")
    # the limit may change between pages
    assert search(api, q=w, limit=5, page_token=token).status_code == 200


@pytest.mark.parametrize("token", ["garbage", "!!!", "eyJ0IjogMX0", "W10", "a" * 2000])
def test_bad_page_token_is_refused(api: Api, token: str) -> None:
    response = search(api, page_token=token)

    body = assert_problem(response, 422, "validation_error")
    assert any("page_token" in str(e.get("field")) for e in body.get("errors", [])), body


def test_search_needs_no_token_and_ignores_a_valid_one(api: Api, admin: tuple[str, dict[str, Any]]) -> None:
    w = word()
    event = make(api, admin, name=f"Public {w}")

    anonymous = found(api, q=w)
    with_token = api.call("GET", "/v1/events", admin[0], params={"q": w})

    assert ids(anonymous) == [event["id"]]
    assert with_token.status_code == 200
    assert ids(with_token.json()["items"]) == [event["id"]]
