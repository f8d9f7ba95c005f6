"""The webhook fan-out of `make bench`: EVENTS committed domain events of one company delivered to
five local endpoints, each a receiver on 127.0.0.1.

- `all` (every type), `created` (event.created only) and `updated` (event.updated only): healthy;
- `slow`: every type, answers after SLOW_S;
- `flaky`: every type, answers 503 for its first FLAKY_S seconds, then 200 (its failed deliveries
  come again on the Standard Webhooks schedule, 5 s after the first attempt, by then accepted; a
  longer outage would push the third attempt 5 minutes out, past the bench's deadline).

The workload (not what is measured): CREATED events created, and each changed UPDATES times, by
CLIENTS admins' requests at once, paced at RATE changes per second (a busy box office's stream of
confirmations, refunds and check-ins): CREATED * (1 + UPDATES) domain events. Measured: the lag
from each domain event's commit (its `created_at`) to its arrival, p50/p95 per kind of endpoint;
deliveries per second; and, per endpoint, what never arrived, what arrived that it did not subscribe
to, and repeats (delivery is at least once).
"""

from __future__ import annotations

import asyncio
import time
from contextlib import ExitStack
from datetime import datetime
from typing import Any

import aiohttp

from dev.webhook_receiver import Received, Receiver, running

CREATED = 200
UPDATES = 4
CLIENTS = 20
RATE = 10.0  # domain events committed per second (what the local Pub/Sub emulator's push, at most 2
# messages at once, serves with room on 2 cores; a deployed push subscription scales out instead)
PROBE_S = 180.0  # at most this long for the probe: what earlier parts left in the relay goes first
SLOW_S = 0.2
FLAKY_S = 4.0
DEADLINE_S = 180.0
SUBSCRIPTIONS = {
    "all": ["*"],
    "created": ["event.created"],
    "updated": ["event.updated"],
    "slow": ["*"],
    "flaky": ["*"],
}
HEALTHY = ("all", "created", "updated")


class FlakyReceiver(Receiver):
    """503 until `until` (a time.time()), then 200."""

    until: float = 0.0

    def next_status(self) -> int:
        return 503 if time.time() < self.until else 200


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))], 3) if ordered else float("nan")


async def _call(session: aiohttp.ClientSession, method: str, url: str, token: str, **kw: Any) -> tuple[int, Any, Any]:
    async with session.request(
        method, url, headers={"Authorization": f"Bearer {token}", **kw.pop("headers", {})}, **kw
    ) as r:
        return r.status, await r.json(content_type=None), r.headers


class Pacer:
    """Lets one change start every 1/RATE seconds."""

    def __init__(self, rate: float) -> None:
        self.gap = 1.0 / rate
        self.next = time.monotonic()
        self.lock = asyncio.Lock()

    async def wait(self) -> None:
        async with self.lock:
            delay = self.next - time.monotonic()
            self.next = max(self.next, time.monotonic()) + self.gap
        if delay > 0:
            await asyncio.sleep(delay)


async def _produce(base: str, admin: str, event_body: dict[str, Any], progress: Any) -> list[str]:
    """Create CREATED events and change each UPDATES times; the ids of the events."""
    made: list[str] = []
    pacer = Pacer(RATE)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CLIENTS)) as session:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(CREATED):
            queue.put_nowait(i)

        async def worker() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                await pacer.wait()
                status, body, headers = await _call(
                    session, "POST", f"{base}/v1/events", admin, json={**event_body, "name": f"Fan-out {i}"}
                )
                if status != 201:
                    raise RuntimeError(f"event create answered {status}: {body}")
                made.append(body["id"])
                etag = headers["ETag"]
                for n in range(UPDATES):
                    await pacer.wait()
                    status, body, headers = await _call(
                        session,
                        "PATCH",
                        f"{base}/v1/events/{body['id']}",
                        admin,
                        json={"name": f"Fan-out {i}.{n + 1}"},
                        headers={"If-Match": etag},
                    )
                    if status != 200:
                        raise RuntimeError(f"event update answered {status}: {body}")
                    etag = headers["ETag"]
                progress("webhook workload: events", len(made), CREATED)

        await asyncio.gather(*(worker() for _ in range(CLIENTS)))
    return made


async def _register(base: str, admin: str, receivers: dict[str, Receiver]) -> None:
    async with aiohttp.ClientSession() as session:
        for name, receiver in receivers.items():
            body = {"url": receiver.url, "events": SUBSCRIPTIONS[name], "description": f"bench {name}"}
            status, answer, _ = await _call(session, "POST", f"{base}/v1/webhook-endpoints", admin, json=body)
            if status != 201:
                raise RuntimeError(f"endpoint registration answered {status}: {answer}")


def webhook_fanout(base: str, admin: str, event_body: dict[str, Any], progress: Any) -> dict[str, Any]:
    """Run the fan-out against a stack whose company `admin` has no endpoints yet."""
    receivers: dict[str, Receiver] = {
        "all": Receiver(),
        "created": Receiver(),
        "updated": Receiver(),
        "slow": Receiver(delay=SLOW_S),
        "flaky": FlakyReceiver(),
    }
    with ExitStack() as running_receivers:
        for receiver in receivers.values():
            running_receivers.enter_context(running(receiver))
        asyncio.run(_register(base, admin, receivers))
        _wait_for_quiet(base, admin, event_body, receivers["all"], progress)
        started = time.time()
        receivers["flaky"].until = started + FLAKY_S  # type: ignore[attr-defined]
        events = asyncio.run(_produce(base, admin, event_body, progress))
        produced = time.time()
        ours = set(events)
        expected = {
            "all": CREATED * (1 + UPDATES),
            "created": CREATED,
            "updated": CREATED * UPDATES,
            "slow": CREATED * (1 + UPDATES),
            "flaky": CREATED * (1 + UPDATES),
        }
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            done = sum(min(len(_unique(r, ours)), expected[n]) for n, r in receivers.items())
            progress("webhook deliveries", done, sum(expected.values()))
            if all(len(_unique(r, ours)) >= expected[n] for n, r in receivers.items()):
                break
            time.sleep(0.5)
        finished = time.time()
    per_endpoint = {name: _judge(name, receivers[name], expected[name], ours) for name in receivers}
    healthy_lags = [lag for name in HEALTHY for lag in per_endpoint[name].pop("lags")]
    slow_lags = per_endpoint["slow"].pop("lags")
    flaky_lags = per_endpoint["flaky"].pop("lags")
    delivered = sum(p["delivered"] for p in per_endpoint.values())
    last = max((r.at for rec in receivers.values() for r in _ours(rec, ours)), default=finished)
    return {
        "events": len(events),
        "domain_events": len(events) * (1 + UPDATES),
        "workload_s": round(produced - started, 2),
        "rate_per_s": RATE,
        "deliveries": delivered,
        "deliveries_per_second": round(delivered / max(last - started, 1e-9), 1),
        "lag_s": {
            "healthy": {"p50": _pct(healthy_lags, 50), "p95": _pct(healthy_lags, 95), "max": _pct(healthy_lags, 100)},
            "slow": {"p50": _pct(slow_lags, 50), "p95": _pct(slow_lags, 95)},
            "flaky": {"p50": _pct(flaky_lags, 50), "p95": _pct(flaky_lags, 95)},
        },
        "lost": sum(p["lost"] for p in per_endpoint.values()),
        "unsubscribed_deliveries": sum(p["unsubscribed"] for p in per_endpoint.values()),
        "repeats": sum(p["repeats"] for p in per_endpoint.values()),
        "endpoints": per_endpoint,
    }


def _wait_for_quiet(base: str, admin: str, event_body: dict[str, Any], receiver: Receiver, progress: Any) -> None:
    """Create one probe event and wait until it is delivered: the stream's relay pushes roughly in
    order, so what earlier parts of the bench left in it (thousands of refunds, cancels and offers)
    has been fanned out by then, and the workload's lag is its own."""

    async def probe() -> str:
        async with aiohttp.ClientSession() as session:
            status, body, _ = await _call(
                session, "POST", f"{base}/v1/events", admin, json={**event_body, "name": "Fan-out probe"}
            )
        if status != 201:
            raise RuntimeError(f"probe event answered {status}: {body}")
        return str(body["id"])

    probe_id = asyncio.run(probe())
    deadline = time.monotonic() + PROBE_S
    while time.monotonic() < deadline:
        with receiver.lock:
            if any(r.payload.get("data", {}).get("id") == probe_id for r in receiver.received):
                progress("webhook probe delivered", 1, 1)
                return
        time.sleep(0.2)
    raise RuntimeError("the probe webhook was not delivered: the fan-out is stuck")


def _ours(receiver: Receiver, events: set[str]) -> list[Received]:
    """What the receiver got about the workload's events (not the probe)."""
    with receiver.lock:
        return [r for r in receiver.received if r.payload.get("data", {}).get("id") in events]


def _unique(receiver: Receiver, events: set[str]) -> set[str]:
    """The webhook ids the receiver accepted (answered 2xx)."""
    return {r.headers.get("webhook-id", "") for r in _ours(receiver, events) if 200 <= r.status < 300}


def _judge(name: str, receiver: Receiver, expected: int, events: set[str]) -> dict[str, Any]:
    wanted = SUBSCRIPTIONS[name]
    first: dict[str, float] = {}
    unsubscribed = 0
    received = _ours(receiver, events)
    accepted = [r for r in received if 200 <= r.status < 300]
    for r in received:
        if "*" not in wanted and r.payload["type"] not in wanted:
            unsubscribed += 1
    for r in accepted:
        committed = datetime.fromisoformat(r.payload["created_at"]).timestamp()
        first.setdefault(r.headers["webhook-id"], r.at - committed)
    ok_ids = set(first)
    return {
        "subscribed": wanted,
        "expected": expected,
        "delivered": len(ok_ids),
        "lost": max(expected - len(ok_ids), 0),
        "unsubscribed": unsubscribed,
        "repeats": len(accepted) - len(first),  # accepted again: delivery is at least once
        "refused_attempts": len(received) - len(accepted),  # answered non-2xx (the flaky one), then retried
        "lags": [first[i] for i in ok_ids],
    }
