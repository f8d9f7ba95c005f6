"""Shared field types, the strict base model, pages, problems and the local-only bodies."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

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


class ListQuery(Strict):
    limit: Annotated[int, Field(ge=1, le=100)] = 20
    page_token: Annotated[str, StringConstraints(max_length=1000)] | None = None


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
