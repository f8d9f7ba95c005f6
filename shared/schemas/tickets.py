"""Tickets, the keys that verify their codes, and check-in."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, Field, StringConstraints, field_validator, model_validator

from shared.schemas.common import Name, Strict
from shared.ticket_models import CheckinDevice, ScanRecord, Ticket

Code = Annotated[str, StringConstraints(max_length=1000)]  # longer than any code: refused as invalid_ticket
ScanId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
MAX_BATCH = 500
# 500 scans of real codes (~150 characters) are ~115 KB: the batch route reads up to this much.
MAX_BATCH_BYTES = 640 * 1024


class TicketOut(BaseModel):
    id: str
    booking_id: str
    event_id: str
    number: int = Field(description="1..quantity of its booking")
    status: Literal["valid", "checked_in", "revoked"]
    checked_in_at: dt.datetime | None
    code: str = Field(description="<payload>.<signature>, base64url; verifiable offline with GET /v1/ticket-keys")

    @classmethod
    def of(cls, ticket: Ticket) -> TicketOut:
        return cls(
            id=ticket.id,
            booking_id=ticket.booking_id,
            event_id=ticket.event_id,
            number=ticket.number,
            status=ticket.status,
            checked_in_at=ticket.checked_in_at,
            code=ticket.code,
        )


class TicketList(BaseModel):
    items: list[TicketOut]


class TicketKeyOut(BaseModel):
    kty: Literal["OKP"]
    crv: Literal["Ed25519"]
    kid: str
    x: str = Field(description="the 32-byte public key, base64url")
    use: Literal["sig"]
    alg: Literal["EdDSA"]


class TicketKeysOut(BaseModel):
    keys: list[TicketKeyOut]


class CheckinIn(Strict):
    code: Code


class CheckinOut(BaseModel):
    ticket: TicketOut
    checked_in_at: dt.datetime


class ScanIn(Strict):
    scan_id: ScanId = Field(description="the scanner's own id of the scan: sent again, it gets its first result")
    code: Code
    scanned_at: AwareDatetime = Field(description="when it was scanned: since 2000, and not later than a day ahead")

    @field_validator("scanned_at")
    @classmethod
    def _plausible(cls, value: dt.datetime) -> dt.datetime:
        if not dt.datetime(2000, 1, 1, tzinfo=dt.UTC) <= value <= dt.datetime.now(dt.UTC) + dt.timedelta(days=1):
            raise ValueError("scanned_at is after 2000 and at most a day ahead of the server's clock")
        return value.astimezone(dt.UTC)


class BatchIn(Strict):
    scans: Annotated[list[ScanIn], Field(min_length=1, max_length=MAX_BATCH)]

    @model_validator(mode="after")
    def _distinct_scan_ids(self) -> BatchIn:
        ids = [s.scan_id for s in self.scans]
        if len(set(ids)) != len(ids):
            raise ValueError("every scan_id of a batch is different")
        return self


class ScanResultOut(BaseModel):
    scan_id: str
    result: Literal["ok", "already_checked_in", "wrong_event", "ticket_revoked", "invalid_ticket"]
    ticket_id: str | None

    @classmethod
    def of(cls, record: ScanRecord) -> ScanResultOut:
        return cls(scan_id=record.scan_id, result=record.result, ticket_id=record.ticket_id)


class BatchOut(BaseModel):
    results: list[ScanResultOut]


class RevocationsOut(BaseModel):
    ticket_ids: list[str]


class DeviceIn(Strict):
    name: Name


class DeviceOut(BaseModel):
    id: str
    name: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None

    @classmethod
    def of(cls, device: CheckinDevice) -> DeviceOut:
        return cls(id=device.id, name=device.name, created_at=device.created_at, revoked_at=device.revoked_at)


class DeviceCreated(BaseModel):
    id: str
    name: str
    token: str = Field(description="shown only here: the device sends it as `Authorization: Bearer <token>`")
    created_at: dt.datetime


class DeviceList(BaseModel):
    items: list[DeviceOut]


class AttendeeOut(BaseModel):
    ticket_id: str
    booking_id: str
    number: int
    name: str
    email: str
    status: Literal["valid", "checked_in", "revoked"]
    checked_in_at: dt.datetime | None
