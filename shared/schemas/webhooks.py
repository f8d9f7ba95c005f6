"""Outbound webhook endpoints and their delivery log (API.md, Webhooks to integrators)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal, Self

from pydantic import BaseModel, Field, StringConstraints, field_validator, model_validator

from shared.domain_events import WEBHOOK_TYPES
from shared.schemas.common import Strict
from shared.webhook_models import ALL_TYPES, Delivery, WebhookEndpoint

EVENT_TYPES = tuple(sorted(set(WEBHOOK_TYPES.values())))
Url = Annotated[str, StringConstraints(min_length=1, max_length=2048)]
Description = Annotated[str, StringConstraints(max_length=500)]
EventTypes = Annotated[list[str], Field(min_length=1, max_length=20)]
TYPES_HELP = f'webhook types ({", ".join(EVENT_TYPES)}), or ["*"] for every type'


def _known_types(events: list[str]) -> list[str]:
    unknown = sorted({e for e in events if e != ALL_TYPES and e not in EVENT_TYPES})
    if unknown:
        raise ValueError(f"unknown event type(s) {', '.join(unknown)}; known: {', '.join(EVENT_TYPES)}, or *")
    return sorted(set(events))


class EndpointIn(Strict):
    url: Url = Field(description="https to a public host (the local and test profiles also accept http://127.0.0.1)")
    events: EventTypes = Field(description=TYPES_HELP)
    description: Description | None = None

    @field_validator("events")
    @classmethod
    def _types(cls, events: list[str]) -> list[str]:
        return _known_types(events)


class EndpointPatch(Strict):
    url: Url | None = None
    events: EventTypes | None = Field(default=None, description=TYPES_HELP)
    status: Literal["enabled", "disabled"] | None = None

    @field_validator("events")
    @classmethod
    def _types(cls, events: list[str] | None) -> list[str] | None:
        return None if events is None else _known_types(events)

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        given = {k for k in self.model_fields_set if getattr(self, k) is not None}
        if not given:
            raise ValueError("give at least one of url, events, status (none may be null)")
        if given != self.model_fields_set:
            raise ValueError("url, events and status cannot be null")
        return self


class EndpointOut(BaseModel):
    id: str
    url: str
    events: list[str]
    description: str | None
    status: Literal["enabled", "disabled"]
    created_at: dt.datetime
    failing_since: dt.datetime | None = Field(description="the first failed delivery since the last success")
    disabled_at: dt.datetime | None

    @classmethod
    def of(cls, endpoint: WebhookEndpoint) -> EndpointOut:
        return cls(
            id=endpoint.id,
            url=endpoint.url,
            events=list(endpoint.events),
            description=endpoint.description,
            status=endpoint.status,
            created_at=endpoint.created_at,
            failing_since=endpoint.failing_since,
            disabled_at=endpoint.disabled_at,
        )


class EndpointCreated(EndpointOut):
    secret: str = Field(description="whsec_ + base64: shown only in this answer; verifies the signatures")


class DeliveryOut(BaseModel):
    id: str
    event_id: str = Field(description="the domain event's id: the webhook-id header of every attempt")
    type: str
    state: Literal["pending", "delivered", "failed"]
    attempts: int
    last_status: int | None = Field(description="the endpoint's HTTP status; null when nothing answered")
    last_error: str | None
    last_attempt_at: dt.datetime | None
    next_attempt_at: dt.datetime | None
    created_at: dt.datetime

    @classmethod
    def of(cls, delivery: Delivery) -> DeliveryOut:
        return cls(
            id=delivery.id,
            event_id=delivery.event_id,
            type=delivery.type,
            state=delivery.state,
            attempts=delivery.attempts,
            last_status=delivery.last_status,
            last_error=delivery.last_error,
            last_attempt_at=delivery.last_attempt_at,
            next_attempt_at=delivery.next_attempt_at,
            created_at=delivery.created_at,
        )
