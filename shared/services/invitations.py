"""Team members: a company's admins invite colleagues, list and revoke the invitations, and read
who the company's members are. Registering with a code is UserService.register (shared/services/users.py).

The code is shown once, in the answer to the invitation, and e-mailed to the invitee after the
commit; only its SHA-256 is stored. The e-mail is sent once, best effort: a mail server that fails
does not fail the request (the admin has the code in the answer) and is logged without the code.
Nothing retries it, since nothing but this request ever knows the code.

Domain events `invitation.created`, `.revoked` and `.accepted` are recorded in the commit of the
change, scoped to the company: their `event_id` (the ticketed event an object belongs to, the audit
log's scope) is empty, so no event's audit log lists them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol

from shared.core.errors import Forbidden, InvalidInvitation, InvalidState, NotFound, Unavailable
from shared.dal.records import ConcurrentUpdate, Revision, UnitOfWork
from shared.domain_events import Actor, DomainEvent
from shared.models import Company, User, new_id, utcnow
from shared.notify import EmailSender
from shared.services.identity import Principal
from shared.services.paging import decode_after, encode_after, fingerprint
from shared.team_models import INVITATION_TTL, Invitation, code_hash

log = logging.getLogger("invitations")


class InvitationStore(Protocol):
    def get(self, invitation_id: str) -> tuple[Invitation, Revision] | None: ...
    def page_of_company(
        self, company_id: str, limit: int, after: str | None
    ) -> tuple[list[Invitation], str | None]: ...
    def stage_create(self, uow: UnitOfWork, invitation: Invitation) -> None: ...
    def stage_update(self, uow: UnitOfWork, invitation: Invitation, since: Revision) -> None: ...


class MemberPages(Protocol):
    def page_of_company(self, company_id: str, limit: int, after: str | None) -> tuple[list[User], str | None]: ...


class CompanyReader(Protocol):
    def get(self, company_id: str) -> Company | None: ...


def invitation_event(
    action: str, after: Invitation, actor: Actor, at: datetime, before: Invitation | None = None
) -> DomainEvent:
    """The domain event of an invitation's change, scoped to its company (no ticketed event)."""
    changes = {"status": [before.state, after.state]} if before is not None and before.state != after.state else {}
    return DomainEvent(
        id=new_id(),
        action=f"invitation.{action}",
        object_type="invitation",
        object_id=after.id,
        event_id="",  # not a ticketed event's: kept out of every event's audit log
        company_id=after.company_id,
        actor=actor,
        sequence=after.seq,
        at=at,
        changes=changes,
        data={"invitation_id": after.id},
    )


def usable_invitation(store: InvitationStore, code: str, now: datetime) -> tuple[Invitation, Revision]:
    """The pending invitation of `code` and the revision it was read at, or InvalidInvitation. One read,
    by the code's hash."""
    found = store.get(code_hash(code))
    if found is None or not found[0].is_usable(now):
        raise InvalidInvitation("this invitation code is unknown, used, revoked or expired")
    return found


class Team:
    def __init__(
        self,
        invitations: InvitationStore,
        members: MemberPages,
        companies: CompanyReader,
        sender: EmailSender,
        new_uow: Callable[[], UnitOfWork],
        ttl: timedelta = INVITATION_TTL,
    ) -> None:
        self.invitations = invitations
        self.members_of = members
        self.companies = companies
        self.sender = sender
        self.new_uow = new_uow
        self.ttl = ttl

    def invite(self, principal: Principal, company_id: str, email: str) -> tuple[Invitation, str, bool]:
        """A new pending invitation, its code (only here) and whether the e-mail with it went out."""
        _manage(principal, company_id)
        now = utcnow()
        invitation, code = Invitation.new(company_id, email, principal.user_id, now, self.ttl)
        uow = self.new_uow()
        self.invitations.stage_create(uow, invitation)
        uow.record(invitation_event("created", invitation, Actor.user(principal.user_id), now))
        uow.commit()
        return invitation, code, self._email(invitation, code)

    def invitations_of(
        self, principal: Principal, company_id: str, limit: int, page_token: str | None
    ) -> tuple[list[Invitation], str | None]:
        _manage(principal, company_id)
        query = fingerprint({"invitations": company_id})
        after = decode_after(page_token, query) if page_token else None
        found, cursor = self.invitations.page_of_company(company_id, limit, after)
        return found, encode_after(cursor, query) if cursor else None

    def revoke(self, principal: Principal, company_id: str, invitation_id: str) -> Invitation:
        """A pending invitation revoked; any other (accepted, revoked, expired) is InvalidState."""
        _manage(principal, company_id)
        for _ in range(3):
            found = self.invitations.get(invitation_id)
            if found is None or found[0].company_id != company_id:
                raise NotFound("invitation not found")
            invitation, read_at = found
            now = utcnow()
            status = invitation.status(now)
            if status != "pending":
                raise InvalidState(f"only a pending invitation can be revoked; this one is {status}")
            revoked = invitation.revoked(principal.user_id, now)
            uow = self.new_uow()
            self.invitations.stage_update(uow, revoked, since=read_at)
            uow.record(invitation_event("revoked", revoked, Actor.user(principal.user_id), now, before=invitation))
            try:
                uow.commit()
            except ConcurrentUpdate:
                continue  # used or revoked meanwhile: read it again
            return revoked
        raise Unavailable("the invitation is changing; retry", retry_after=1)

    def members(
        self, principal: Principal, company_id: str, limit: int, page_token: str | None
    ) -> tuple[list[User], str | None]:
        _manage(principal, company_id)
        query = fingerprint({"members": company_id})
        after = decode_after(page_token, query) if page_token else None
        found, cursor = self.members_of.page_of_company(company_id, limit, after)
        return found, encode_after(cursor, query) if cursor else None

    def _email(self, invitation: Invitation, code: str) -> bool:
        """Send the code to the invitee; a failure is logged (never with the code) and answered False."""
        try:
            company = self.companies.get(invitation.company_id)
            name = company.name if company else "a company"
            self.sender.send(
                invitation.email, f"You are invited to manage events of {name}", _body(name, invitation, code)
            )
        except Exception as exc:  # any failure of the mail server or the network: the request stands
            log.warning("invitation %s: the e-mail to the invitee failed (%s)", invitation.id, type(exc).__name__)
            return False
        log.info("invitation %s: e-mail sent", invitation.id)
        return True


def _manage(principal: Principal, company_id: str) -> None:
    if not principal.manages(company_id):
        raise Forbidden("only the company's admins manage its team")


def _body(company_name: str, invitation: Invitation, code: str) -> str:
    expires = invitation.expires_at.strftime("%Y-%m-%d %H:%M UTC")
    return "\n".join(
        [
            "Hello,",
            "",
            f"an admin of {company_name} invites you to manage its events with them.",
            "",
            f"Your invitation code: {code}",
            "",
            "Sign in and register as an admin with this code instead of a company",
            '(POST /v1/users with "role": "admin" and "invitation": "<the code>").',
            f"The code works once and until {expires}. Keep it to yourself: whoever has it can join.",
            "",
            "If you did not expect this, ignore this e-mail.",
        ]
    )
