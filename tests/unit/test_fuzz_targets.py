"""The fuzz targets run (`make fuzz` runs them for long): each one-input function on a few seeds."""

from __future__ import annotations

import json

import pytest

from fuzz import fuzz_bodies, fuzz_webhook

EVENT = json.dumps({"id": "pi_1", "object": "payment_intent", "status": "succeeded", "amount": 5, "currency": "eur"})
WEBHOOK_SEEDS = [
    b"",
    b"\x00t=1,v1=00\n{}",
    b"\x01" + b"not json",
    b"\x01" + b'{"id": "evt_1", "type": "payment_intent.succeeded", "data": {"object": {}}}',
    b"\x02" + EVENT.encode(),
    b"\x02" + b'{"object": "payment_intent"}',
    b"\x01\xff\xfe",
]
BODY_SEEDS = [
    b"",
    b"\x00{}",
    b"\x02" + json.dumps({"name": "x", "capacity": 5.0}).encode() + b"\n#?limit=5&limit=6",
    b"\x04" + b'{"quantity": 2}' + b"\n#?lat=1&lng=2&radius_km=3",
    b"\x05   \n#?from=2030-01-01&to=2029-01-01",
    b"\x03" + b'{"version": 1}',
    b"\x01[[[[]]]]\n#?page_token=%ff%fe",
    b"\x06" + b"\xff" * 10,
]


@pytest.mark.parametrize("seed", WEBHOOK_SEEDS)
def test_the_webhook_target_refuses_with_bad_signature_only(seed: bytes) -> None:
    fuzz_webhook.one_input(seed)


@pytest.mark.parametrize("seed", BODY_SEEDS)
def test_the_body_target_refuses_with_app_errors_only(seed: bytes) -> None:
    fuzz_bodies.one_input(seed)
