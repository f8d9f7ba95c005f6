"""Ticket codes: `<payload>.<signature>`, verifiable offline with the keys of GET /v1/ticket-keys.

`payload` is base64url (no padding) of compact UTF-8 JSON `{"kid", "tid", "eid", "n"}`;
`signature` is base64url of the Ed25519 signature over the ASCII bytes of `payload`. Ed25519
(the `cryptography` package): 64-byte signatures keep the QR code small, verification needs only
the 32-byte public key, and there is no parameter a scanner can get wrong.

Keys come from one setting (`TICKET_SIGNING_KEYS`, Secret Manager outside local and test):
`kid:seed[,kid:seed...]`, seeds base64url of 32 bytes. The first signs new tickets; the others
only verify, and stay listed while tickets they signed are still valid: rotating is putting a
new key first and dropping an old one once its events are over.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.core.errors import InvalidTicket

if TYPE_CHECKING:  # cryptography is imported when a key is first used: the settings check stays light
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

MAX_CODE_LENGTH = 400  # a payload of four short fields and a 64-byte signature fit in ~230
_KID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_PART = re.compile(r"^[A-Za-z0-9_-]+$")
_ID = re.compile(r"^[A-Za-z0-9_-]{1,80}$")


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unb64(text: str) -> bytes:
    if not _PART.match(text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class CodeClaims:
    """What a verified code says."""

    kid: str
    ticket_id: str
    event_id: str
    number: int


def parse_setting(text: str) -> list[tuple[str, bytes]]:
    """`kid:seed[,kid:seed...]` as (kid, 32-byte seed) pairs; ValueError (naming no secret) on
    anything else. Pure Python: the settings check it at start-up without loading cryptography."""
    keys: list[tuple[str, bytes]] = []
    for part in text.split(","):
        kid, _, seed = part.strip().partition(":")
        try:
            raw = unb64(seed)
        except (ValueError, binascii.Error):
            raw = b""
        if not _KID.match(kid) or len(raw) != 32:
            raise ValueError("TICKET_SIGNING_KEYS is 'kid:seed[,kid:seed...]', seeds base64url of 32 bytes")
        if kid in dict(keys):
            raise ValueError(f"TICKET_SIGNING_KEYS names key {kid!r} twice")
        keys.append((kid, raw))
    return keys


class TicketCodes:
    def __init__(self, keys: list[tuple[str, Ed25519PrivateKey]]) -> None:
        if not keys:
            raise ValueError("at least one ticket signing key")
        self.signing_kid, self._signing = keys[0]
        self._public: dict[str, Ed25519PublicKey] = {kid: key.public_key() for kid, key in keys}

    @classmethod
    def from_setting(cls, text: str) -> TicketCodes:
        """Keys from `TICKET_SIGNING_KEYS` (see parse_setting)."""
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        return cls([(kid, Ed25519PrivateKey.from_private_bytes(raw)) for kid, raw in parse_setting(text)])

    def sign(self, ticket_id: str, event_id: str, number: int) -> str:
        claims = {"kid": self.signing_kid, "tid": ticket_id, "eid": event_id, "n": number}
        payload = b64(json.dumps(claims, separators=(",", ":")).encode())
        return f"{payload}.{b64(self._signing.sign(payload.encode('ascii')))}"

    def verify(self, code: str) -> CodeClaims:
        """The claims of a code this service signed; InvalidTicket for anything else."""
        from cryptography.exceptions import InvalidSignature

        try:
            if len(code) > MAX_CODE_LENGTH:
                raise ValueError("too long")
            payload, signature = code.split(".")
            claims = json.loads(unb64(payload))
            kid = claims["kid"]
            key = self._public.get(kid) if isinstance(kid, str) else None
            if key is None:
                raise ValueError("unknown key")
            key.verify(unb64(signature), payload.encode("ascii"))
            tid, eid, n = claims["tid"], claims["eid"], claims["n"]
            if not (isinstance(tid, str) and _ID.match(tid) and isinstance(eid, str) and _ID.match(eid)):
                raise ValueError("bad ids")
            if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 1000:
                raise ValueError("bad number")
        except (ValueError, KeyError, TypeError, binascii.Error, InvalidSignature, UnicodeError):
            raise InvalidTicket("the code's signature, key or format does not verify") from None
        return CodeClaims(kid, tid, eid, n)

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """Every public key, as a JWKS (RFC 8037 OKP keys)."""
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        return {
            "keys": [
                {
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "kid": kid,
                    "x": b64(key.public_bytes(Encoding.Raw, PublicFormat.Raw)),
                    "use": "sig",
                    "alg": "EdDSA",
                }
                for kid, key in self._public.items()
            ]
        }


def new_key_setting(kid: str | None = None) -> str:
    """A fresh `kid:seed` (what `make dev` generates for a local stack)."""
    return f"{kid or 'k' + secrets.token_hex(4)}:{b64(secrets.token_bytes(32))}"
