"""Request and response bodies of the HTTP API (pydantic). The OpenAPI document is built from these."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from importlib import resources
from typing import Annotated, Any, Generic, Literal, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from shared.domain_events import DomainEvent
from shared.models import Booking, Company, Event, Payment, PublicPaymentStatus, User

T = TypeVar("T")

Name = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")
]
Email = Annotated[str, StringConstraints(strip_whitespace=True, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
CountryCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
Phone = Annotated[str, StringConstraints(pattern=r"^\+[1-9][0-9]{6,14}$")]
Username = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{3,40}$")]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
Money = Annotated[int, Field(ge=0, le=100_000_000)]
HHMM = Annotated[str, StringConstraints(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
MAX_CAPACITY = 100_000
# Dates a client may send: far enough for any real event, clear of datetime's year-9999 edge.
Day = Annotated[dt.date, Field(ge=dt.date(2000, 1, 1), le=dt.date(2999, 12, 31))]


class Strict(BaseModel):
    """Unknown fields are refused, never stored."""

    model_config = ConfigDict(extra="forbid")


# ---- users and companies -------------------------------------------------------------------


class CompanyIn(Strict):
    name: Name
    address: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
    email: Email
    country_code: CountryCode
    phone_number: Phone
    registration_number: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


class UserIn(Strict):
    name: Name
    email: Email
    username: Username
    country_code: CountryCode
    phone_number: Phone
    role: Literal["user", "admin"]
    company: CompanyIn | None = None

    @model_validator(mode="after")
    def _company_matches_role(self) -> Self:
        if self.role == "admin" and self.company is None:
            raise ValueError("company is required when role is admin")
        if self.role == "user" and self.company is not None:
            raise ValueError("company is only for role admin")
        return self


class UserPatch(Strict):
    name: Name | None = None
    username: Username | None = None
    country_code: CountryCode | None = None
    phone_number: Phone | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if not self.model_fields_set:
            raise ValueError("give at least one field to change")
        for name in self.model_fields_set:
            if getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class UserOut(BaseModel):
    id: str
    name: str
    email: str
    username: str
    country_code: str
    phone_number: str
    role: Literal["user", "admin"]
    company_id: str | None
    created_at: dt.datetime

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(
            id=user.id,
            name=user.name,
            email=user.email,
            username=user.username,
            country_code=user.country_code,
            phone_number=user.phone_number,
            role=user.role,
            company_id=user.company_id,
            created_at=user.created_at,
        )


class CompanyOut(BaseModel):
    id: str
    name: str
    address: str
    email: str
    country_code: str
    phone_number: str
    registration_number: str
    created_at: dt.datetime

    @classmethod
    def of(cls, company: Company) -> CompanyOut:
        return cls(**company.__dict__)


# ---- events --------------------------------------------------------------------------------


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
    status: Literal["published", "draft"]
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime
    distance_km: float | None = Field(default=None, description="only in searches around a point")

    @classmethod
    def of(cls, event: Event, taken: int, distance_km: float | None = None) -> EventOut:
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


# ---- bookings ------------------------------------------------------------------------------


class BookingIn(Strict):
    quantity: Annotated[int, Field(ge=1, le=100)]


class ListQuery(Strict):
    limit: Annotated[int, Field(ge=1, le=100)] = 20
    page_token: Annotated[str, StringConstraints(max_length=1000)] | None = None


class BookingOut(BaseModel):
    id: str
    event_id: str
    user_id: str
    quantity: int
    unit_price: int
    total_cost: int
    currency: str
    status: Literal["pending_payment", "confirmed", "expired", "cancelled", "refunded"]
    booking_time: dt.datetime
    expires_at: dt.datetime
    payment: PaymentOut | None = Field(default=None, description="the latest Payment, or null")

    @classmethod
    def of(cls, booking: Booking, now: dt.datetime, payment: PaymentOut | None = None) -> BookingOut:
        return cls(
            id=booking.id,
            event_id=booking.event_id,
            user_id=booking.user_id,
            quantity=booking.quantity,
            unit_price=booking.unit_price,
            total_cost=booking.total_cost,
            currency=booking.currency,
            status=booking.status_at(now),
            booking_time=booking.booking_time,
            expires_at=booking.expires_at,
            payment=payment,
        )


# ---- payments ------------------------------------------------------------------------------

PaymentMethod = Annotated[str, StringConstraints(pattern=r"^pm_[A-Za-z0-9_]{1,100}$")]


class PaymentIn(Strict):
    payment_method: PaymentMethod | None = None


class PaymentOut(BaseModel):
    id: str
    booking_id: str
    amount: int
    currency: str
    status: PublicPaymentStatus
    provider: str
    transaction_id: str | None
    client_secret: str | None = Field(description="for client-side confirmation; only shown to the buyer")
    idempotency_key: str
    failure_code: str | None = None
    attention: str | None = Field(default=None, description="why a person should look at it (admins only)")
    created_at: dt.datetime

    @classmethod
    def of(cls, payment: Payment, *, for_buyer: bool) -> PaymentOut:
        return cls(
            id=payment.id,
            booking_id=payment.booking_id,
            amount=payment.amount,
            currency=payment.currency,
            status="processing" if payment.status == "creating" else payment.status,
            provider=payment.provider,
            transaction_id=payment.transaction_id,
            client_secret=payment.client_secret if for_buyer else None,
            idempotency_key=payment.idempotency_key,
            failure_code=payment.failure_code,
            attention=None if for_buyer else payment.attention,
            created_at=payment.created_at,
        )


class ActorOut(BaseModel):
    type: Literal["user", "device", "system", "stripe"]
    id: str


class ObjectRef(BaseModel):
    type: str
    id: str


class AuditEntryOut(BaseModel):
    at: dt.datetime
    actor: ActorOut
    action: str = Field(description='"<object type>.<what happened>", e.g. "booking.confirmed"')
    object: ObjectRef
    sequence: int = Field(description="increases with every change of the same object")
    changes: dict[str, list[Any]] | None = Field(default=None, description="field -> [before, after]")

    @classmethod
    def of(cls, event: DomainEvent) -> AuditEntryOut:
        return cls(
            at=event.at,
            actor=ActorOut(type=event.actor.type, id=event.actor.id),
            action=event.action,
            object=ObjectRef(type=event.object_type, id=event.object_id),
            sequence=event.sequence,
            changes=event.changes or None,
        )


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_page_token: str | None


class Problem(BaseModel):
    type: str
    title: str
    status: int
    detail: str
    code: str
    instance: str | None = None
    errors: list[dict[str, Any]] | None = None


class Health(BaseModel):
    status: Literal["ok"]


class DevTokenIn(Strict):
    sub: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    email: Email | None = None
    name: Name | None = None
    expires_in: Annotated[int, Field(ge=60, le=86_400)] = 3600


class DevTokenOut(BaseModel):
    id_token: str
