"""Seeded fault injection for the fault-injected load runs (`FAULT_PLAN`; local and test only).

A plan reads `seed=7,rate=0.05`. Each fault site draws from its own random stream, seeded by the
plan's seed and the site's name, so one seed gives every site the same sequence of decisions on
every run; which request meets which decision still depends on timing, as in any concurrent run.
Without a plan (always, outside local and test: the settings refuse one) every check is False.

With a plan, one request can also name a fault for itself (`X-Fault-Inject: crash_after_commit=2`:
the second time this request passes that site): the model-based test crashes a chosen step at a
chosen boundary this way, and a plan of `rate=0` injects nothing else.

One module-wide plan, as FoundationDB's BUGGIFY: the sites sit deep in the data access and
messaging code, where passing a test-only object through every constructor would cost more
clarity than it buys. Each injected fault is logged (`fault injected: <site>`) and counted.
"""

from __future__ import annotations

import logging
import random
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from shared.core.errors import ValidationFailed

log = logging.getLogger("faults")

# Where faults happen. Each is drawn at `rate` whenever the code passes the site.
SITES = (
    "commit_unavailable",  # the commit succeeds; the caller sees UNAVAILABLE
    "crash_after_commit",  # the process stops after a commit, before the publish and the reply
    "provider_timeout",  # the provider did the call; its answer is lost (the caller retries it)
    "publish_duplicate",  # a Pub/Sub message is delivered two or three times, the copies late
    "expiry_early",  # an expiry task fires before the hold ran out
    "expiry_late",  # an expiry task fires well after it
    "expiry_twice",  # two expiry tasks for one hold
    "expiry_never",  # no expiry task at all (the sweep expires the hold)
)


class InjectedCrash(Exception):
    """The process stopped here: nothing after this point of the request runs. The HTTP layer
    answers 502, as a load balancer does for an instance that died mid-request. Not an AppError:
    it is no answer of the API, and no code of its contract."""


@dataclass(frozen=True)
class Plan:
    seed: int
    rate: float

    @classmethod
    def parse(cls, text: str) -> Plan:
        """`seed=N,rate=R` (rate 0..1, default 0.05); ValueError on anything else."""
        fields = dict(part.split("=", 1) for part in text.replace(" ", "").split(",") if "=" in part)
        unknown = set(fields) - {"seed", "rate"}
        if unknown or "seed" not in fields:
            raise ValueError(f"FAULT_PLAN is 'seed=N,rate=R', not {text!r}")
        try:
            seed, rate = int(fields["seed"]), float(fields.get("rate", "0.05"))
        except ValueError:
            raise ValueError(f"FAULT_PLAN is 'seed=N,rate=R', not {text!r}") from None
        if not 0 <= rate <= 1:
            raise ValueError("FAULT_PLAN rate is between 0 and 1")
        return cls(seed, rate)


# The faults the current request asked for: site -> how many more passages before it happens.
_asked: ContextVar[dict[str, int] | None] = ContextVar("faults_asked", default=None)


def parse_request(text: str) -> dict[str, int]:
    """`site=N[,site=N]` (N >= 1, the Nth passage of this request); ValueError on anything else."""
    asked: dict[str, int] = {}
    for part in text.replace(" ", "").split(","):
        site, _, nth = part.partition("=")
        if site not in SITES or not nth.isdigit() or not 1 <= int(nth) <= 10:
            raise ValueError(f"a requested fault is 'site=N' with a site of {SITES} and N in 1..10, not {part!r}")
        asked[site] = int(nth)
    return asked


class Faults:
    def __init__(self, plan: Plan | None = None) -> None:
        self.plan = plan
        self.injected: Counter[str] = Counter()
        self._streams = {site: random.Random(f"{plan.seed}:{site}") for site in SITES} if plan else {}
        self._lock = threading.Lock()

    def hit(self, site: str) -> bool:
        """Whether the fault at `site` happens this time."""
        if self.plan is None:
            return False
        asked = _asked.get()
        if asked and site in asked:
            asked[site] -= 1
            if asked[site] == 0:
                del asked[site]
                with self._lock:
                    self.injected[site] += 1
                log.warning("fault injected (requested): %s", site)
                return True
        with self._lock:
            happens = self._streams[site].random() < self.plan.rate
            if happens:
                self.injected[site] += 1
        if happens:
            log.warning("fault injected: %s", site)
        return happens

    def uniform(self, site: str, low: float, high: float) -> float:
        """A number from the site's stream (how late, how many copies)."""
        if self.plan is None:
            return low
        with self._lock:
            return self._streams[site].uniform(low, high)

    def crash_point(self, site: str) -> None:
        if self.hit(site):
            raise InjectedCrash(f"fault injection: {site}")

    @contextmanager
    def requested(self, header: str | None) -> Iterator[None]:
        """Within a request: the faults its `X-Fault-Inject` header names (only under a plan)."""
        if self.plan is None or not header:
            yield
            return
        try:
            asked = parse_request(header)
        except ValueError as exc:
            raise ValidationFailed(str(exc), [{"field": "X-Fault-Inject", "message": str(exc)}]) from None
        token = _asked.set(asked)
        try:
            yield
        finally:
            _asked.reset(token)


FAULTS = Faults()


def configure(plan: str | None) -> Faults:
    """Install the process's plan (bootstrap calls this once, from the settings)."""
    global FAULTS
    FAULTS = Faults(Plan.parse(plan) if plan else None)
    return FAULTS


def current() -> Faults:
    return FAULTS
