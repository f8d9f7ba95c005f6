"""Fault injection: a plan is parsed strictly, a seed fixes each site's decisions, off means never."""

from __future__ import annotations

import pytest

from shared.core import faults
from shared.core.errors import ValidationFailed
from shared.core.faults import Faults, Plan
from shared.core.settings import ConfigurationError, load_settings


@pytest.mark.parametrize("text", ["seed=1,rate=2", "rate=0.1", "seed=x", "seed=1,rate=often", "seed=1,when=now", ""])
def test_a_bad_plan_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="FAULT_PLAN"):
        Plan.parse(text)


def test_a_bad_plan_stops_the_process_at_start() -> None:
    with pytest.raises(ConfigurationError):
        load_settings({"PROFILE": "test", "GOOGLE_CLOUD_PROJECT": "demo-x", "FAULT_PLAN": "seed=1,rate=7"})


def test_a_plan_reads_its_seed_and_rate() -> None:
    assert Plan.parse("seed=7, rate=0.2") == Plan(7, 0.2)
    assert Plan.parse("seed=7") == Plan(7, 0.05)


def test_one_seed_gives_each_site_the_same_decisions() -> None:
    def decisions(seed: int) -> list[bool]:
        plan = Faults(Plan(seed, 0.3))
        return [plan.hit("crash_after_commit") for _ in range(200)]

    assert decisions(7) == decisions(7)
    assert decisions(7) != decisions(8)
    assert 30 < sum(decisions(7)) < 90  # about 30 %


def test_sites_draw_from_their_own_streams() -> None:
    """A site passed more often does not shift another site's decisions."""
    quiet, busy = Faults(Plan(3, 0.3)), Faults(Plan(3, 0.3))
    for _ in range(50):
        busy.hit("publish_duplicate")
    assert [quiet.hit("commit_unavailable") for _ in range(100)] == [busy.hit("commit_unavailable") for _ in range(100)]


def test_without_a_plan_nothing_happens() -> None:
    off = faults.configure(None)
    assert not any(off.hit(site) for site in faults.SITES for _ in range(100))
    off.crash_point("crash_after_commit")  # does not raise
    assert off.injected == {}


def test_a_crash_point_raises_and_counts() -> None:
    always = Faults(Plan(1, 1.0))
    with pytest.raises(faults.InjectedCrash):
        always.crash_point("crash_after_commit")
    assert always.injected["crash_after_commit"] == 1


def test_a_request_names_the_passage_of_a_site_where_its_fault_happens() -> None:
    plan = Faults(Plan(1, 0.0))  # nothing at random
    with plan.requested("crash_after_commit=2"):
        plan.crash_point("crash_after_commit")  # the first commit passes
        with pytest.raises(faults.InjectedCrash):
            plan.crash_point("crash_after_commit")
        plan.crash_point("crash_after_commit")  # once only
    plan.crash_point("crash_after_commit")  # and for this request only
    assert plan.injected == {"crash_after_commit": 1}


def test_requested_faults_need_a_plan() -> None:
    """Outside local and test there is no plan (the settings refuse one): the header does nothing."""
    off = Faults()
    with off.requested("crash_after_commit=1"):
        off.crash_point("crash_after_commit")
    assert not off.injected


@pytest.mark.parametrize("header", ["crash_after_commit", "crash=1", "crash_after_commit=0", "commit_unavailable=x"])
def test_a_bad_request_for_a_fault_is_a_validation_error(header: str) -> None:
    with pytest.raises(ValidationFailed), Faults(Plan(1, 0.0)).requested(header):
        pass
