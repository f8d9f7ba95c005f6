"""UserDAL and CompanyDAL: users, the identity that owns each, unique usernames, companies.

A registration creates its documents in one commit: on its own (`register`), or staged into a unit
of work that also marks the invitation it used accepted (`stage_register`).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from google.cloud import firestore

from shared.dal.base import Dal, as_utc, commit, revision
from shared.dal.records import DocumentExists, IdentityTaken, Revision, UnitOfWork, UsernameTaken
from shared.models import Company, User

IDENTITIES = "identities"
USERNAMES = "usernames"


class CompanyDAL(Dal):
    collection = "companies"

    def get(self, company_id: str) -> Company | None:
        snap = self.ref(company_id).get()
        return _company(snap.to_dict() or {}) if snap.exists else None


class UserDAL(Dal):
    collection = "users"

    def get(self, user_id: str) -> User | None:
        snap = self.ref(user_id).get()
        return _user(snap.to_dict() or {}) if snap.exists else None

    def get_many(self, user_ids: list[str]) -> dict[str, User]:
        if not user_ids:
            return {}
        snaps = self.client.get_all([self.ref(u) for u in user_ids])
        return {s.id: _user(s.to_dict() or {}) for s in snaps if s.exists}

    def access_for(self, identity_key: str) -> tuple[str, str, str | None] | None:
        """(user id, role, company id) of an identity: one read, as every authenticated request
        needs it. Role and company never change after registration, so the identity holds them."""
        snap = self.client.collection(IDENTITIES).document(identity_key).get()
        if not snap.exists:
            return None
        data = snap.to_dict() or {}
        return data["user_id"], data["role"], data.get("company_id")

    def register(self, user: User, company: Company | None) -> None:
        """Create the user, its identity claim, its username and company, all or nothing."""
        batch = self.client.batch()
        for path, data in _registration(user, company):
            batch.create(self.client.document(path), data)
        try:
            commit(batch)
        except DocumentExists:
            if self.access_for(user.identity_key) is not None:
                raise IdentityTaken from None
            raise UsernameTaken from None

    def stage_register(self, uow: UnitOfWork, user: User, company: Company | None) -> None:
        """The creates of `register`, staged into a unit of work that commits more with them (the
        invitation used). A DocumentExists at its commit: the identity registered (`access_for`), or
        else the username taken."""
        for path, data in _registration(user, company):
            uow.create(path, data)

    def page_of_company(self, company_id: str, limit: int, after: str | None) -> tuple[list[User], str | None]:
        """A company's users in id order, and the next cursor."""
        snaps, cursor = self.page_where("company_id", company_id, limit, after)
        return [_user(s.to_dict() or {}) for s in snaps], cursor

    def get_for_update(self, user_id: str) -> tuple[User, Revision] | None:
        snap = self.ref(user_id).get()
        return (_user(snap.to_dict() or {}), revision(snap)) if snap.exists else None

    def update(self, user: User, previous_username: str, since: Revision) -> None:
        """Save a changed user if nobody changed it since `since`; move the username claim when it
        changed (so two concurrent renames cannot both keep a claim)."""
        batch = self.client.batch()
        if user.username.casefold() != previous_username.casefold():
            batch.create(self._username_ref(user.username), {"user_id": user.id})
            batch.delete(self._username_ref(previous_username))
        batch.update(self.ref(user.id), asdict(user), option=self.client.write_option(last_update_time=since.at))
        try:
            commit(batch)
        except DocumentExists:
            raise UsernameTaken from None

    def _username_ref(self, username: str) -> firestore.DocumentReference:
        return self.client.collection(USERNAMES).document(username.casefold())


def _registration(user: User, company: Company | None) -> list[tuple[str, dict[str, Any]]]:
    """The documents a registration creates: identity claim, username claim, user, new company."""
    docs: list[tuple[str, dict[str, Any]]] = [
        (f"{IDENTITIES}/{user.identity_key}", {"user_id": user.id, "role": user.role, "company_id": user.company_id}),
        (f"{USERNAMES}/{user.username.casefold()}", {"user_id": user.id}),
        (f"{UserDAL.collection}/{user.id}", asdict(user)),
    ]
    if company is not None:
        docs.append((f"{CompanyDAL.collection}/{company.id}", asdict(company)))
    return docs


def _user(data: dict[str, Any]) -> User:
    return User(**{**data, "created_at": as_utc(data["created_at"]), "updated_at": as_utc(data["updated_at"])})


def _company(data: dict[str, Any]) -> Company:
    return Company(**{**data, "created_at": as_utc(data["created_at"])})
