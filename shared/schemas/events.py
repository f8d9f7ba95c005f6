"""Events: creation, changes, search, and what clients read."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from importlib import resources
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from shared.models import Event
from shared.schemas.cancel import CancellationOut
from shared.schemas.common import HHMM, MAX_CAPACITY, Currency, Day, Money, Name, Strict


@lru_cache(maxsize=1)
def _timezones() -> frozenset[str]:
    """The IANA zone names tzdata ships (the host's zoneinfo folder also holds "localtime" & co.)."""
    return frozenset(resources.files("tzdata").joinpath("zones").read_text().split())


def _check_timezone(value: str) -> str:
    """Only IANA zone names ("localtime" and the like are files of the host, not zones)."""
    if value not in _timezones():
        raise ValueError(f"unknown IANA timezone '{value}'")
    return value


class EventFields(Strict):
    """Fields an admin sets; every one optional here so that PATCH can reuse the checks."""

    name: Name | None = None
    description: Annotated[str, StringConstraints(max_length=5000)] | None = None
    event_date: Day | None = None
    event_time: HHMM | None = None
    timezone: str | None = None
    venue: Name | None = None
    location_lat: Annotated[float, Field(ge=-90, le=90)] | None = None
    location_long: Annotated[float, Field(ge=-180, le=180)] | None = None
    capacity: Annotated[int, Field(ge=1, le=MAX_CAPACITY)] | None = None
    base_price: Money | None = None
    surge_price: Money | None = None
    surge_threshold: Annotated[float, Field(gt=0, le=1)] | None = None
    currency: Currency | None = None
    max_tickets_per_booking: Annotated[int, Field(ge=1, le=100)] | None = None
    status: Literal["published", "draft"] | None = None

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str | None) -> str | None:
        return value if value is None else _check_timezone(value)


class EventIn(EventFields):
    name: Name
    event_date: Day
    event_time: HHMM
    timezone: str
    venue: Name
    location_lat: Annotated[float, Field(ge=-90, le=90)]
    location_long: Annotated[float, Field(ge=-180, le=180)]
    capacity: Annotated[int, Field(ge=1, le=MAX_CAPACITY)]
    base_price: Money
    surge_price: Money
    surge_threshold: Annotated[float, Field(gt=0, le=1)]
    currency: Currency
    max_tickets_per_booking: Annotated[int, Field(ge=1, le=100)] = 10
    status: Literal["published", "draft"] = "published"


class EventPatch(EventFields):
    version: int | None = Field(default=None, description="alternative to the If-Match header")

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        changed = self.model_fields_set - {"version"}
        if not changed:
            raise ValueError("give at least one field to change")
        for name in changed - {"description"}:
            if getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self

    def changes(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.model_fields_set - {"version"}}


class EventOut(BaseModel):
    id: str
    company_id: str
    name: str
    description: str | None
    event_date: Day
    event_time: str
    timezone: str
    starts_at: dt.datetime
    venue: str
    location_lat: float
    location_long: float
    capacity: int
    available_tickets: int
    base_price: int
    surge_price: int
    surge_threshold: float
    current_price: int
    currency: str
    max_tickets_per_booking: int
    status: Literal["published", "draft", "cancelled"]
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime
    distance_km: float | None = Field(default=None, description="only in searches around a point")
    cancellation: CancellationOut | None = Field(default=None, description="null unless the event was cancelled")

    @classmethod
    def of(
        cls, event: Event, taken: int, distance_km: float | None = None, cancellation: CancellationOut | None = None
    ) -> EventOut:
        return cls(
            id=event.id,
            company_id=event.company_id,
            name=event.name,
            description=event.description,
            event_date=event.event_date,
            event_time=event.event_time.strftime("%H:%M"),
            timezone=event.timezone,
            starts_at=event.starts_at,
            venue=event.venue,
            location_lat=event.location_lat,
            location_long=event.location_long,
            capacity=event.capacity,
            available_tickets=max(event.capacity - taken, 0),
            base_price=event.base_price,
            surge_price=event.surge_price,
            surge_threshold=event.surge_threshold,
            current_price=event.unit_price(taken),
            currency=event.currency,
            max_tickets_per_booking=event.max_tickets_per_booking,
            status=event.status,
            version=event.version,
            created_at=event.created_at,
            updated_at=event.updated_at,
            distance_km=None if distance_km is None else round(distance_km, 3),
            cancellation=cancellation,
        )


class EventSearch(Strict):
    q: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)] | None = None
    from_: Day | None = Field(default=None, alias="from")
    to: Day | None = None
    lat: Annotated[float, Field(ge=-90, le=90)] | None = None
    lng: Annotated[float, Field(ge=-180, le=180)] | None = None
    radius_km: Annotated[float, Field(gt=0, le=20_000)] | None = None
    limit: Annotated[int, Field(ge=1, le=100)] = 20
    page_token: Annotated[str, StringConstraints(max_length=1000)] | None = None

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        geo = [self.lat, self.lng, self.radius_km]
        if any(v is not None for v in geo) and not all(v is not None for v in geo):
            raise ValueError("lat, lng and radius_km go together")
        if self.from_ and self.to and self.from_ > self.to:
            raise ValueError("from must not be after to")
        if self.q is not None and not any(ch.isalnum() for ch in self.q):
            raise ValueError("q needs at least one letter or digit")
        return self


class BookingCounts(BaseModel):
    pending_payment: int
    confirmed: int
    expired: int
    cancelled: int
    refunded: int


class EventStatsOut(BaseModel):
    capacity: int
    sold: int = Field(description="tickets of confirmed bookings")
    held: int = Field(description="tickets of pending bookings whose hold has not run out")
    available: int
    checked_in: int
    bookings: BookingCounts
    revenue: int = Field(description="succeeded payments minus refunds, in minor units")
    refunded: int = Field(description="refunded payments, in minor units")
    currency: str
