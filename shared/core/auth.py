"""Bearer-token verification: RS256 JWTs checked against the issuer's JWKS with pyjwt.

The same code verifies Firebase Auth, any OIDC issuer (Keycloak) and the local development
issuer: only the issuer, audience and JWKS address differ. `alg` is pinned to RS256, so unsigned
(`alg: none`) and HMAC tokens are refused whatever their header says.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict

import jwt

from shared.core.errors import Unauthenticated, Unavailable
from shared.core.identity import Identity, bearer_token

__all__ = ["ALGORITHMS", "Identity", "TokenVerifier", "bearer_token"]
ALGORITHMS = ["RS256"]
VERIFIED_CACHE_SIZE = 20_000


class TokenVerifier:
    def __init__(
        self, issuer: str, audience: str, jwks_url: str, leeway_seconds: int = 30, refetch_cooldown: float = 5.0
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.leeway = min(max(leeway_seconds, 0), 60)
        # JWKS cached for 5 minutes; an unknown `kid` forces a refetch (key rotation), at most once per
        # `refetch_cooldown` seconds so that tokens with made-up kids cannot hammer the issuer.
        self._jwks = jwt.PyJWKClient(
            jwks_url, cache_jwk_set=True, lifespan=300, timeout=5, cooldown_duration=refetch_cooldown
        )
        # A token is sent with every request of a session: verified once, it is remembered (by its
        # hash) until it expires, which saves the signature check and the parsing on the hot path.
        self._verified: OrderedDict[bytes, tuple[float, Identity]] = OrderedDict()
        self._lock = threading.Lock()

    def verify(self, token: str) -> Identity:
        digest = hashlib.sha256(token.encode()).digest()
        with self._lock:
            known = self._verified.get(digest)
        if known is not None and time.time() < known[0]:
            return known[1]
        identity = self._verify(token)
        with self._lock:
            self._verified[digest] = (float(identity.claims["exp"]) + self.leeway, identity)
            if len(self._verified) > VERIFIED_CACHE_SIZE:
                self._verified.popitem(last=False)
        return identity

    def _verify(self, token: str) -> Identity:
        try:
            key = self._jwks.get_signing_key_from_jwt(token)
        except (jwt.PyJWKClientConnectionError, jwt.PyJWKSetError, json.JSONDecodeError) as exc:
            raise Unavailable("identity provider keys could not be fetched or read") from exc
        except (jwt.PyJWKClientError, jwt.DecodeError) as exc:
            raise Unauthenticated("token signing key not recognised") from exc
        try:
            claims = jwt.decode(
                token,
                key=key.key,
                algorithms=ALGORITHMS,
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthenticated("token expired") from exc
        except jwt.InvalidAudienceError as exc:
            raise Unauthenticated("token audience not accepted") from exc
        except jwt.InvalidIssuerError as exc:
            raise Unauthenticated("token issuer not accepted") from exc
        except jwt.PyJWTError as exc:
            raise Unauthenticated("token not valid") from exc
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise Unauthenticated("token has no subject")
        return Identity(
            issuer=self.issuer,
            subject=subject,
            email=claims.get("email"),
            name=claims.get("name"),
            claims=claims,
        )
