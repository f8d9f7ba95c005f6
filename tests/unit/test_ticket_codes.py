"""Ticket codes: signed with Ed25519, verified offline with the published keys, nothing else passes."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from shared.core.errors import InvalidTicket
from shared.core.ticket_codes import TicketCodes, new_key_setting

OLD, NEW = new_key_setting("old"), new_key_setting("new")


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_a_code_verifies_with_nothing_but_the_published_key() -> None:
    """What a scanner app does offline: the JWKS's `x`, the code, and an Ed25519 library."""
    codes = TicketCodes.from_setting(NEW)
    code = codes.sign("b1-2", "ev-1", 2)
    payload, signature = code.split(".")
    (key,) = codes.jwks()["keys"]
    assert (key["kty"], key["crv"], key["kid"]) == ("OKP", "Ed25519", "new")
    Ed25519PublicKey.from_public_bytes(unb64(key["x"])).verify(unb64(signature), payload.encode("ascii"))
    assert json.loads(unb64(payload)) == {"kid": "new", "tid": "b1-2", "eid": "ev-1", "n": 2}
    assert "=" not in code


def test_the_first_key_signs_and_every_listed_key_verifies() -> None:
    before = TicketCodes.from_setting(OLD)
    rotated = TicketCodes.from_setting(f"{NEW},{OLD}")
    old_code = before.sign("b1-1", "ev-1", 1)
    assert rotated.verify(old_code).kid == "old"
    assert rotated.verify(rotated.sign("b2-1", "ev-1", 1)).kid == "new"
    assert [k["kid"] for k in rotated.jwks()["keys"]] == ["new", "old"]
    with pytest.raises(InvalidTicket):
        TicketCodes.from_setting(NEW).verify(old_code)  # a key dropped: its tickets no longer verify


def flip_first_byte(text: str) -> str:
    raw = bytearray(unb64(text))
    raw[0] ^= 0x01
    return base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")


def forged(code: str) -> list[str]:
    payload, signature = code.split(".")
    claims = json.loads(unb64(payload))
    other = base64.urlsafe_b64encode(json.dumps({**claims, "tid": "b9-1"}).encode()).decode().rstrip("=")
    return [
        f"{other}.{signature}",  # another ticket, the same signature
        f"{payload}.{flip_first_byte(signature)}",  # a signature changed
        code[: len(code) // 2],  # truncated
        f"{payload}.",
        f"{payload}",
        f"{code}.{signature}",
        code + "A" * 400,  # oversized
        "",
        "not a code",
        "ü.ü",
        TicketCodes.from_setting(new_key_setting("new")).sign("b1-1", "ev-1", 1),  # same kid, other key
    ]


@pytest.mark.parametrize("index", range(11))
def test_anything_but_a_code_we_signed_is_an_invalid_ticket(index: int) -> None:
    codes = TicketCodes.from_setting(NEW)
    bad = forged(codes.sign("b1-1", "ev-1", 1))[index]
    with pytest.raises(InvalidTicket) as refused:
        codes.verify(bad)
    assert (refused.value.status, refused.value.code) == (422, "invalid_ticket")
