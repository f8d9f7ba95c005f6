"""Seeded fault-injected load runs, judged over their whole history (dev/chaos.py).

`make test` runs one short seed: enough buyers and time for every fault site to fire and for each
kind of operation to meet faults. `make soak` runs twenty longer seeds through `python -m dev.chaos`.
"""

from __future__ import annotations

from pathlib import Path

from dev import chaos
from shared.core.faults import SITES

# Sites a short run may miss: each fires at 5 % of the times its code runs, and these run seldom.
RARE = {"expiry_twice", "expiry_late", "expiry_early", "expiry_never"}


def test_a_short_seeded_run_under_faults_keeps_every_promise(tmp_path: Path) -> None:
    report = chaos.run_seed(seed=1, buyers=60, seconds=25, rate=0.05, out=tmp_path)

    assert report["violations"] == [], "\n".join(report["violations"])
    fired = set(report["faults_injected"])
    assert set(SITES) - RARE <= fired, report["faults_injected"]
    outcomes = report["outcomes"]
    for kind in ("hold ok", "hold failed", "pay ok", "pay failed", "cancel ok"):  # every path was taken
        assert outcomes.get(kind, 0) > 0, outcomes
    assert report["webhooks_redelivered"] > 0
    history = Path(report["history"]).read_text().splitlines()
    assert len(history) == report["operations"]
