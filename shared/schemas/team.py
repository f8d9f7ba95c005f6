"""Team members: invitations to join a company as an admin."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field

from shared.schemas.common import Email, Strict
from shared.team_models import Invitation


class InvitationIn(Strict):
    email: Email = Field(description="where the code is e-mailed")


class InvitationOut(BaseModel):
    id: str
    email: str
    status: Literal["pending", "accepted", "revoked", "expired"] = Field(
        description="expired: pending and past expires_at (derived when read)"
    )
    created_at: dt.datetime
    expires_at: dt.datetime
    invited_by: str = Field(description="the inviting admin's user id")
    accepted_by: str | None = Field(description="the user id of the admin its registration made")
    accepted_at: dt.datetime | None
    revoked_at: dt.datetime | None

    @classmethod
    def of(cls, invitation: Invitation, now: dt.datetime) -> InvitationOut:
        return cls(
            id=invitation.id,
            email=invitation.email,
            status=invitation.status(now),
            created_at=invitation.created_at,
            expires_at=invitation.expires_at,
            invited_by=invitation.invited_by,
            accepted_by=invitation.accepted_by,
            accepted_at=invitation.accepted_at,
            revoked_at=invitation.revoked_at,
        )


class InvitationCreated(InvitationOut):
    code: str = Field(
        description="single use, valid until expires_at; shown only in this answer (and e-mailed): register with"
        ' POST /v1/users {"role": "admin", "invitation": "<code>", ...}'
    )
    email_sent: bool = Field(description="whether the mail server took the e-mail with the code; if not, pass it on")
