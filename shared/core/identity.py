"""Who the identity provider says the caller is. No JWT library here: importing this stays cheap."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.core.errors import Unauthenticated


@dataclass(frozen=True)
class Identity:
    """Who the identity provider says the caller is (not yet who they are to us)."""

    issuer: str
    subject: str
    email: str | None = None
    name: str | None = None
    claims: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


def bearer_token(authorization: str | None) -> str:
    if not authorization:
        raise Unauthenticated("missing Authorization: Bearer token")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("Authorization must be 'Bearer <token>'")
    return token.strip()
