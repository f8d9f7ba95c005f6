"""Seeded fault injection for the fault-injected load runs (`FAULT_PLAN`; local and test only).

A plan reads `seed=7,rate=0.05`. Each fault site draws from its own random stream, seeded by the
plan's seed and the site's name, so one seed gives every site the same sequence of decisions on
every run; which request meets which decision still depends on timing, as in any concurrent run.
Without a plan (always, outside local and test: the settings refuse one) every check is False.

One module-wide plan, as FoundationDB's BUGGIFY: the sites sit deep in the data access and
messaging code, where passing a test-only object through every constructor would cost more
clarity than it buys. Each injected fault is logged (`fault injected: <site>`) and counted.
"""

from __future__ import annotations

import logging
import random
import threading
from collections import Counter
from dataclasses import dataclass

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


FAULTS = Faults()


def configure(plan: str | None) -> Faults:
    """Install the process's plan (bootstrap calls this once, from the settings)."""
    global FAULTS
    FAULTS = Faults(Plan.parse(plan) if plan else None)
    return FAULTS


def current() -> Faults:
    return FAULTS
