"""One operation of the OpenAPI document: what shared/openapi.py renders for a route."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    summary: str
    responses: dict[int, type[BaseModel] | None]
    auth: str = "required"  # required | optional | none
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    headers: tuple[str, ...] = ()
    errors: tuple[int, ...] = field(default=())
    body_required: bool = True
    media: tuple[str, ...] = ("application/json",)  # what a success answers in (CSV, images)
