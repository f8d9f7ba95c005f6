"""Seeded fault-injected load runs with a history checker (after Jepsen).

Hundreds of concurrent buyers hold (some with a promo code of the event: a quarter off with few
uses, or free with three, which confirms at once), pay (a card that succeeds, one that is
declined), cancel or abandon their bookings on a few small events, while an admin refunds some confirmed bookings
and, after 70 % of the run, cancels one of the events (its bookings are then refunded in the background), for a
bounded time, against a stack started with `FAULT_PLAN=seed=N,rate=R`: commits whose answer is
lost, crashes after a commit, provider answers lost after the provider acted, Pub/Sub messages
delivered two or three times out of order, expiry tasks early, late, twice or never (see
shared/core/faults.py). This driver adds the Stripe side: every webhook localstripe sends is
delivered one or two times more, signed, at random later moments (duplicated and reordered).

Every operation and its outcome is recorded: `ok` (2xx), `failed` (a 4xx answer: it did not happen),
`unknown` (502 or 503, a timeout, a broken connection: it may have happened). A client retries an
unknown outcome with the same Idempotency-Key, as a real app does. Once the system is quiet the
checker judges the whole history: the invariants of dev/invariants.py over the stores, and what
the buyers were told against what is stored (below, `judge`). A 500 is always a violation.

The seed fixes the buyers' programs (what each does, with which card, when) and the sequence of
fault decisions at every fault site; which request meets which decision depends on timing.

    .venv/bin/python -m dev.chaos --seed 7               # one run, its report and history file
    .venv/bin/python -m dev.chaos --seeds 1-20           # make soak
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import random
import re
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from dev import invariants
from dev.stack import Stack

UNKNOWN_STATUSES = {502, 503, 504}
RETRIES = 4  # tries of one operation whose outcome stays unknown
SETTLE_SECONDS = 120.0
STACK_ENV = {
    "HOLD_TTL_SECONDS": "8",
    "WAITLIST_OFFER_SECONDS": "8",
    "PROCESSING_GRACE_SECONDS": "5",
    "OUTBOX_GRACE_SECONDS": "2",
    "SWEEP_INTERVAL_SECONDS": "2",
    "MAX_HOLDS_PER_BUYER_PER_MINUTE": "30",
}
# What each operation may answer (besides 502/503, an unknown outcome). Anything else is a violation.
ALLOWED = {
    "hold": {201, 200, 409, 429},
    "pay": {201, 200, 402, 409},
    "cancel": {200, 409},
    "refund": {200, 409},
    "read": {200},
    "join": {201, 409},
    "leave": {200, 409},
    "cancel_event": {202},  # the organiser's: with the ETag it read, retried unchanged on an unknown outcome
}
EVENT = {
    "event_date": "2030-06-01",
    "event_time": "20:00",
    "timezone": "Europe/Berlin",
    "venue": "Chaos Hall",
    "location_lat": 52.5,
    "location_long": 13.4,
    "base_price": 5000,
    "surge_price": 7500,
    "surge_threshold": 0.8,
    "currency": "EUR",
}


@dataclass
class Op:
    n: int
    actor: str
    kind: str  # hold | pay | cancel | refund | read | join | leave | cancel_event
    started: float
    ended: float = 0.0
    status: int = 0  # 0: no answer (timeout, broken connection)
    code: str | None = None
    outcome: str = "unknown"  # ok | failed | unknown
    booking_id: str | None = None
    payment_id: str | None = None
    key: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class History:
    ops: list[Op] = field(default_factory=list)
    t0: float = field(default_factory=time.monotonic)

    def start(self, actor: str, kind: str, **about: Any) -> Op:
        op = Op(len(self.ops), actor, kind, round(time.monotonic() - self.t0, 3), **about)
        self.ops.append(op)
        return op

    def finish(self, op: Op, status: int, body: Any) -> None:
        op.ended = round(time.monotonic() - self.t0, 3)
        op.status = status
        op.code = body.get("code") if isinstance(body, dict) and status >= 400 else None
        op.outcome = "ok" if 200 <= status < 300 else "failed" if 400 <= status < 500 else "unknown"
        if isinstance(body, dict) and status < 300:
            op.detail = {k: body.get(k) for k in ("id", "status", "booking_id", "paid_by", "quantity") if k in body}

    def write(self, path: Path) -> None:
        path.write_text("".join(json.dumps(asdict(op)) + "\n" for op in self.ops))


@dataclass
class Run:
    seed: int
    base: str
    admin: str
    events: list[str]
    tokens: list[str]
    deadline: float
    history: History = field(default_factory=History)
    seen_confirmed: set[str] = field(default_factory=set)
    declines_first: int = 3  # holds whose first payment attempt is a declined card
    cancelled: set[str] = field(default_factory=set)  # events the organiser cancelled (maybe: unknown outcome)


async def send(
    session: aiohttp.ClientSession, method: str, url: str, token: str | None, body: Any = None, key: str | None = None
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if key:
        headers["Idempotency-Key"] = key
    try:
        async with session.request(method, url, json=body, headers=headers) as response:
            raw = await response.read()
            try:
                return response.status, json.loads(raw) if raw else None
            except ValueError:
                return response.status, None
    except (aiohttp.ClientError, TimeoutError):
        return 0, None


async def operate(
    run: Run, session: aiohttp.ClientSession, actor: str, kind: str, method: str, path: str, token: str, **kw: Any
) -> Op:
    """One operation, retried (same key) while its outcome is unknown; every try is in the history."""
    body, key = kw.pop("body", None), kw.get("key")
    for attempt in range(RETRIES):
        op = run.history.start(actor, kind, **kw)
        status, answer = await send(session, method, f"{run.base}{path}", token, body, key)
        run.history.finish(op, status, answer)
        if op.outcome != "unknown" or status == 500:
            return op
        await asyncio.sleep(0.3 * (attempt + 1))
    return op


async def buyer(run: Run, session: aiohttp.ClientSession, i: int) -> None:
    rng = random.Random(f"{run.seed}:buyer:{i}")
    token, actor = run.tokens[i], f"buyer{i}"
    await asyncio.sleep(rng.uniform(0, 2))
    n = 0
    while time.monotonic() < run.deadline:
        n += 1
        event_id = rng.choice(run.events)
        if event_id in run.cancelled and rng.random() < 0.8:  # most buyers go on to the events still on
            event_id = rng.choice([e for e in run.events if e not in run.cancelled] or run.events)
        body: dict[str, Any] = {"quantity": rng.choice([1, 1, 2, 3])}
        code = rng.choice([None, None, None, None, "quarter", "COMP"])
        if code:
            body["promo_code"] = code
        hold = await operate(
            run, session, actor, "hold", "POST", f"/v1/events/{event_id}/bookings", token,
            body=body, key=f"{run.seed}-{i}-{n}-hold",
        )  # fmt: skip
        if hold.outcome != "ok":
            if hold.code == "sold_out" and rng.random() < 0.04:
                await wait_in_line(run, session, actor, token, event_id, body["quantity"], rng, f"{run.seed}-{i}-{n}")
            await asyncio.sleep(rng.uniform(0.5, 2))
            continue
        booking_id = str(hold.detail["id"])
        hold.booking_id = booking_id
        if hold.detail.get("status") == "confirmed":  # free with its code: nothing to pay
            run.seen_confirmed.add(booking_id)
            await asyncio.sleep(rng.uniform(0.2, 1.5))
            continue
        choice = rng.random()
        if run.declines_first > 0:  # the run's first holds are declined, then paid: every run has both
            run.declines_first -= 1
            await pay(
                run, session, actor, token, booking_id, "pm_card_chargeCustomerFail", f"{run.seed}-{i}-{n}-d", rng
            )
            await pay(run, session, actor, token, booking_id, "pm_card_visa", f"{run.seed}-{i}-{n}-pay", rng)
        elif choice < 0.6:
            await pay(run, session, actor, token, booking_id, "pm_card_visa", f"{run.seed}-{i}-{n}-pay", rng)
        elif choice < 0.7:
            await pay(
                run, session, actor, token, booking_id, "pm_card_chargeCustomerFail", f"{run.seed}-{i}-{n}-d", rng
            )
        elif choice < 0.85:
            await operate(
                run, session, actor, "cancel", "POST", f"/v1/bookings/{booking_id}/cancel", token, booking_id=booking_id
            )
        # else: abandoned; the hold runs out
        await asyncio.sleep(rng.uniform(0.2, 1.5))


async def wait_in_line(
    run: Run, session: aiohttp.ClientSession, actor: str, token: str, event_id: str, quantity: int, rng: Any, key: str
) -> None:
    """Sold out: join the waitlist, and a while later pay the offer if one came, or leave the line."""
    joined = await operate(
        run, session, actor, "join", "POST", f"/v1/events/{event_id}/waitlist", token, body={"quantity": quantity}
    )
    if joined.outcome != "ok":
        return
    entry_id = str(joined.detail["id"])
    await asyncio.sleep(rng.uniform(1, 6))
    status, page = await send(session, "GET", f"{run.base}/v1/waitlist", token)
    mine = next((e for e in (page or {}).get("items", []) if e.get("id") == entry_id), None) if status == 200 else None
    if mine is None:
        return
    if mine.get("status") == "offered" and mine.get("booking_id") and rng.random() < 0.7:
        card = "pm_card_visa" if rng.random() < 0.8 else "pm_card_chargeCustomerFail"
        await pay(run, session, actor, token, str(mine["booking_id"]), card, f"{key}-offer", rng)
    elif mine.get("status") == "waiting" and rng.random() < 0.8:
        await operate(run, session, actor, "leave", "DELETE", f"/v1/waitlist/{entry_id}", token)


async def pay(
    run: Run, session: aiohttp.ClientSession, actor: str, token: str, booking_id: str, method: str, key: str, rng: Any
) -> None:
    for _ in range(3):  # 409 payment_in_progress: the first try is still with the provider
        op = await operate(
            run, session, actor, "pay", "POST", f"/v1/bookings/{booking_id}/payments", token,
            body={"payment_method": method}, key=key, booking_id=booking_id,
        )  # fmt: skip
        if op.code != "payment_in_progress":
            break
        await asyncio.sleep(2)
    if op.outcome == "ok":
        op.payment_id = str(op.detail.get("id"))
        if rng.random() < 0.5:  # the app shows the booking a moment later
            await asyncio.sleep(rng.uniform(0.5, 3))
            read = await operate(run, session, actor, "read", "GET", f"/v1/bookings/{booking_id}", token)
            read.booking_id = booking_id
            if read.outcome == "ok" and read.detail.get("status") == "confirmed":
                run.seen_confirmed.add(booking_id)


async def organiser(run: Run, session: aiohttp.ClientSession) -> None:
    """Refunds a few of the bookings buyers saw confirmed."""
    rng = random.Random(f"{run.seed}:organiser")
    refunded: set[str] = set()
    began = time.monotonic()
    cancel_at = began + 0.7 * (run.deadline - began)
    while time.monotonic() < run.deadline:
        await asyncio.sleep(rng.uniform(1, 3))
        if not run.cancelled and time.monotonic() >= cancel_at:
            await cancel_event(run, session, run.events[0])
        candidates = sorted(run.seen_confirmed - refunded)
        if candidates and rng.random() < 0.5:
            booking_id = rng.choice(candidates)
            refunded.add(booking_id)
            await operate(
                run, session, "admin", "refund", "POST", f"/v1/bookings/{booking_id}/refund", run.admin,
                booking_id=booking_id,
            )  # fmt: skip


async def cancel_event(run: Run, session: aiohttp.ClientSession, event_id: str) -> None:
    """The organiser cancels an event: If-Match from a read, and the same request again while its
    outcome is unknown (a retry of a cancel that committed is a no-op 202)."""
    run.cancelled.add(event_id)
    headers = {"Authorization": f"Bearer {run.admin}"}
    etag = None
    for _ in range(10):
        try:
            async with session.get(f"{run.base}/v1/events/{event_id}", headers=headers) as response:
                etag = response.headers.get("ETag") if response.status == 200 else None
        except (aiohttp.ClientError, TimeoutError):
            etag = None
        if etag:
            break
        await asyncio.sleep(0.3)
    body, url = {"reason": "chaos: the venue is closed"}, f"{run.base}/v1/events/{event_id}/cancel"
    for attempt in range(RETRIES * 2):
        op = run.history.start("admin", "cancel_event", detail={"event_id": event_id})
        try:
            async with session.post(url, json=body, headers={**headers, "If-Match": etag or '"0"'}) as response:
                raw = await response.read()
                status, answer = response.status, json.loads(raw) if raw else None
        except (aiohttp.ClientError, TimeoutError, ValueError):
            status, answer = 0, None
        run.history.finish(op, status, answer)
        op.detail["event_id"] = event_id
        if op.outcome != "unknown" or status == 500:
            return
        await asyncio.sleep(0.3 * (attempt + 1))


async def webhook_replayer(run: Run, stack: Stack, session: aiohttp.ClientSession, until: float) -> int:
    """Deliver every Stripe event one or two times more, signed, 0.2-5 s later (out of order)."""
    rng = random.Random(f"{run.seed}:webhooks")
    provider = f"http://{stack.host('stripe')}"
    seen: set[str] = set()
    pending: list[asyncio.Task[None]] = []

    async def later(event: dict[str, Any], delay: float) -> None:
        await asyncio.sleep(delay)
        payload = json.dumps(event).encode()
        stamp = str(int(time.time()))
        signature = hmac.new(stack.webhook_secret.encode(), f"{stamp}.".encode() + payload, hashlib.sha256)
        headers = {"Stripe-Signature": f"t={stamp},v1={signature.hexdigest()}", "Content-Type": "application/json"}
        try:
            async with session.post(f"{run.base}/v1/webhooks/stripe", data=payload, headers=headers) as response:
                await response.read()
        except (aiohttp.ClientError, TimeoutError):
            pass

    while time.monotonic() < until:
        try:
            async with session.get(
                f"{provider}/v1/events?limit=100", headers={"Authorization": "Bearer sk_test_local"}
            ) as r:
                listed = (await r.json()).get("data", [])
        except (aiohttp.ClientError, TimeoutError, ValueError):
            listed = []
        for event in listed:
            if event["id"] in seen:
                continue
            seen.add(event["id"])
            for _ in range(rng.choice([1, 1, 2])):
                pending.append(asyncio.create_task(later(event, rng.uniform(0.2, 5))))
        await asyncio.sleep(1)
    await asyncio.gather(*pending)
    return len(pending)


# ---- the history checker ---------------------------------------------------------------------------


def judge(history: History, db: Any, seen_confirmed: set[str]) -> list[str]:
    """What the buyers were told, against what is stored once the system is quiet."""
    problems: list[str] = []
    bookings = {s.id: s.to_dict() or {} for s in db.collection("bookings").stream()}
    payments = {s.id: s.to_dict() or {} for s in db.collection("payments").stream()}
    by_key: dict[str, set[str]] = {}
    for op in history.ops:
        if op.status == 500 or (op.status and op.status not in ALLOWED[op.kind] | UNKNOWN_STATUSES):
            problems.append(f"op {op.n} {op.kind} by {op.actor} answered {op.status} {op.code}")
        if op.outcome != "ok":
            continue
        if op.kind == "hold":
            booking = bookings.get(str(op.detail.get("id")))
            if booking is None:
                problems.append(f"op {op.n}: hold {op.detail.get('id')} acknowledged, not stored")
            by_key.setdefault(op.key or "", set()).add(str(op.detail.get("id")))
        elif op.kind == "pay" and op.detail.get("status") == "succeeded":
            payment = payments.get(str(op.detail.get("id")), {})
            booking = bookings.get(op.booking_id or "", {})
            ticket = booking.get("status") == "confirmed" and booking.get("paid_by") == payment.get("id")
            if not ticket and payment.get("status") != "refunded":
                problems.append(
                    f"op {op.n}: payment {op.detail.get('id')} told succeeded; booking {op.booking_id} is "
                    f"{booking.get('status')}, payment {payment.get('status')} (no ticket, no refund)"
                )
        elif op.kind == "cancel_event":
            event = db.collection("events").document(str(op.detail.get("event_id"))).get().to_dict() or {}
            if event.get("status") != "cancelled":
                problems.append(f"op {op.n}: cancel of event {op.detail.get('event_id')} answered 202; now {event}")
        elif op.kind in ("cancel", "refund"):
            now = bookings.get(op.booking_id or "", {}).get("status")
            if now != op.detail.get("status") or now == "confirmed":
                problems.append(
                    f"op {op.n}: {op.kind} of {op.booking_id} answered {op.detail.get('status')}; now {now}"
                )
    problems += [
        f"key {key}: one hold request made bookings {sorted(ids)}" for key, ids in by_key.items() if len(ids) > 1
    ]
    refunded_by_admin = {op.booking_id for op in history.ops if op.kind == "refund" and op.outcome != "failed"}
    cancelled = {str(op.detail.get("event_id")) for op in history.ops if op.kind == "cancel_event"}
    for booking_id in sorted(seen_confirmed - refunded_by_admin):
        if bookings.get(booking_id, {}).get("event_id") in cancelled:
            continue  # refunded because its event was cancelled: the invariants' `cancel` rule judges it
        status = bookings.get(booking_id, {}).get("status")
        if status != "confirmed":
            problems.append(f"booking {booking_id} was shown confirmed to its buyer; now {status}")
    return problems


# ---- one run --------------------------------------------------------------------------------------


async def setup(session: aiohttp.ClientSession, base: str, seed: int, buyers: int) -> tuple[str, list[str], list[str]]:
    """The organiser, two small events and the buyers; each call retried while faults hide its answer
    (a registration that did happen answers 409 already_registered the next time)."""
    from bench.flash_sale import register

    async def retried(make: Any) -> Any:
        for attempt in range(10):
            try:
                return await make()
            except (RuntimeError, aiohttp.ClientError, TimeoutError):  # a fault, or a closed connection
                await asyncio.sleep(0.2 * (attempt + 1))
        return await make()

    async def one(sub: str, role: str) -> str:
        async def attempt() -> str:
            try:
                return await register(session, base, sub, role)
            except RuntimeError as exc:
                if "answered 409" in str(exc):  # registered by the try whose answer was lost
                    _, body = await send(session, "POST", f"{base}/dev/token", None, {"sub": sub, "expires_in": 7200})
                    if not isinstance(body, dict) or "id_token" not in body:
                        raise RuntimeError("no token yet") from None
                    return str(body["id_token"])
                raise

        return str(await retried(attempt))

    admin = await one(f"chaos{seed}-admin", "admin")
    capacity = max(4, buyers // 3)  # two events: about two buyers for each ticket

    async def event(k: int) -> str:
        async def attempt() -> str:
            body = {**EVENT, "name": f"Chaos {seed} #{k}", "capacity": capacity}
            status, answer = await send(session, "POST", f"{base}/v1/events", admin, body)
            if status != 201:
                raise RuntimeError(f"event creation answered {status}")
            return str(answer["id"])

        return str(await retried(attempt))

    events = [await event(k) for k in range(2)]

    async def code(event_id: str, body: dict[str, Any]) -> None:
        async def attempt() -> None:
            status, answer = await send(session, "POST", f"{base}/v1/events/{event_id}/promo-codes", admin, body)
            if status != 201 and not (
                status == 409 and isinstance(answer, dict) and answer.get("code") == "promo_code_exists"
            ):
                raise RuntimeError(f"promo code creation answered {status}")

        await retried(attempt)

    for event_id in events:
        await code(event_id, {"code": "QUARTER", "percent_off": 25, "max_uses": max(2, capacity // 4)})
        await code(event_id, {"code": "COMP", "percent_off": 100, "max_uses": 3})
    tokens = await asyncio.gather(*(one(f"chaos{seed}-{i:05d}", "user") for i in range(buyers)))
    return admin, events, list(tokens)


async def drive(stack: Stack, seed: int, buyers: int, seconds: float) -> tuple[Run, int]:
    timeout = aiohttp.ClientTimeout(total=30)
    # Idle connections are dropped before the server's 2 s keep-alive ends (no reuse of a closed one).
    connector = aiohttp.TCPConnector(limit=100, keepalive_timeout=1.0)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        admin, events, tokens = await setup(session, stack.url, seed, buyers)
        run = Run(seed, stack.url, admin, events, tokens, time.monotonic() + seconds)
        replayer = asyncio.create_task(webhook_replayer(run, stack, session, run.deadline + 10))
        await asyncio.gather(organiser(run, session), *(buyer(run, session, i) for i in range(buyers)))
        replayed = await replayer
    return run, replayed


def trail(db: Any, object_id: str) -> list[str]:
    """What happened to one object, from the domain-event stream (to explain a violation)."""
    records = [s.to_dict() or {} for s in db.collection("domain_events").where("object_id", "==", object_id).stream()]
    return [
        f"{r.get('at')} {r.get('action')} by {r.get('actor')} {r.get('changes')}"
        for r in sorted(records, key=lambda r: str(r.get("at")))
    ]


def injected(stack: Stack) -> Counter[str]:
    """The faults the functions injected, counted from their log."""
    log = (stack.run_dir / "functions.log").read_text(errors="replace")
    return Counter(re.findall(r"fault injected: (\w+)", log))


def run_seed(seed: int, buyers: int, seconds: float, rate: float, out: Path) -> dict[str, Any]:
    """One seeded run on its own stack; returns its report (violations listed, [] when none)."""
    env = {**STACK_ENV, "FAULT_PLAN": f"seed={seed},rate={rate}"}
    started = time.monotonic()
    with Stack.for_tests(**env) as stack:
        run, replayed = asyncio.run(drive(stack, seed, buyers, seconds))
        db, provider = invariants.clients_for(stack)
        violations = [str(v) for v in invariants.check(db, provider, mail_dir=stack.mail_dir, settle=SETTLE_SECONDS)]
        violations += judge(run.history, db, run.seen_confirmed)
        trails = {
            oid: trail(db, oid) for oid in sorted(set(re.findall(r"payment/([\w-]{20})", " ".join(violations))))[:5]
        }
        faults = injected(stack)
    out.mkdir(parents=True, exist_ok=True)
    history_file = out / f"seed-{seed}.jsonl"
    run.history.write(history_file)
    outcomes = Counter(f"{op.kind} {op.outcome}" for op in run.history.ops)
    return {
        "seed": seed,
        "buyers": buyers,
        "seconds": seconds,
        "rate": rate,
        "operations": len(run.history.ops),
        "outcomes": dict(sorted(outcomes.items())),
        "answers": dict(sorted(Counter(f"{op.kind} {op.status}" for op in run.history.ops).items())),
        "faults_injected": dict(sorted(faults.items())),
        "webhooks_redelivered": replayed,
        "violations": violations,
        "trails": trails,
        "history": str(history_file),
        "took_s": round(time.monotonic() - started, 1),
    }


def _seeds(text: str) -> list[int]:
    if "-" in text:
        low, high = text.split("-", 1)
        return list(range(int(low), int(high) + 1))
    return [int(s) for s in text.split(",")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, help="one seed")
    parser.add_argument("--seeds", default="1", help="seeds: 1-20 or 3,7,9")
    parser.add_argument("--buyers", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=40.0, help="how long buyers keep going")
    parser.add_argument("--rate", type=float, default=0.05, help="probability of each fault at its site")
    parser.add_argument("--out", type=Path, default=Path(".chaos"))
    args = parser.parse_args(argv)
    seeds = [args.seed] if args.seed is not None else _seeds(args.seeds)
    bound = len(seeds) * (args.seconds + SETTLE_SECONDS + 60)
    print(f"fault-injected runs: seeds {seeds}, {args.buyers} buyers for {args.seconds:g} s each, "
          f"fault rate {args.rate:g}; at most {bound / 60:.0f} minutes", flush=True)  # fmt: skip
    failed = []
    for seed in seeds:
        try:
            report = run_seed(seed, args.buyers, args.seconds, args.rate, args.out)
        except Exception as exc:  # a run that could not finish is a failed seed, and the others still run
            report = {"seed": seed, "violations": [f"the run did not finish: {exc!r}"], "trails": {}}
        print(json.dumps({k: v for k, v in report.items() if k not in ("violations", "trails")}), flush=True)
        for violation in report["violations"]:
            print(f"  VIOLATION seed {seed}: {violation}", flush=True)
        for object_id, steps in report["trails"].items():
            print(f"  trail of {object_id}:", *steps, sep="\n    ", flush=True)
        if report["violations"]:
            failed.append(seed)
    print(
        f"{len(seeds) - len(failed)}/{len(seeds)} seeds with 0 violations" + (f"; failed: {failed}" if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
