"""The door rush of `make bench`: TICKETS tickets scanned once each by GATES concurrent check-in
devices through the gateway, with 5 % duplicate scans and 1 % forged codes mixed in; then one
offline batch of BATCH scans of other tickets.

Set-up (not timed): buyers book 10 tickets each and pay; every booking confirmed issues its
tickets; the admin adds GATES check-in devices. Measured: scans/s and latency over the whole
rush, double admissions (a ticket answered 200 twice: must be 0), forged codes admitted (must be
0), and the time the batch takes to answer.
"""

from __future__ import annotations

import asyncio
import base64
import random
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from typing import Any

import aiohttp

PER_BOOKING = 10


async def _call(session: aiohttp.ClientSession, method: str, url: str, token: str, **kw: Any) -> tuple[int, Any]:
    async with session.request(method, url, headers={"Authorization": f"Bearer {token}"}, **kw) as response:
        body = await response.read()
        try:
            return response.status, await response.json(content_type=None) if body else None
        except ValueError:
            return response.status, None


def _forged(code: str) -> str:
    payload, signature = code.split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[0] ^= 0x01
    return f"{payload}.{base64.urlsafe_b64encode(bytes(raw)).decode().rstrip('=')}"


async def _confirmed_tickets(
    session: aiohttp.ClientSession, base: str, admin: str, event_id: str, tokens: list[str], progress: Any
) -> list[dict[str, Any]]:
    """Each buyer books PER_BOOKING tickets and pays; the tickets of every confirmed booking."""
    booking_ids: list[str] = []
    queue: asyncio.Queue[str] = asyncio.Queue()
    for token in tokens:
        queue.put_nowait(token)

    async def buyer() -> None:
        while not queue.empty():
            token = queue.get_nowait()
            status, booking = await _call(
                session, "POST", f"{base}/v1/events/{event_id}/bookings", token, json={"quantity": PER_BOOKING}
            )
            if status != 201:
                raise RuntimeError(f"door set-up: booking answered {status} {booking}")
            pay = {"payment_method": "pm_card_visa"}
            status, body = await _call(session, "POST", f"{base}/v1/bookings/{booking['id']}/payments", token, json=pay)
            if status != 201:
                raise RuntimeError(f"door set-up: payment answered {status} {body}")
            booking_ids.append(booking["id"])
            progress("door set-up: bookings paid", len(booking_ids), len(tokens))

    await asyncio.gather(*(buyer() for _ in range(10)))
    tickets: list[dict[str, Any]] = []
    for n, booking_id in enumerate(booking_ids, 1):
        for _ in range(300):
            _, body = await _call(session, "GET", f"{base}/v1/bookings/{booking_id}/tickets", admin)
            if body and len(body.get("items", [])) == PER_BOOKING:
                tickets += body["items"]
                break
            await asyncio.sleep(0.05)
        else:
            raise RuntimeError(f"door set-up: booking {booking_id} was not confirmed in 15 s")
        progress("door set-up: tickets read", n, len(booking_ids))
    return tickets


async def door_rush(
    base: str, admin: str, tokens: list[str], create_event: Any, progress: Any, gates: int = 20, batch: int = 500
) -> dict[str, Any]:
    """`tokens`: buyers, PER_BOOKING tickets each; the last batch // PER_BOOKING are kept for the batch."""
    event_id = await create_event(base, admin, len(tokens) * PER_BOOKING, "Bench door")
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=gates + 10), timeout=timeout) as session:
        tickets = await _confirmed_tickets(session, base, admin, event_id, tokens, progress)
        offline, online = tickets[:batch], tickets[batch:]
        devices = []
        for g in range(gates):
            status, body = await _call(
                session, "POST", f"{base}/v1/events/{event_id}/checkin-devices", admin, json={"name": f"Gate {g + 1}"}
            )
            if status != 201:
                raise RuntimeError(f"door set-up: device answered {status} {body}")
            devices.append(body["token"])

        rng = random.Random(7)
        scans: list[tuple[str, str | None]] = [(t["code"], t["id"]) for t in online]
        scans += [(t["code"], t["id"]) for t in rng.sample(online, len(online) * 5 // 100)]  # duplicates
        scans += [(_forged(t["code"]), None) for t in rng.sample(online, len(online) // 100)]  # forged
        rng.shuffle(scans)
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(len(scans)):
            queue.put_nowait(i)
        answers: list[tuple[float, int, str | None, str | None]] = []  # (ms, status, code, ticket id)

        async def gate(token: str) -> None:
            while not queue.empty():
                code, ticket_id = scans[queue.get_nowait()]
                started = time.monotonic()
                status, body = await _call(
                    session, "POST", f"{base}/v1/events/{event_id}/checkins", token, json={"code": code}
                )
                problem = body.get("code") if isinstance(body, dict) and status != 200 else None
                answers.append(((time.monotonic() - started) * 1000, status, problem, ticket_id))
                progress("door rush", len(answers), len(scans))

        started = time.monotonic()
        await asyncio.gather(*(gate(t) for t in devices))
        elapsed = time.monotonic() - started

        now = datetime.now(UTC).isoformat()
        payload = {"scans": [{"scan_id": f"s{i}", "code": t["code"], "scanned_at": now} for i, t in enumerate(offline)]}
        batch_started = time.monotonic()
        status, body = await _call(
            session, "POST", f"{base}/v1/events/{event_id}/checkins/batch", devices[0], json=payload
        )
        batch_s = time.monotonic() - batch_started
    admitted: defaultdict[str, int] = defaultdict(int)
    for _, status_code, _, ticket_id in answers:
        if status_code == 200 and ticket_id:
            admitted[ticket_id] += 1
    outcomes = Counter(f"{s} {c}" if c else str(s) for _, s, c, _ in answers)
    latencies = sorted(ms for ms, *_ in answers)
    batch_results = Counter(r["result"] for r in (body or {}).get("results", [])) if status == 200 else {}
    return {
        "event_id": event_id,
        "gates": gates,
        "tickets": len(online),
        "scans": len(scans),
        "scans_per_second": len(scans) / elapsed if elapsed else 0.0,
        "latency_ms": {
            "p50": _pct(latencies, 50),
            "p95": _pct(latencies, 95),
            "p99": _pct(latencies, 99),
        },
        "outcomes": dict(outcomes),
        "double_admissions": sum(1 for n in admitted.values() if n > 1),
        "admitted": len(admitted),
        "forged_admitted": sum(1 for _, s, _, t in answers if s == 200 and t is None),
        "batch": {"scans": len(offline), "status": status, "seconds": batch_s, "results": dict(batch_results)},
    }


def _pct(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def main() -> int:
    """`python -m bench.door_rush`: the door rush alone, on its own stack (what `make bench` runs last)."""
    import json

    from bench.flash_sale import _admin, create_event, progress, register_many
    from dev.stack import Stack

    with Stack.for_tests() as stack:
        admin = asyncio.run(_admin(stack.url))
        tokens = asyncio.run(register_many(stack.url, "door", 2500 // PER_BOOKING, 20))
        result = asyncio.run(door_rush(stack.url, admin, tokens, create_event, progress))
    print()
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
