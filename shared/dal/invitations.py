"""InvitationDAL: the `invitations` collection, one document per invitation, its id the SHA-256 of
the invitation's code (the code itself is never stored).

A code is found with one read of its hash; a company's invitations by the `company_id` field, in id
order (served by the single-field index, no composite index). Changes are staged into a unit of work
on the revision they were read at: of two registrations that use one code, one commit wins.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from shared.dal.base import Dal, as_utc, revision
from shared.dal.records import Revision, UnitOfWork
from shared.team_models import Invitation

_TIMES = ("created_at", "expires_at")
_OPTIONAL_TIMES = ("accepted_at", "revoked_at")


class InvitationDAL(Dal):
    collection = "invitations"

    def get(self, invitation_id: str) -> tuple[Invitation, Revision] | None:
        snap = self.ref(invitation_id).get()
        return (_from_doc(snap.to_dict() or {}), revision(snap)) if snap.exists else None

    def page_of_company(self, company_id: str, limit: int, after: str | None) -> tuple[list[Invitation], str | None]:
        """A company's invitations in id order, and the cursor of the next page."""
        snaps, cursor = self.page_where("company_id", company_id, limit, after)
        return [_from_doc(s.to_dict() or {}) for s in snaps], cursor

    def stage_create(self, uow: UnitOfWork, invitation: Invitation) -> None:
        uow.create(self.path(invitation.id), asdict(invitation))

    def stage_update(self, uow: UnitOfWork, invitation: Invitation, since: Revision) -> None:
        uow.update(self.path(invitation.id), asdict(invitation), since=since)


def _from_doc(doc: dict[str, Any]) -> Invitation:
    fields = {k: v for k, v in doc.items() if k in Invitation.__dataclass_fields__}
    times: dict[str, datetime | None] = {k: as_utc(doc[k]) for k in _TIMES}
    for k in _OPTIONAL_TIMES:
        times[k] = as_utc(doc[k]) if doc.get(k) is not None else None
    values: dict[str, Any] = {**fields, **times}
    return Invitation(**values)
