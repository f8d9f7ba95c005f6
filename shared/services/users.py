"""Registration of buyers and event managers; a user's own profile; their company."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Protocol

from shared.core.errors import (
    AlreadyRegistered,
    Forbidden,
    InvalidInvitation,
    NotFound,
    Unavailable,
    ValidationFailed,
)
from shared.core.identity import Identity
from shared.dal.records import (
    ConcurrentUpdate,
    DocumentExists,
    IdentityTaken,
    Revision,
    UnitOfWork,
    UsernameTaken,
)
from shared.domain_events import Actor
from shared.models import Company, User, new_id, utcnow
from shared.schemas import UserIn, UserPatch
from shared.services.identity import Principal, identity_key
from shared.services.invitations import InvitationStore, invitation_event, usable_invitation
from shared.services.retry import backoff

MAX_ATTEMPTS = 8


class UserStore(Protocol):
    def get(self, user_id: str) -> User | None: ...
    def access_for(self, identity_key: str) -> tuple[str, str, str | None] | None: ...
    def register(self, user: User, company: Company | None) -> None: ...
    def stage_register(self, uow: UnitOfWork, user: User, company: Company | None) -> None: ...
    def get_for_update(self, user_id: str) -> tuple[User, Revision] | None: ...
    def update(self, user: User, previous_username: str, since: Revision) -> None: ...


class CompanyStore(Protocol):
    def get(self, company_id: str) -> Company | None: ...


def _username_taken() -> ValidationFailed:
    return ValidationFailed("username is taken", [{"field": "username", "message": "already taken"}])


class UserService:
    def __init__(
        self,
        users: UserStore,
        companies: CompanyStore,
        invitations: InvitationStore,
        new_uow: Callable[[], UnitOfWork],
    ) -> None:
        self.users = users
        self.companies = companies
        self.invitations = invitations
        self.new_uow = new_uow

    def register(self, identity: Identity, data: UserIn) -> User:
        """A buyer, an admin with a new company, or (with an invitation's code) an admin of the
        inviting company. A subject registered already is refused before its code is looked at."""
        key = identity_key(identity)
        if self.users.access_for(key) is not None:
            raise AlreadyRegistered()
        now = utcnow()
        if data.invitation is not None:
            return self._register_invited(identity, data, data.invitation, now)
        company = None
        if data.company is not None:
            company = Company(id=new_id(), created_at=now, **data.company.model_dump())
        user = _user(identity, data, company.id if company else None, now)
        try:
            self.users.register(user, company)
        except IdentityTaken:
            raise AlreadyRegistered() from None
        except UsernameTaken:
            raise _username_taken() from None
        return user

    def _register_invited(self, identity: Identity, data: UserIn, code: str, now: datetime) -> User:
        """One commit: the user, its identity and username claims, and the invitation accepted on the
        revision it was read at. Of two registrations with one code, the second's commit fails on that
        precondition and writes nothing (invalid_invitation)."""
        invitation, read_at = usable_invitation(self.invitations, code, now)
        user = _user(identity, data, invitation.company_id, now)
        accepted = invitation.accepted(user.id, now)
        uow = self.new_uow()
        self.users.stage_register(uow, user, None)
        self.invitations.stage_update(uow, accepted, since=read_at)
        uow.record(invitation_event("accepted", accepted, Actor.user(user.id), now, before=invitation))
        try:
            uow.commit()
        except DocumentExists:
            if self.users.access_for(user.identity_key) is not None:
                raise AlreadyRegistered() from None
            raise _username_taken() from None
        except ConcurrentUpdate:
            raise InvalidInvitation("this invitation code was used or revoked meanwhile") from None
        return user

    def me(self, principal: Principal) -> User:
        user = self.users.get(principal.user_id)
        if user is None:
            raise NotFound("user not found")
        return user

    def update_me(self, principal: Principal, patch: UserPatch) -> User:
        """Compare and set: a concurrent change of the same user is read again and the patch
        applied on top of it (the last patch wins field by field, no username claim is orphaned)."""
        for attempt in range(MAX_ATTEMPTS):
            found = self.users.get_for_update(principal.user_id)
            if found is None:
                raise NotFound("user not found")
            current, read_at = found
            changed = replace(current, **patch.model_dump(exclude_unset=True), updated_at=utcnow())
            try:
                self.users.update(changed, previous_username=current.username, since=read_at)
            except UsernameTaken:
                raise _username_taken() from None
            except ConcurrentUpdate:
                backoff(attempt)
                continue
            return changed
        raise Unavailable("the user is changing; retry", retry_after=1)

    def company(self, principal: Principal, company_id: str) -> Company:
        if not principal.manages(company_id):
            raise Forbidden("only the company's admins can read it")
        company = self.companies.get(company_id)
        if company is None:
            raise NotFound("company not found")
        return company


def _user(identity: Identity, data: UserIn, company_id: str | None, now: datetime) -> User:
    return User(
        id=new_id(),
        identity_key=identity_key(identity),
        auth_subject=identity.subject,
        name=data.name,
        email=data.email,
        username=data.username,
        country_code=data.country_code,
        phone_number=data.phone_number,
        role=data.role,
        company_id=company_id,
        created_at=now,
        updated_at=now,
    )
