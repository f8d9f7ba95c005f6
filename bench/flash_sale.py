"""`make bench`: a flash sale against the local stack, measured the way the peer was.

Starts its own stack on free ports; registers an admin and BUYERS buyers (not timed); creates an
event with CAPACITY tickets; sends BUYERS booking attempts of quantity 1 from CLIENTS concurrent
clients through the gateway (JWT verification and all, default limits). Beside it, the same rush on
the bare hold endpoint (the inventory code alone) is the ceiling. Then a payment funnel and cold
starts. Bounded in count and time; REPEAT repetitions, medians shown; after each repetition the
invariants (dev/invariants.py) are checked over its two events; a JSON report is written to
bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from bench import promo_rush
from bench.cancel_rush import cancel_rush
from bench.door_rush import PER_BOOKING, door_rush
from bench.waitlist_rush import waitlist_rush
from bench.webhook_fanout import SUBSCRIPTIONS, webhook_fanout
from dev import invariants
from dev.gateway import load_routes
from dev.stack import ROOT, Stack, free_port, http_ok
from dev.webhook_receiver import running

RESULTS = ROOT / "bench" / "results"
TARGETS = {
    "holds_per_second": 200,
    "p99_ms": 500,
    "all_answered_within_s": 10,
    "payment_to_confirmed_p95_ms": 2000,
    "import_ms": 300,
    "first_200_s": 1.0,
    "scans_per_second": 150,
    "scan_p99_ms": 300,
    "batch_of_500_s": 2.0,
    "offer_p95_s": 2.0,
    "webhook_lag_p95_s": 2.0,
}
QUIET_S = 30.0  # seconds the invariant checker waits for the stack to come to rest after a repetition


@dataclass
class Attempt:
    started: float
    ended: float
    status: int
    code: str | None


# ---- helpers ---------------------------------------------------------------------------------------


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def cpu_seconds_of_group(pgid: int) -> float:
    """utime + stime of every live process in a process group (from /proc)."""
    total = 0
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / tick


def cpu_snapshot(stack: Stack) -> dict[str, float]:
    groups: dict[str, float] = {}
    for child in stack.children:
        if child.process is not None:
            name = "functions" if child.name == "functions" else child.name
            groups[name] = groups.get(name, 0.0) + cpu_seconds_of_group(child.process.pid)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    groups["load_client"] = usage.ru_utime + usage.ru_stime
    return groups


def progress(label: str, done: int, total: int) -> None:
    if done == total or done % max(1, total // 10) == 0:
        print(f"\r  {label}: {done}/{total}", end="" if done < total else "\n", flush=True)


# ---- HTTP --------------------------------------------------------------------------------------------


async def call(
    session: aiohttp.ClientSession, method: str, url: str, token: str | None = None, **kw: Any
) -> tuple[int, Any]:
    headers = kw.pop("headers", {})
    if token:
        headers["Authorization"] = f"Bearer {token}"
    async with session.request(method, url, headers=headers, **kw) as response:
        body = await response.read()
        try:
            return response.status, json.loads(body) if body else None
        except ValueError:
            return response.status, None


async def register(session: aiohttp.ClientSession, base: str, sub: str, role: str) -> str:
    _, body = await call(session, "POST", f"{base}/dev/token", json={"sub": sub, "expires_in": 7200})
    token = body["id_token"]
    user: dict[str, Any] = {
        "name": sub,
        "email": f"{sub}@example.com",
        "username": sub,
        "country_code": "DE",
        "phone_number": "+4915112345678",
        "role": role,
    }
    if role == "admin":
        user["company"] = {
            "name": "Bench Live",
            "address": "1 Main St",
            "email": "bench@example.com",
            "country_code": "DE",
            "phone_number": "+493012345678",
            "registration_number": "HRB 1",
        }
    status, _ = await call(session, "POST", f"{base}/v1/users", token, json=user)
    if status != 201:
        raise RuntimeError(f"registration of {sub} answered {status}")
    return str(token)


async def register_many(base: str, prefix: str, count: int, clients: int) -> list[str]:
    tokens: list[str] = [""] * count
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(count):
            queue.put_nowait(i)
        done = 0

        async def worker() -> None:
            nonlocal done
            while not queue.empty():
                i = queue.get_nowait()
                tokens[i] = await register(session, base, f"{prefix}{i:05d}", "user")
                done += 1
                progress("registering buyers", done, count)

        await asyncio.gather(*(worker() for _ in range(clients)))
    return tokens


EVENT = {
    "event_date": "2030-06-01",
    "event_time": "20:00",
    "timezone": "Europe/Berlin",
    "venue": "Bench Arena",
    "location_lat": 52.5,
    "location_long": 13.4,
    "base_price": 5000,
    "surge_price": 7500,
    "surge_threshold": 0.9,
    "currency": "EUR",
}


async def create_event(base: str, admin: str, capacity: int, name: str) -> str:
    event = {**EVENT, "name": name, "capacity": capacity}
    async with aiohttp.ClientSession() as session:
        status, body = await call(session, "POST", f"{base}/v1/events", admin, json=event)
    if status != 201:
        raise RuntimeError(f"event creation answered {status}: {body}")
    return str(body["id"])


async def rush(
    url_for: Any, tokens: list[str | None], clients: int, label: str, deadline_s: float, body: Any = None
) -> list[Attempt]:
    """Every attempt once, `clients` at a time; stops by itself at the deadline."""
    payload = body or {"quantity": 1}
    attempts: list[Attempt] = []
    connector = aiohttp.TCPConnector(limit=clients)
    timeout = aiohttp.ClientTimeout(total=30)
    stop_at = time.monotonic() + deadline_s
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(len(tokens)):
            queue.put_nowait(i)

        async def worker() -> None:
            while not queue.empty() and time.monotonic() < stop_at:
                i = queue.get_nowait()
                started = time.monotonic()
                try:
                    status, answer = await call(session, "POST", url_for(i), tokens[i], json=payload)
                    code = answer.get("code") if isinstance(answer, dict) else None
                except (aiohttp.ClientError, TimeoutError) as exc:
                    status, code = 0, type(exc).__name__
                attempts.append(Attempt(started, time.monotonic(), status, code))
                progress(label, len(attempts), len(tokens))

        await asyncio.gather(*(worker() for _ in range(clients)))
    return attempts


def summarise(attempts: list[Attempt]) -> dict[str, Any]:
    first_sent = min(a.started for a in attempts)
    holds = sorted(a.ended for a in attempts if a.status == 201)
    by_outcome: dict[str, list[float]] = {"all": [], "201": [], "sold_out": [], "other": []}
    answers: Counter[str] = Counter()
    for a in attempts:
        ms = (a.ended - a.started) * 1000
        outcome = "201" if a.status == 201 else ("sold_out" if a.code == "sold_out" else "other")
        by_outcome["all"].append(ms)
        by_outcome[outcome].append(ms)
        answers[f"{a.status} {a.code or ''}".strip()] += 1
    window = (holds[-1] - holds[0]) if len(holds) > 1 else float("nan")
    return {
        "attempts": len(attempts),
        "holds": len(holds),
        "holds_per_second": (len(holds) - 1) / window if len(holds) > 1 and window > 0 else float("nan"),
        "sell_out_s": (holds[-1] - first_sent) if holds else float("nan"),
        "all_answered_within_s": max(a.ended for a in attempts) - first_sent,
        "latency_ms": {
            k: {"p50": pct(v, 50), "p95": pct(v, 95), "p99": pct(v, 99), "n": len(v)} for k, v in by_outcome.items()
        },
        "answers": dict(answers),
        "errors": len(by_outcome["other"]),
    }


# ---- checks against what is stored ------------------------------------------------------------------


def oversell_check(env: dict[str, str], event_id: str, capacity: int, rush_started: datetime) -> dict[str, Any]:
    os.environ.update(env)
    from google.cloud import firestore
    from google.cloud.firestore_v1.base_query import FieldFilter

    db = firestore.Client(project=env["GOOGLE_CLOUD_PROJECT"])
    event_ref = db.collection("events").document(event_id)
    claims = list(event_ref.collection("slots").stream())
    numbers = [c.get("n") for c in claims]
    booking_ids = {c.get("booking_id") for c in claims}
    bookings = list(db.collection("bookings").where(filter=FieldFilter("event_id", "==", event_id)).stream())
    buyers = list(event_ref.collection("buyers").stream())
    written = claims + bookings + buyers
    rewritten = [d.reference.path for d in written if d.update_time != d.create_time]
    event_snap = event_ref.get()
    return {
        "claims": len(claims),
        "distinct_slots": len(set(numbers)),
        "slots_in_range": all(0 <= n < capacity for n in numbers),
        "bookings_stored": len(bookings),
        "claims_match_bookings": booking_ids == {b.id for b in bookings},
        "oversold": len(claims) > capacity or len(set(numbers)) != len(numbers),
        "documents_written": len(written),
        "most_writes_to_one_document": 1 if not rewritten else 2,
        "documents_written_more_than_once": rewritten[:5],
        "event_document_written_during_rush": event_snap.update_time.timestamp() >= rush_started.timestamp(),
    }


# ---- payment funnel -----------------------------------------------------------------------------


async def payment_funnel(base: str, admin: str, tokens: list[str], clients: int) -> dict[str, Any]:
    event_id = await create_event(base, admin, len(tokens) + 10, "Bench payments")
    latencies: list[float] = []
    failures: Counter[str] = Counter()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=clients)) as session:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(len(tokens)):
            queue.put_nowait(i)

        async def worker() -> None:
            while not queue.empty():
                token = tokens[queue.get_nowait()]
                status, booking = await call(
                    session, "POST", f"{base}/v1/events/{event_id}/bookings", token, json={"quantity": 1}
                )
                if status != 201:
                    failures[f"book {status}"] += 1
                    continue
                started = time.monotonic()
                status, _ = await call(
                    session,
                    "POST",
                    f"{base}/v1/bookings/{booking['id']}/payments",
                    token,
                    json={"payment_method": "pm_card_visa"},
                )
                if status != 201:
                    failures[f"pay {status}"] += 1
                    continue
                while time.monotonic() - started < 15:
                    _, body = await call(session, "GET", f"{base}/v1/bookings/{booking['id']}", token)
                    if body and body.get("status") == "confirmed":
                        latencies.append((time.monotonic() - started) * 1000)
                        break
                    await asyncio.sleep(0.02)
                else:
                    failures["not confirmed in 15 s"] += 1
                progress("payment funnel", len(latencies) + sum(failures.values()), len(tokens))

        await asyncio.gather(*(worker() for _ in range(clients)))
    return {
        "payments": len(tokens),
        "confirmed": len(latencies),
        "failures": dict(failures),
        "payment_to_confirmed_ms": {"p50": pct(latencies, 50), "p95": pct(latencies, 95), "p99": pct(latencies, 99)},
    }


# ---- cold start ---------------------------------------------------------------------------------------


def import_ms(module: str, env: dict[str, str]) -> float:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import functions.{module}"],
        capture_output=True,
        text=True,
        env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        check=True,
    )
    last = [line for line in result.stderr.splitlines() if line.rstrip().endswith(f"functions.{module}")][-1]
    return int(last.split("|")[1]) / 1000


def first_200_s(name: str, source: str, env: dict[str, str]) -> float:
    port = free_port()
    started = time.monotonic()
    process = subprocess.Popen(
        [
            str(ROOT / ".venv/bin/functions-framework"),
            "--target",
            name,
            "--source",
            str(ROOT / "functions" / source),
            "--port",
            str(port),
            "--host",
            "127.0.0.1",
        ],
        env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        while time.monotonic() - started < 20:
            if http_ok(f"http://127.0.0.1:{port}/healthz", timeout=0.2):
                return time.monotonic() - started
            time.sleep(0.01)
        return float("nan")
    finally:
        os.killpg(process.pid, 9)
        process.wait()


def cold_starts(env: dict[str, str]) -> dict[str, Any]:
    report: dict[str, Any] = {}
    for fn in load_routes():
        if fn.get("local_only"):
            continue  # never deployed: not part of the cold-start budget
        module = fn["source"].removesuffix(".py")
        report[fn["name"]] = {
            "import_ms": round(import_ms(module, env), 1),
            "first_200_s": round(first_200_s(fn["name"], fn["source"], env), 3),
        }
        print(f"  cold start {fn['name']}: {report[fn['name']]}", flush=True)
    return report


# ---- one repetition --------------------------------------------------------------------------------


def run_once(
    stack: Stack, admin: str, hooks_admin: str, tokens: list[str], args: argparse.Namespace, rep: int
) -> dict[str, Any]:
    base = stack.url
    event_id = asyncio.run(create_event(base, admin, args.capacity, f"Bench rush {rep}"))
    bare_event = asyncio.run(create_event(base, admin, args.capacity, f"Bench bare {rep}"))
    # The same rush for a company with five webhook endpoints subscribed to every type, next to the
    # plain one and in turns first and second, so that neither always meets the other's leftovers.
    hooked_event = asyncio.run(create_event(base, hooks_admin, args.capacity, f"Bench hooked {rep}"))

    def hooked_rush() -> list[Attempt]:
        url = f"{base}/v1/events/{hooked_event}/bookings"
        return asyncio.run(rush(lambda i: url, list(tokens), args.clients, "webhooks subscribed", args.deadline))

    hooked = hooked_rush() if rep % 2 == 0 else []
    cpu_before = cpu_snapshot(stack)
    started_at = datetime.now(UTC)
    full = asyncio.run(
        rush(lambda i: f"{base}/v1/events/{event_id}/bookings", list(tokens), args.clients, "full path", args.deadline)
    )
    cpu_after = cpu_snapshot(stack)
    hooked = hooked or hooked_rush()
    bare = asyncio.run(
        rush(
            lambda i: f"{base}/bench/hold/{bare_event}", [None] * len(tokens), args.clients, "bare hold", args.deadline
        )
    )
    promo_event = asyncio.run(create_event(base, admin, args.capacity, f"Bench promo {rep}"))
    max_uses = args.capacity // 2
    asyncio.run(promo_rush.add_code(base, admin, promo_event, max_uses, call))
    promo = asyncio.run(
        rush(
            lambda i: f"{base}/v1/events/{promo_event}/bookings",
            list(tokens),
            args.clients,
            "with a promo code",
            args.deadline,
            body={"quantity": 1, "promo_code": promo_rush.CODE},
        )
    )
    full_summary, bare_summary, promo_summary = summarise(full), summarise(bare), summarise(promo)
    hooked_summary = summarise(hooked)
    promo_summary["max_uses"] = max_uses
    promo_summary["uses_after"] = asyncio.run(promo_rush.uses_of(base, admin, promo_event, call))
    stored = oversell_check(stack.client_env(), event_id, args.capacity, started_at)
    return {
        "full": full_summary,
        "bare": bare_summary,
        "promo": promo_summary,
        "share_of_bare": full_summary["holds_per_second"] / bare_summary["holds_per_second"],
        "promo_share_of_full": promo_summary["holds_per_second"] / full_summary["holds_per_second"],
        "hooked": hooked_summary,
        "hooked_share_of_full": hooked_summary["holds_per_second"] / full_summary["holds_per_second"],
        "cpu_seconds": {k: round(cpu_after[k] - cpu_before.get(k, 0.0), 2) for k in cpu_after},
        "stored": stored,
        "invariants": invariants_check(stack, [event_id, bare_event, promo_event, hooked_event]),
    }


def invariants_check(stack: Stack, event_ids: list[str]) -> dict[str, Any]:
    """dev/invariants.py over the repetition's events, once the stack has come to rest."""
    db, provider = invariants.clients_for(stack)
    started = time.monotonic()
    found = invariants.check(db, provider, event_ids=event_ids, mail_dir=stack.mail_dir, settle=QUIET_S)
    print(f"  invariants: {len(found)} violation(s) in {time.monotonic() - started:.1f} s", flush=True)
    for violation in found[:20]:
        print(f"    {violation}", flush=True)
    return {
        "violations": len(found),
        "by_rule": dict(Counter(v.rule for v in found)),
        "first": [str(v) for v in found[:20]],
    }


def median_of(runs: list[dict[str, Any]], *path: str) -> float:
    values = []
    for run in runs:
        value: Any = run
        for key in path:
            value = value[key]
        values.append(float(value))
    return statistics.median(values)


def machine() -> dict[str, Any]:
    mem = Path("/proc/meminfo").read_text().split("\n")[0].split()[1]
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    versions = {}
    for package in ("functions-framework", "google-cloud-firestore", "gunicorn", "aiohttp", "stripe"):
        out = subprocess.run([sys.executable, "-m", "pip", "show", package], capture_output=True, text=True).stdout
        match = re.search(r"^Version: (.+)$", out, re.M)
        versions[package] = match.group(1) if match else None
    java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr.splitlines()
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(int(mem) / 1024 / 1024, 1),
        "python": platform.python_version(),
        "java": java[0] if java else None,
        "platform": platform.platform(),
        "commit": commit or "unknown",
        "versions": versions,
    }


def table(report: dict[str, Any]) -> str:
    m = report["medians"]
    runs = report["repetitions"]
    emulators = statistics.median(
        sum(r["cpu_seconds"].get(k, 0.0) for k in ("firestore", "tasks", "pubsub")) for r in runs
    )
    functions = statistics.median(r["cpu_seconds"]["functions"] for r in runs)
    client = statistics.median(r["cpu_seconds"]["load_client"] for r in runs)
    cpu = f"{emulators:.1f} / {functions:.1f} / {client:.1f}"
    rows = [
        ("successful holds/s (full path)", f"{m['holds_per_second']:.0f}", f">= {TARGETS['holds_per_second']}"),
        ("holds/s (bare hold, ceiling)", f"{m['bare_holds_per_second']:.0f}", ""),
        ("full path share of ceiling", f"{m['share_of_bare'] * 100:.0f}%", ""),
        ("sell-out time", f"{m['sell_out_s']:.2f} s", ""),
        (
            "all attempts answered within",
            f"{m['all_answered_within_s']:.2f} s",
            f"<= {TARGETS['all_answered_within_s']} s",
        ),
        (
            "latency p50 / p95 / p99, all",
            f"{m['p50_ms']:.0f} / {m['p95_ms']:.0f} / {m['p99_ms']:.0f} ms",
            f"p99 <= {TARGETS['p99_ms']} ms",
        ),
        ("latency p99, 201 / sold_out", f"{m['p99_201_ms']:.0f} / {m['p99_sold_out_ms']:.0f} ms", ""),
        ("errors (not 201 nor sold_out)", f"{m['errors']:.0f}", "0"),
        (
            "holds/s with a promo code (share of plain)",
            f"{m['promo_holds_per_second']:.0f} ({m['promo_share_of_full'] * 100:.0f}%)",
            ">= 80%",
        ),
        ("promo code uses after its rush / max_uses", f"{report['promo_uses_max']}", "uses == max_uses"),
        (
            "holds/s with 5 webhook endpoints subscribed (share)",
            f"{m['hooked_holds_per_second']:.0f} ({m['hooked_share_of_full'] * 100:.0f}%)",
            ">= 90%",
        ),
        ("oversold", "yes" if report["any_oversold"] else "no", "no"),
        ("invariant violations (all repetitions)", f"{report['invariant_violations']}", "0"),
        ("most writes to one document", f"{report['most_writes_to_one_document']} (event doc: 0)", ""),
        ("CPU s: emulators / functions / client", cpu, "client light"),
        (
            "payment call -> confirmed p50 / p95",
            f"{m['pay_p50_ms']:.0f} / {m['pay_p95_ms']:.0f} ms",
            f"p95 <= {TARGETS['payment_to_confirmed_p95_ms']} ms",
        ),
        (
            f"door: scans/s ({report['door_rush']['gates']} gates)",
            f"{m['scans_per_second']:.0f}",
            f">= {TARGETS['scans_per_second']}",
        ),
        (
            "door: scan latency p50 / p99",
            f"{report['door_rush']['latency_ms']['p50']:.0f} / {m['scan_p99_ms']:.0f} ms",
            f"p99 <= {TARGETS['scan_p99_ms']} ms",
        ),
        (
            "door: double admissions / forged admitted",
            f"{report['door_rush']['double_admissions']} / {report['door_rush']['forged_admitted']}",
            "0 / 0",
        ),
        (
            f"waitlist: {report['waitlist']['entries']} entries, release -> offer p50 / p95",
            f"{report['waitlist']['release_to_offer_s']['p50']:.2f} / {m['offer_p95_s']:.2f} s",
            f"p95 <= {TARGETS['offer_p95_s']} s",
        ),
        (
            "waitlist: offers made / in join order",
            f"{report['waitlist']['offers']} / {'yes' if report['waitlist']['served_in_order'] else 'NO'}",
            "all / yes",
        ),
        (
            f"cancel: {report['cancel_rush']['bookings']} refunded after the 202 in",
            f"{report['cancel_rush']['all_refunded_s']:.1f} s ({report['cancel_rush']['refunds_per_second']:.0f}/s)",
            "<= 25/s (Stripe's pace)",
        ),
        (
            "cancel: refunded twice / without refund",
            f"{report['cancel_rush']['refunded_twice']} / {report['cancel_rush']['without_refund']}",
            "0 / 0",
        ),
        (
            f"webhooks: {report['webhooks']['domain_events']} events ({report['webhooks']['rate_per_s']:.0f}/s)"
            " to 5 endpoints, deliveries/s",
            f"{report['webhooks']['deliveries_per_second']:.0f}",
            "",
        ),
        (
            "webhooks: commit -> delivery p50 / p95, healthy",
            f"{report['webhooks']['lag_s']['healthy']['p50']:.2f} / {m['webhook_lag_p95_s']:.2f} s",
            f"p95 <= {TARGETS['webhook_lag_p95_s']} s",
        ),
        (
            "webhooks: p95 slow / flaky; flaky's refused attempts",
            f"{report['webhooks']['lag_s']['slow']['p95']:.2f} / {report['webhooks']['lag_s']['flaky']['p95']:.2f} s; "
            f"{report['webhooks']['endpoints']['flaky']['refused_attempts']}",
            "retried",
        ),
        (
            "webhooks: lost / to unsubscribed endpoints / repeats",
            f"{report['webhooks']['lost']} / {report['webhooks']['unsubscribed_deliveries']} / "
            f"{report['webhooks']['repeats']}",
            "0 / 0 / -",
        ),
        ("door: offline batch of 500 answered in", f"{m['batch_of_500_s']:.2f} s", f"<= {TARGETS['batch_of_500_s']} s"),
        ("slowest module import", f"{m['max_import_ms']:.0f} ms", f"<= {TARGETS['import_ms']} ms"),
        ("slowest first 200 after start", f"{m['max_first_200_s']:.2f} s", f"<= {TARGETS['first_200_s']} s"),
    ]
    width = max(len(r[0]) for r in rows)
    lines = [f"{'measure':<{width}}  {'median':>22}  target", "-" * (width + 40)]
    lines += [f"{a:<{width}}  {b:>22}  {c}" for a, b, c in rows]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--buyers", type=int, default=2000)
    parser.add_argument("--capacity", type=int, default=500)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--payments", type=int, default=200)
    parser.add_argument("--deadline", type=float, default=60.0, help="seconds a rush may last at most")
    parser.add_argument("--door-tickets", type=int, default=2000, help="tickets of the door rush (and 500 more)")
    parser.add_argument("--gates", type=int, default=20)
    parser.add_argument("--cancel-bookings", type=int, default=500, help="confirmed bookings of the cancelled event")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    print(
        f"flash-sale benchmark: {args.buyers} buyers, capacity {args.capacity}, {args.clients} clients, "
        f"{args.repeat} repetition(s)",
        flush=True,
    )
    with Stack.for_tests() as stack:
        env = stack.client_env()
        admin = asyncio.run(_admin(stack.url))
        tokens = asyncio.run(register_many(stack.url, "buyer", args.buyers, args.clients))
        runs = []
        with ExitStack() as receivers:
            hooks_admin = asyncio.run(_admin(stack.url, "bench_hooks_admin"))
            endpoints = [
                asyncio.run(_endpoint(stack.url, hooks_admin, receivers.enter_context(running()).url, ["*"], name))
                for name in SUBSCRIPTIONS
            ]
            for rep in range(1, args.repeat + 1):
                print(f"repetition {rep}/{args.repeat}", flush=True)
                runs.append(run_once(stack, admin, hooks_admin, tokens, args, rep))
            # gone before their receivers: the rushes' holds expire later, and nobody listens then
            for endpoint_id in endpoints:
                asyncio.run(_endpoint_deleted(stack.url, hooks_admin, endpoint_id))
        pay_tokens = asyncio.run(register_many(stack.url, "payer", args.payments, 20))
        funnel = asyncio.run(payment_funnel(stack.url, admin, pay_tokens, 10))
        door_buyers = (args.door_tickets + 500) // PER_BOOKING
        door_tokens = asyncio.run(register_many(stack.url, "door", door_buyers, 20))
        door = asyncio.run(door_rush(stack.url, admin, door_tokens, create_event, progress, gates=args.gates))
        door["invariants"] = invariants_check(stack, [door["event_id"]])
        cancel_tokens = asyncio.run(register_many(stack.url, "canceller", args.cancel_bookings, 20))
        stripe_base = f"http://{stack.host('stripe')}"
        cancelled = asyncio.run(cancel_rush(stack.url, admin, cancel_tokens, create_event, progress, stripe_base))
        cancelled["invariants"] = invariants_check(stack, [cancelled["event_id"]])
        half = len(tokens) // 2
        line = asyncio.run(waitlist_rush(stack.url, admin, tokens[:half], tokens[half:], create_event, progress))
        line["invariants"] = invariants_check(stack, [line["event_id"]])
        fanout_admin = asyncio.run(_admin(stack.url, "bench_fanout_admin"))
        hooks = webhook_fanout(stack.url, fanout_admin, {**EVENT, "capacity": 100}, progress)
    cold = cold_starts(env)  # after the stack stopped: imports and start-up measured on a quiet machine
    medians = {
        "holds_per_second": median_of(runs, "full", "holds_per_second"),
        "bare_holds_per_second": median_of(runs, "bare", "holds_per_second"),
        "share_of_bare": median_of(runs, "share_of_bare"),
        "sell_out_s": median_of(runs, "full", "sell_out_s"),
        "all_answered_within_s": median_of(runs, "full", "all_answered_within_s"),
        "p50_ms": median_of(runs, "full", "latency_ms", "all", "p50"),
        "p95_ms": median_of(runs, "full", "latency_ms", "all", "p95"),
        "p99_ms": median_of(runs, "full", "latency_ms", "all", "p99"),
        "p99_201_ms": median_of(runs, "full", "latency_ms", "201", "p99"),
        "p99_sold_out_ms": median_of(runs, "full", "latency_ms", "sold_out", "p99"),
        "errors": median_of(runs, "full", "errors"),
        "promo_holds_per_second": median_of(runs, "promo", "holds_per_second"),
        "promo_share_of_full": median_of(runs, "promo_share_of_full"),
        "pay_p50_ms": funnel["payment_to_confirmed_ms"]["p50"],
        "pay_p95_ms": funnel["payment_to_confirmed_ms"]["p95"],
        "scans_per_second": door["scans_per_second"],
        "scan_p99_ms": door["latency_ms"]["p99"],
        "batch_of_500_s": door["batch"]["seconds"],
        "offer_p95_s": line["release_to_offer_s"]["p95"],
        "hooked_holds_per_second": median_of(runs, "hooked", "holds_per_second"),
        "hooked_share_of_full": median_of(runs, "hooked_share_of_full"),
        "webhook_lag_p95_s": hooks["lag_s"]["healthy"]["p95"],
        "max_import_ms": max(c["import_ms"] for c in cold.values()),
        "max_first_200_s": max(c["first_200_s"] for c in cold.values()),
    }
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "parameters": vars(args)
        | {"out": str(args.out.relative_to(ROOT)) if args.out.is_relative_to(ROOT) else str(args.out)},
        "targets": TARGETS,
        "medians": medians,
        "any_oversold": any(r["stored"]["oversold"] for r in runs),
        "promo_uses_max": ", ".join(f"{r['promo']['uses_after']}/{r['promo']['max_uses']}" for r in runs),
        "invariant_violations": sum(r["invariants"]["violations"] for r in runs),
        "most_writes_to_one_document": max(r["stored"]["most_writes_to_one_document"] for r in runs),
        "repetitions": runs,
        "payment_funnel": funnel,
        "door_rush": door,
        "cancel_rush": cancelled,
        "waitlist": line,
        "webhooks": hooks,
        "cold_start": cold,
    }
    print(table(report))
    args.out.mkdir(parents=True, exist_ok=True)
    name = f"{report['date'][:19].replace(':', '')}-{report['machine']['commit']}.json"
    for path in (args.out / name, args.out / "latest.json"):
        path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"report: {args.out / name}")
    return 0


async def _admin(base: str, sub: str = "bench_admin") -> str:
    async with aiohttp.ClientSession() as session:
        return await register(session, base, sub, "admin")


async def _endpoint(base: str, admin: str, url: str, events: list[str], name: str) -> str:
    async with aiohttp.ClientSession() as session:
        body = {"url": url, "events": events, "description": f"bench {name}"}
        status, answer = await call(session, "POST", f"{base}/v1/webhook-endpoints", admin, json=body)
    if status != 201:
        raise RuntimeError(f"endpoint registration answered {status}: {answer}")
    return str(answer["id"])


async def _endpoint_deleted(base: str, admin: str, endpoint_id: str) -> None:
    async with aiohttp.ClientSession() as session:
        status, answer = await call(session, "DELETE", f"{base}/v1/webhook-endpoints/{endpoint_id}", admin)
    if status != 204:
        raise RuntimeError(f"endpoint deletion answered {status}: {answer}")


if __name__ == "__main__":
    sys.exit(main())
