"""Fuzz target: the Stripe webhook parser (StripeGateway.parse_webhook).

Anything may arrive at /v1/webhooks/stripe; the parser may refuse it with BadSignature (a 400) and
nothing else, whether the signature is garbage or valid over a body that is not a Stripe event.
The first byte picks the case: an arbitrary Stripe-Signature header with an arbitrary body; a body
correctly signed with the test secret (so the parsing past the signature runs); or a correctly
signed event whose data.object is the fuzzer's JSON (so the intent reading runs).

    .venv/bin/python -m fuzz.fuzz_webhook -runs=20000        # or -max_total_time=60
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

from fuzz._driver import main

SECRET = "whsec_fuzz_test_secret"  # noqa: S105  (a test secret, signs fuzz input only)
_gateway: Any = None


def _load() -> None:
    global _gateway
    from shared.payments import gateway  # noqa: F401  (loaded before atheris instruments)
    from shared.payments.stripe_gateway import StripeGateway

    _gateway = StripeGateway("sk_test_fuzz", SECRET)


def sign(body: bytes, timestamp: int | None = None) -> str:
    at = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(SECRET.encode(), f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={at},v1={mac}"


def _event_around(data: bytes) -> bytes:
    try:
        obj: Any = json.loads(data)
    except (ValueError, RecursionError):
        obj = {"object": "payment_intent", "id": data.decode("latin-1")}
    kind = ["payment_intent.succeeded", "payment_intent.payment_failed", "charge.refunded"][len(data) % 3]
    return json.dumps({"id": "evt_fuzz", "object": "event", "type": kind, "data": {"object": obj}}).encode()


def one_input(data: bytes) -> None:
    from shared.payments.gateway import BadSignature

    if _gateway is None:
        _load()
    case, rest = (data[0] % 3, data[1:]) if data else (0, b"")
    if case == 0:
        header, _, body = rest.partition(b"\n")
        signature: str | None = header.decode("latin-1") or None
    elif case == 1:
        body, signature = rest, sign(rest)
    else:
        body = _event_around(rest)
        signature = sign(body)
    try:
        event = _gateway.parse_webhook(body, signature)
    except BadSignature:
        return
    assert isinstance(event.id, str)


if __name__ == "__main__":
    main(one_input, _load, everything=True)
