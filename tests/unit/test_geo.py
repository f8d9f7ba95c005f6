"""Geohash cells and great-circle distances behind the "events near me" search."""

from __future__ import annotations

import math
import random

import pytest

from shared import geo


def destination(lat: float, lng: float, bearing_deg: float, distance_km: float) -> tuple[float, float]:
    """The point `distance_km` from (lat, lng) along `bearing_deg`, on the same sphere as haversine_km."""
    d = distance_km / geo.EARTH_RADIUS_KM
    b, p1, l1 = math.radians(bearing_deg), math.radians(lat), math.radians(lng)
    p2 = math.asin(math.sin(p1) * math.cos(d) + math.cos(p1) * math.sin(d) * math.cos(b))
    l2 = l1 + math.atan2(math.sin(b) * math.sin(d) * math.cos(p1), math.cos(d) - math.sin(p1) * math.sin(p2))
    return math.degrees(p2), (math.degrees(l2) + 540.0) % 360.0 - 180.0


@pytest.mark.parametrize(
    ("lat", "lng", "precision", "expected"),
    [
        (57.64911, 10.40744, 6, "u4pruy"),
        (57.64911, 10.40744, 11, "u4pruydqqvj"),
        (42.6, -5.6, 5, "ezs42"),
        (-25.382708, -49.265506, 6, "6gkzwg"),
        (0.0, 0.0, 1, "s"),
        (-90.0, -180.0, 4, "0000"),
        (90.0, 180.0, 4, "zzzz"),
    ],
)
def test_encode_matches_known_geohashes(lat: float, lng: float, precision: int, expected: str) -> None:
    assert geo.encode(lat, lng, precision) == expected


def test_prefixes_are_the_cells_of_every_stored_precision() -> None:
    assert geo.prefixes(57.64911, 10.40744) == {1: "u", 2: "u4", 3: "u4p", 4: "u4pr", 5: "u4pru", 6: "u4pruy"}


@pytest.mark.parametrize(
    ("precision", "size"), [(1, (45.0, 45.0)), (2, (5.625, 11.25)), (6, (180 / 2**15, 360 / 2**15))]
)
def test_cell_size_in_degrees(precision: int, size: tuple[float, float]) -> None:
    assert geo.cell_size_deg(precision) == size


def test_smaller_radius_gives_finer_cells() -> None:
    precisions = [geo.precision_for_radius(48.0, r) for r in (0.5, 5, 50, 500)]
    assert precisions == sorted(precisions, reverse=True)
    assert precisions[0] == geo.MAX_PRECISION


def test_radius_wider_than_any_cell_has_no_cells() -> None:
    assert geo.precision_for_radius(0.0, 10_000) is None
    assert geo.covering_cells(0.0, 0.0, 10_000) is None


def test_near_the_poles_there_are_no_cells() -> None:
    assert geo.covering_cells(86.0, 10.0, 1) is None
    assert geo.covering_cells(-89.0, 10.0, 1) is None


def test_covering_cells_are_the_point_cell_and_its_neighbours() -> None:
    found = geo.covering_cells(57.64911, 10.40744, 0.5)
    assert found is not None
    precision, cells = found
    assert precision == 6
    assert len(cells) == 9
    assert geo.encode(57.64911, 10.40744, precision) in cells


def test_covering_cells_contain_every_point_within_the_radius() -> None:
    rng = random.Random(20240601)
    checked = 0
    for _ in range(400):
        lat, lng = rng.uniform(-84.0, 84.0), rng.uniform(-180.0, 180.0)
        radius = math.exp(rng.uniform(math.log(0.05), math.log(3000)))
        found = geo.covering_cells(lat, lng, radius)
        if found is None:
            continue
        precision, cells = found
        for _ in range(25):
            distance = radius * rng.choice([1.0, 0.999, rng.random()])
            qlat, qlng = destination(lat, lng, rng.uniform(0, 360), distance)
            assert geo.haversine_km(lat, lng, qlat, qlng) <= radius * (1 + 1e-9)
            assert geo.encode(qlat, qlng, precision) in cells, (lat, lng, radius, qlat, qlng)
            checked += 1
    assert checked > 5000


@pytest.mark.parametrize("lng", [179.999, -179.999])
def test_covering_cells_wrap_around_the_antimeridian(lng: float) -> None:
    found = geo.covering_cells(-17.0, lng, 5)
    assert found is not None
    precision, cells = found
    for bearing in (90.0, 270.0):
        qlat, qlng = destination(-17.0, lng, bearing, 4.9)
        assert geo.encode(qlat, qlng, precision) in cells
    assert {c[0] for c in cells} >= {geo.encode(-17.0, 179.999, 1), geo.encode(-17.0, -179.999, 1)}


@pytest.mark.parametrize(
    ("a", "b", "km"),
    [
        ((52.5200, 13.4050), (48.8566, 2.3522), 878.0),  # Berlin - Paris
        ((51.5074, -0.1278), (40.7128, -74.0060), 5570.0),  # London - New York
        ((-33.8688, 151.2093), (-36.8485, 174.7633), 2156.0),  # Sydney - Auckland
        ((0.0, 0.0), (0.0, 180.0), math.pi * geo.EARTH_RADIUS_KM),  # half the equator
        ((90.0, 0.0), (-90.0, 0.0), math.pi * geo.EARTH_RADIUS_KM),  # pole to pole
    ],
)
def test_haversine_known_distances(a: tuple[float, float], b: tuple[float, float], km: float) -> None:
    assert geo.haversine_km(*a, *b) == pytest.approx(km, rel=0.003)


def test_haversine_is_symmetric_and_zero_for_one_point() -> None:
    assert geo.haversine_km(10.0, 20.0, 10.0, 20.0) == 0.0
    assert geo.haversine_km(10.0, 179.9, 11.0, -179.9) == pytest.approx(geo.haversine_km(11.0, -179.9, 10.0, 179.9))
    assert geo.haversine_km(0.0, 179.95, 0.0, -179.95) == pytest.approx(11.12, rel=0.01)
