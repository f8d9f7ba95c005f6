"""The door's domain objects: tickets, check-in devices and the first results of offline scans."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

TicketStatus = Literal["valid", "checked_in", "revoked"]


@dataclass(frozen=True)
class Ticket:
    """One admission of a confirmed booking: number `number` of its `quantity`.

    Its id is `<booking id>-<number>`, so issuing a booking's tickets twice would create the same
    documents (and fail); `code` is the signed, offline-verifiable text its QR image carries."""

    id: str
    booking_id: str
    event_id: str
    company_id: str
    user_id: str
    number: int
    code: str
    status: TicketStatus
    issued_at: datetime
    updated_at: datetime
    checked_in_at: datetime | None = None
    checked_in_by: str | None = None  # "<actor type>:<id>" of the gate that admitted it
    revoked_at: datetime | None = None
    seq: int = 1

    @staticmethod
    def id_of(booking_id: str, number: int) -> str:
        return f"{booking_id}-{number}"

    def changed(self, now: datetime, **changes: object) -> Ticket:
        return replace(self, **changes, updated_at=now, seq=self.seq + 1)  # type: ignore[arg-type]


@dataclass(frozen=True)
class CheckinDevice:
    """A door scanner allowed to check tickets in at one event; its token is stored only hashed."""

    id: str
    event_id: str
    company_id: str
    name: str
    token_hash: str
    created_at: datetime
    revoked_at: datetime | None = None
    seq: int = 1


ScanResult = Literal["ok", "already_checked_in", "wrong_event", "ticket_revoked", "invalid_ticket"]


@dataclass(frozen=True)
class ScanRecord:
    """The first result of an offline scan, so that a scan sent again (by the same gate) gets it again."""

    event_id: str
    gate: str  # "<actor type>:<id>" of the scanner that sent it: scan ids are the scanner's own
    scan_id: str
    result: ScanResult
    ticket_id: str | None
    scanned_at: datetime
    recorded_at: datetime
