"""Standard Webhooks signatures, and the endpoints' signing secrets sealed at rest.

A secret is `whsec_` + base64 of 24 random bytes. A message is signed `v1,<base64 HMAC-SHA256 of
"{id}.{timestamp}.{body}" keyed with the secret's decoded bytes>` (the specification's scheme; the
e2e tests verify it with the `standardwebhooks` library, independently of this code). The secret
must be readable to sign, so it is stored sealed with AES-GCM under WEBHOOK_SECRET_KEY (from
Secret Manager), and shown to the admin only in the answer that creates the endpoint.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "whsec_"


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def sign(secret: str, message_id: str, timestamp: int, body: str) -> str:
    key = base64.b64decode(secret.removeprefix(PREFIX))
    digest = hmac.new(key, f"{message_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


class SecretBox:
    """Seals and opens signing secrets with a 256-bit key (base64)."""

    def __init__(self, key: str) -> None:
        raw = base64.b64decode(key)
        if len(raw) != 32:
            raise ValueError("WEBHOOK_SECRET_KEY must be 32 bytes, base64-encoded")
        self._aead = AESGCM(raw)

    def seal(self, secret: str, endpoint_id: str) -> str:
        nonce = secrets.token_bytes(12)
        sealed = self._aead.encrypt(nonce, secret.encode(), endpoint_id.encode())
        return base64.b64encode(nonce + sealed).decode()

    def open(self, sealed: str, endpoint_id: str) -> str:
        raw = base64.b64decode(sealed)
        return self._aead.decrypt(raw[:12], raw[12:], endpoint_id.encode()).decode()
