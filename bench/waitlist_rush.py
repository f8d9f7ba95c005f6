"""The waitlist of `make bench`: ENTRIES buyers wait for a sold-out event, then as many tickets come
free (their holders cancel, CLIENTS at a time), and the line is served.

Set-up (not timed): an event of ENTRIES tickets, each held by one buyer; ENTRIES other buyers join
its waitlist, in order. Measured: for the k-th ticket freed, the time until the k-th entry in line
is offered it (the line is first come, first served, so the k-th release serves the k-th entry):
p50 / p95 / max, the offers made, and that no entry was offered out of order.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

ENTRIES = 500
CLIENTS = 20
OFFER_SECONDS = 3600  # the stack's WAITLIST_OFFER_SECONDS (the default)


async def _call(session: aiohttp.ClientSession, method: str, url: str, token: str, **kw: Any) -> tuple[int, Any]:
    async with session.request(method, url, headers={"Authorization": f"Bearer {token}"}, **kw) as response:
        raw = await response.read()
        return response.status, (await response.json(content_type=None)) if raw else None


async def _each(items: list[Any], clients: int, work: Any) -> list[Any]:
    queue: asyncio.Queue[tuple[int, Any]] = asyncio.Queue()
    for pair in enumerate(items):
        queue.put_nowait(pair)
    results: list[Any] = [None] * len(items)

    async def worker() -> None:
        while not queue.empty():
            i, item = queue.get_nowait()
            results[i] = await work(item)

    await asyncio.gather(*(worker() for _ in range(clients)))
    return results


async def _entries(session: aiohttp.ClientSession, base: str, admin: str, event_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        params = {"limit": "100", **({"page_token": token} if token else {})}
        status, page = await _call(session, "GET", f"{base}/v1/events/{event_id}/waitlist", admin, params=params)
        if status != 200:
            raise RuntimeError(f"waitlist list answered {status}: {page}")
        found += page["items"]
        token = page["next_page_token"]
        if not token:
            return found


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] if ordered else float("nan")


async def waitlist_rush(
    base: str, admin: str, holders: list[str], waiters: list[str], create_event: Any, progress: Any
) -> dict[str, Any]:
    entries = min(len(holders), len(waiters), ENTRIES)
    event_id = await create_event(base, admin, entries, "Bench waitlist")
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CLIENTS), timeout=timeout) as session:

        async def hold(token: str) -> str:
            status, body = await _call(
                session, "POST", f"{base}/v1/events/{event_id}/bookings", token, json={"quantity": 1}
            )
            if status != 201:
                raise RuntimeError(f"waitlist set-up: hold answered {status} {body}")
            return str(body["id"])

        bookings = await _each(holders[:entries], CLIENTS, hold)
        for waiter in waiters[:entries]:  # one at a time: the line's order is the order of joining
            status, body = await _call(
                session, "POST", f"{base}/v1/events/{event_id}/waitlist", waiter, json={"quantity": 1}
            )
            if status != 201:
                raise RuntimeError(f"waitlist set-up: join answered {status} {body}")
        progress("waitlist joined", entries, entries)

        released: list[float] = []

        async def cancel(pair: tuple[str, str]) -> None:
            status, body = await _call(session, "POST", f"{base}/v1/bookings/{pair[1]}/cancel", pair[0])
            if status != 200:
                raise RuntimeError(f"cancel answered {status} {body}")
            released.append(time.time())
            progress("tickets freed", len(released), entries)

        started = time.monotonic()
        await _each(list(zip(holders[:entries], bookings, strict=True)), CLIENTS, cancel)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = await _entries(session, base, admin, event_id)
            served = [e for e in line if e["status"] == "offered"]
            progress("offers made", len(served), entries)
            if len(served) == entries:
                break
            await asyncio.sleep(0.5)
        took = time.monotonic() - started
    offered_at = [
        datetime.fromisoformat(e["offer_expires_at"].replace("Z", "+00:00")) - timedelta(seconds=OFFER_SECONDS)
        for e in line
        if e["offer_expires_at"]
    ]
    in_order = offered_at == sorted(offered_at)
    lags = [
        (at - datetime.fromtimestamp(freed, UTC)).total_seconds()
        for at, freed in zip(offered_at, sorted(released), strict=False)
    ]
    return {
        "event_id": event_id,
        "entries": entries,
        "offers": len(offered_at),
        "served_in_order": in_order,
        "all_served_within_s": round(took, 2),
        "release_to_offer_s": {"p50": _pct(lags, 50), "p95": _pct(lags, 95), "max": max(lags, default=float("nan"))},
    }
