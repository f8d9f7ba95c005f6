"""From a bearer token to the registered user behind it."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

from shared.core.errors import NotRegistered
from shared.core.identity import Identity, bearer_token


class Verifier(Protocol):
    def verify(self, token: str) -> Identity: ...


class UserLookup(Protocol):
    def access_for(self, identity_key: str) -> tuple[str, str, str | None] | None: ...


@dataclass(frozen=True)
class Principal:
    """A registered caller. Role and company never change after registration, so it is cacheable."""

    user_id: str
    role: str
    company_id: str | None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def manages(self, company_id: str) -> bool:
        return self.is_admin and self.company_id == company_id


def identity_key(identity: Identity) -> str:
    """Stable key of an identity: the same subject at two issuers is two identities."""
    return hashlib.sha256(f"{identity.issuer}\n{identity.subject}".encode()).hexdigest()[:40]


class Authenticator:
    CACHE_SIZE = 10_000

    def __init__(self, verifier: Verifier, users: UserLookup) -> None:
        self.verifier = verifier
        self.users = users
        self._principals: OrderedDict[str, Principal] = OrderedDict()
        self._lock = threading.Lock()

    def identity(self, authorization: str | None) -> Identity:
        return self.verifier.verify(bearer_token(authorization))

    def principal(self, authorization: str | None) -> Principal:
        return self.principal_of(self.identity(authorization))

    def principal_of(self, identity: Identity) -> Principal:
        key = identity_key(identity)
        with self._lock:
            cached = self._principals.get(key)
        if cached is not None:
            return cached
        access = self.users.access_for(key)
        if access is None:
            raise NotRegistered()
        principal = Principal(*access)
        with self._lock:
            self._principals[key] = principal
            if len(self._principals) > self.CACHE_SIZE:
                self._principals.popitem(last=False)
        return principal

    def optional_principal(self, authorization: str | None) -> Principal | None:
        """For public routes: no token is anonymous; a bad token is still refused."""
        if not authorization:
            return None
        try:
            return self.principal(authorization)
        except NotRegistered:
            return None
