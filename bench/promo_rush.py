"""The flash sale with a promo code on every booking (`make bench`, beside the plain rush).

The same buyers rush an event whose code allows `max_uses` = half the tickets: the first half get
the discount, the rest `409 promo_code_exhausted` (nothing booked). Measured: successful holds per
second against the plain rush of the same repetition (the use claim is one more document created
in the hold's commit, and one more read of the code), and the code's uses after the rush, which
must equal `max_uses` and never exceed it; the invariant checker (rule `promo`) runs over it too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

CODE = "RUSH"


async def add_code(base: str, admin: str, event_id: str, max_uses: int, call: Callable[..., Awaitable[Any]]) -> None:
    body = {"code": CODE, "percent_off": 20, "max_uses": max_uses}
    async with aiohttp.ClientSession() as session:
        status, answer = await call(session, "POST", f"{base}/v1/events/{event_id}/promo-codes", admin, json=body)
    if status != 201:
        raise RuntimeError(f"promo code creation answered {status}: {answer}")


async def uses_of(base: str, admin: str, event_id: str, call: Callable[..., Awaitable[Any]]) -> int:
    async with aiohttp.ClientSession() as session:
        status, answer = await call(session, "GET", f"{base}/v1/events/{event_id}/promo-codes", admin)
    if status != 200:
        raise RuntimeError(f"promo code list answered {status}: {answer}")
    return int(next(c["uses"] for c in answer["items"] if c["code"] == CODE))
