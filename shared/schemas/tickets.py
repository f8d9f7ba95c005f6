"""Tickets, the keys that verify their codes, and check-in."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field

from shared.models import Ticket


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
