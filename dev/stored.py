"""Reading stored values the way every checker module does: instants as aware UTC datetimes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def at(value: Any) -> datetime | None:
    """The instant a stored value holds (UTC), or None when it holds none."""
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return None
