"""Team members' domain object: the invitation an admin sends a colleague. Pure Python.

An invitation's code is a bearer credential (whoever holds it may register as an admin of the
company), so it is made from `secrets`, shown once, and only its SHA-256 is stored: that hash is the
document id (one read finds a code) and the id the API names the invitation by. Knowing an id does
not give its code (a preimage of SHA-256 over 256 random bits).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

InvitationState = Literal["pending", "accepted", "revoked"]  # what is stored
InvitationStatus = Literal["pending", "accepted", "revoked", "expired"]  # what is shown: expired is derived
INVITATION_TTL = timedelta(days=7)
CODE_PREFIX = "inv_"  # recognisable in a leaked text (secret scanners), not part of the secret's strength
CODE_BYTES = 32  # 256 random bits, 43 URL-safe characters


def code_hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


@dataclass(frozen=True)
class Invitation:
    id: str  # the SHA-256 (hex) of its code
    company_id: str
    email: str
    invited_by: str  # the inviting admin's user id
    created_at: datetime
    expires_at: datetime
    state: InvitationState = "pending"
    accepted_by: str | None = None  # the user id its registration made
    accepted_at: datetime | None = None
    revoked_by: str | None = None
    revoked_at: datetime | None = None
    seq: int = 1  # increases with every change (the domain events' sequence)

    @staticmethod
    def new(company_id: str, email: str, invited_by: str, now: datetime, ttl: timedelta) -> tuple[Invitation, str]:
        """A fresh invitation and its code (the code exists only in what this returns)."""
        code = CODE_PREFIX + secrets.token_urlsafe(CODE_BYTES)
        invitation = Invitation(code_hash(code), company_id, email, invited_by, now, now + ttl)
        return invitation, code

    def status(self, now: datetime) -> InvitationStatus:
        if self.state == "pending" and now >= self.expires_at:
            return "expired"
        return self.state

    def is_usable(self, now: datetime) -> bool:
        return self.status(now) == "pending"

    def accepted(self, user_id: str, now: datetime) -> Invitation:
        return replace(self, state="accepted", accepted_by=user_id, accepted_at=now, seq=self.seq + 1)

    def revoked(self, user_id: str, now: datetime) -> Invitation:
        return replace(self, state="revoked", revoked_by=user_id, revoked_at=now, seq=self.seq + 1)
