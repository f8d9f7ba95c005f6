"""Schemathesis hooks for the stateful run (loaded with SCHEMATHESIS_HOOKS=fuzz.schemathesis_hooks).

An event that the API accepts must start in the future, name an IANA timezone and surge no lower
than its base price: rules a JSON schema cannot say, so almost every generated POST /v1/events is
a 422 and the links that start there (hold -> pay -> read) are never followed. For positive cases
only, this repairs what the schema cannot express and keeps every other generated value, so the
chains start from real events; and it sends whole-number floats (76.0, an integer to JSON Schema) as
integers, which the API's strict parsing wants. Negative cases go out untouched.
"""

from __future__ import annotations

import datetime as dt
import zlib
from typing import Any

import schemathesis
from schemathesis.generation import GenerationMode

ZONES = ("Europe/Berlin", "America/New_York", "Asia/Tokyo", "Australia/Lord_Howe", "Pacific/Chatham", "UTC")
INTEGER_FIELDS = ("capacity", "base_price", "surge_price", "max_tickets_per_booking")


def repaired_event(body: dict[str, Any]) -> dict[str, Any]:
    """The same event, made acceptable: a known zone, a future day, integers as integers, surge >= base,
    and room for any hold the schema allows (up to 100 tickets)."""
    fixed = dict(body)
    seed = zlib.crc32(repr(sorted(body.items(), key=lambda kv: kv[0])).encode())
    fixed["timezone"] = ZONES[seed % len(ZONES)]
    day = dt.date(2030, 1, 1) + dt.timedelta(days=seed % 3650)
    fixed["event_date"] = day.isoformat()
    for name in INTEGER_FIELDS:
        if isinstance(fixed.get(name), float):
            fixed[name] = int(fixed[name])
    fixed["capacity"] = max(int(fixed.get("capacity") or 0), 200)
    fixed["max_tickets_per_booking"] = 100
    base = int(fixed.get("base_price") or 0)
    fixed["surge_price"] = max(int(fixed.get("surge_price") or 0), base)
    for name in ("name", "venue"):
        value = fixed.get(name)
        if not isinstance(value, str) or not value.strip():
            fixed[name] = "Fuzz hall"
    return fixed


def integers_as_integers(value: Any) -> Any:
    """76.0 is an integer to JSON Schema but not to the API's strict parsing ("5" is not 5, 5.0 is not 5)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {k: integers_as_integers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [integers_as_integers(v) for v in value]
    return value


@schemathesis.hook
def before_call(ctx: Any, case: Any, kwargs: Any) -> None:
    meta = getattr(case, "_meta", None)
    mode = getattr(getattr(meta, "generation", None), "mode", None)
    if mode != GenerationMode.POSITIVE or not isinstance(case.body, dict):
        return
    body = integers_as_integers(case.body)
    if case.operation.method.upper() == "POST" and case.operation.path == "/v1/events":
        body = repaired_event(body)
    case.body = body
