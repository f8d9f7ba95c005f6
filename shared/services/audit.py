"""The audit log of an event: its domain-event stream, newest first, for the owning company's admins."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from shared.core.errors import Forbidden, NotFound
from shared.domain_events import DomainEvent
from shared.models import Event
from shared.schemas import AuditEntryOut, Page
from shared.services.identity import Principal
from shared.services.paging import decode_token, encode_token, fingerprint


class Stream(Protocol):
    def of_event(
        self, event_id: str, limit: int, after: tuple[datetime, str] | None
    ) -> tuple[list[DomainEvent], tuple[datetime, str] | None]: ...


class EventReader(Protocol):
    def get(self, event_id: str) -> Event | None: ...


class AuditLog:
    def __init__(self, stream: Stream, events: EventReader) -> None:
        self.stream = stream
        self.events = events

    def of_event(self, principal: Principal, event_id: str, limit: int, page_token: str | None) -> Page[AuditEntryOut]:
        event = self.events.get(event_id)
        if event is None or not (event.is_published or principal.manages(event.company_id)):
            raise NotFound("event not found")
        if not principal.manages(event.company_id):
            raise Forbidden("only the event's company admins read its audit log")
        query_fingerprint = fingerprint({"audit": event_id})
        after = decode_token(page_token, query_fingerprint) if page_token else None
        found, cursor = self.stream.of_event(event_id, limit, after)
        return Page[AuditEntryOut](
            items=[AuditEntryOut.of(e) for e in found],
            next_page_token=encode_token(cursor, query_fingerprint) if cursor else None,
        )
