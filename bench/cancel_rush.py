"""The cancellation of `make bench`: an event with BOOKINGS confirmed bookings is cancelled, and its
fan-out refunds every one of them in the background (Cloud Tasks, batches of 50, paced at 25
refunds/s per run: docs/cancelling-events.md).

Set-up (not timed): buyers book one ticket each and pay with pm_card_visa; every booking is
confirmed. Measured: how long the 202 took; the time from the 202 until `GET /v1/events/{id}` says
every booking is refunded (`cancellation.refunds_done`); refunds per second; and, read from
localstripe, that each payment has exactly one refund (refunded twice: must be 0; none: must be 0).

    .venv/bin/python -m bench.cancel_rush [--bookings 500]   # on a stack of its own
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from typing import Any

import aiohttp

BOOKINGS = 500
SETTLE_LIMIT_S = 600.0


async def _call(session: aiohttp.ClientSession, method: str, url: str, token: str, **kw: Any) -> tuple[int, Any, Any]:
    headers = {"Authorization": f"Bearer {token}", **kw.pop("headers", {})}
    async with session.request(method, url, headers=headers, **kw) as response:
        raw = await response.read()
        try:
            return response.status, json.loads(raw) if raw else None, response.headers
        except ValueError:
            return response.status, None, response.headers


async def _confirmed(
    session: aiohttp.ClientSession, base: str, event_id: str, tokens: list[str], progress: Any
) -> dict[str, str]:
    """Each buyer books one ticket and pays; booking id -> its intent, once every one is confirmed."""
    intents: dict[str, str] = {}
    owners: dict[str, str] = {}
    queue: asyncio.Queue[str] = asyncio.Queue()
    for token in tokens:
        queue.put_nowait(token)

    async def buyer() -> None:
        while not queue.empty():
            token = queue.get_nowait()
            status, booking, _ = await _call(
                session, "POST", f"{base}/v1/events/{event_id}/bookings", token, json={"quantity": 1}
            )
            if status != 201:
                raise RuntimeError(f"cancel set-up: booking answered {status} {booking}")
            pay = {"payment_method": "pm_card_visa"}
            url = f"{base}/v1/bookings/{booking['id']}/payments"
            status, payment, _ = await _call(session, "POST", url, token, json=pay)
            if status != 201:
                raise RuntimeError(f"cancel set-up: payment answered {status} {payment}")
            intents[booking["id"]], owners[booking["id"]] = payment["transaction_id"], token
            progress("cancel set-up: bookings paid", len(intents), len(tokens))

    await asyncio.gather(*(buyer() for _ in range(10)))
    for n, (booking_id, token) in enumerate(sorted(owners.items()), 1):
        for _ in range(600):
            _, body, _ = await _call(session, "GET", f"{base}/v1/bookings/{booking_id}", token)
            if body and body.get("status") == "confirmed":
                break
            await asyncio.sleep(0.05)
        else:
            raise RuntimeError(f"cancel set-up: booking {booking_id} was not confirmed in 30 s")
        progress("cancel set-up: bookings confirmed", n, len(owners))
    return intents


def _refunds_per_intent(stripe_base: str, intents: set[str]) -> Counter[str]:
    import stripe

    client = stripe.StripeClient("sk_test_local", base_addresses={"api": stripe_base})
    counts: Counter[str] = Counter()
    for refund in client.v1.refunds.list(params={"limit": 100}).auto_paging_iter():
        intent = refund.to_dict().get("payment_intent")
        if intent in intents:
            counts[str(intent)] += 1
    return counts


async def cancel_rush(
    base: str, admin: str, tokens: list[str], create_event: Any, progress: Any, stripe_base: str
) -> dict[str, Any]:
    """`tokens`: one buyer per booking. Returns the figures of one cancellation."""
    event_id = await create_event(base, admin, len(tokens), "Bench cancel")
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=20), timeout=timeout) as session:
        intents = await _confirmed(session, base, event_id, tokens, progress)
        _, _, headers = await _call(session, "GET", f"{base}/v1/events/{event_id}", admin)
        asked = time.monotonic()
        status, event, _ = await _call(
            session,
            "POST",
            f"{base}/v1/events/{event_id}/cancel",
            admin,
            json={"reason": "bench"},
            headers={"If-Match": headers["ETag"]},
        )
        answered = time.monotonic()
        if status != 202:
            raise RuntimeError(f"cancel answered {status} {event}")
        first = event["cancellation"]
        progress_seen = first
        while time.monotonic() - answered < SETTLE_LIMIT_S:
            _, body, _ = await _call(session, "GET", f"{base}/v1/events/{event_id}", admin)
            progress_seen = body["cancellation"]
            progress("cancel: refunds done", min(progress_seen["refunds_done"], len(intents)), len(intents))
            if progress_seen["refunds_pending"] == 0:
                break
            await asyncio.sleep(0.25)
        settled = time.monotonic() - answered
    counts = _refunds_per_intent(stripe_base, set(intents.values()))
    done = int(progress_seen["refunds_done"])
    return {
        "event_id": event_id,
        "bookings": len(intents),
        "answer_ms": round((answered - asked) * 1000, 1),
        "first_answer": first,
        "first_answer_adds_up": first["refunds_pending"] + first["refunds_done"] + first["refunds_failed"]
        == len(intents),
        "all_refunded_s": round(settled, 2),
        "refunds_per_second": round(done / settled, 1) if settled > 0 else 0.0,
        "final": progress_seen,
        "refunded_twice": sum(1 for n in counts.values() if n > 1),
        "without_refund": sum(1 for i in intents.values() if counts[i] == 0),
    }


def main() -> int:
    from bench.flash_sale import _admin, create_event, invariants_check, progress, register_many
    from dev.stack import Stack

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bookings", type=int, default=BOOKINGS)
    args = parser.parse_args()
    with Stack.for_tests() as stack:
        admin = asyncio.run(_admin(stack.url))
        tokens = asyncio.run(register_many(stack.url, "canceller", args.bookings, 20))
        stripe_base = f"http://{stack.host('stripe')}"
        report = asyncio.run(cancel_rush(stack.url, admin, tokens, create_event, progress, stripe_base))
        report["invariants"] = invariants_check(stack, [report["event_id"]])
    print(json.dumps(report, indent=2))
    return 0 if report["refunded_twice"] == 0 and report["without_refund"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
