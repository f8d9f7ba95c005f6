"""Idempotency keys of hold requests: scoped to the caller, and the fingerprint of what was asked."""

from __future__ import annotations

import hashlib
import json

from shared.services.bookings.ports import HoldRequest


def key_id(user_id: str, key: str) -> str:
    """Keys are scoped to the caller and to booking creation."""
    return hashlib.sha256(f"bookings\n{user_id}\n{key}".encode()).hexdigest()[:40]


def request_hash_of(request: HoldRequest) -> str:
    body: dict[str, object] = {"event_id": request.event_id, "quantity": request.quantity}
    if request.promo_code:
        body["promo_code"] = request.promo_code.upper()
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
