"""Geohash cells for range-free proximity queries, and exact great-circle distance.

A search around a point queries events whose geohash prefix (at a precision chosen from the
radius) is the point's cell or one of its eight neighbours, then keeps those within the exact
haversine distance. Geohash is ~25 lines of arithmetic, written here rather than pulled in.
"""

from __future__ import annotations

import math

_BASE32 = "0123456789bcdefghjkmnpqrstuvwxyz"
EARTH_RADIUS_KM = 6371.0088
MIN_PRECISION, MAX_PRECISION = 1, 6
KM_PER_DEG_LAT_MIN = 110.57
KM_PER_DEG_LNG_EQUATOR = 111.32


def encode(lat: float, lng: float, precision: int = MAX_PRECISION) -> str:
    lat_range, lng_range = [-90.0, 90.0], [-180.0, 180.0]
    bits, bit_count, even = 0, 0, True
    out: list[str] = []
    while len(out) < precision:
        rng, value = (lng_range, lng) if even else (lat_range, lat)
        mid = (rng[0] + rng[1]) / 2
        if value >= mid:
            bits = (bits << 1) | 1
            rng[0] = mid
        else:
            bits <<= 1
            rng[1] = mid
        even = not even
        bit_count += 1
        if bit_count == 5:
            out.append(_BASE32[bits])
            bits, bit_count = 0, 0
    return "".join(out)


def prefixes(lat: float, lng: float) -> dict[int, str]:
    full = encode(lat, lng, MAX_PRECISION)
    return {p: full[:p] for p in range(MIN_PRECISION, MAX_PRECISION + 1)}


def cell_size_deg(precision: int) -> tuple[float, float]:
    """(height, width) of a cell in degrees: 5 bits a character, longitude taking the odd one."""
    bits = 5 * precision
    return 180.0 / 2 ** (bits // 2), 360.0 / 2 ** ((bits + 1) // 2)


def precision_for_radius(lat: float, radius_km: float) -> int | None:
    """Finest precision whose cell spans at least the radius both ways, or None (too wide)."""
    for precision in range(MAX_PRECISION, MIN_PRECISION - 1, -1):
        dlat, dlng = cell_size_deg(precision)
        worst_lat = min(89.9, abs(lat) + dlat)  # the poleward edge of the 3x3 block is narrowest
        height_km = dlat * KM_PER_DEG_LAT_MIN
        width_km = dlng * KM_PER_DEG_LNG_EQUATOR * math.cos(math.radians(worst_lat))
        if min(height_km, width_km) >= radius_km:
            return precision
    return None


def covering_cells(lat: float, lng: float, radius_km: float) -> tuple[int, list[str]] | None:
    """The point's cell and its eight neighbours: every point within radius_km lies in them."""
    precision = precision_for_radius(lat, radius_km)
    if precision is None or abs(lat) > 85:
        return None
    dlat, dlng = cell_size_deg(precision)
    cells = set()
    for shift_lat in (-dlat, 0.0, dlat):
        for shift_lng in (-dlng, 0.0, dlng):
            nlat = max(-90.0, min(90.0, lat + shift_lat))
            nlng = (lng + shift_lng + 180.0) % 360.0 - 180.0
            cells.add(encode(nlat, nlng, precision))
    return precision, sorted(cells)


def haversine_km(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))
