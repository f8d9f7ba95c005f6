"""The audit log: domain events as the admins of an event read them."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, Field

from shared.domain_events import DomainEvent


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
