"""The hold path's count of taken tickets: fresh enough, one query at a time, local changes added."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from shared.services.counting import TakenCounter

NOW = datetime(2030, 1, 1, tzinfo=UTC)


class SlowCount:
    def __init__(self, value: int) -> None:
        self.value = value
        self.calls = 0
        self.release = threading.Event()

    def __call__(self, event_id: str, now: datetime) -> int:
        self.calls += 1
        self.release.wait(timeout=5)
        return self.value


def test_concurrent_callers_share_one_query() -> None:
    count = SlowCount(7)
    counter = TakenCounter(count)
    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(counter.taken("e", NOW))) for _ in range(10)]
    for t in threads:
        t.start()
    count.release.set()
    for t in threads:
        t.join(timeout=5)
    assert results == [7] * 10
    assert count.calls == 1


def test_a_recent_count_is_reused_and_local_holds_are_added() -> None:
    count = SlowCount(3)
    count.release.set()
    counter = TakenCounter(count, max_age=60)
    assert counter.taken("e", NOW) == 3
    counter.add("e", 2)
    counter.add("e", -1)
    assert counter.fresh("e") == 4
    assert counter.taken("e", NOW) == 4
    assert count.calls == 1


def test_a_stale_count_is_queried_again() -> None:
    count = SlowCount(3)
    count.release.set()
    counter = TakenCounter(count, max_age=0)
    counter.taken("e", NOW)
    count.value = 5
    assert counter.fresh("e") is None
    assert counter.taken("e", NOW) == 5
    assert count.calls == 2


def test_a_change_of_unknown_outcome_is_counted_again_not_guessed() -> None:
    """A hold whose commit answer was lost may or may not have taken tickets: the next use counts."""
    count = SlowCount(3)
    count.release.set()
    counter = TakenCounter(count, max_age=60)
    counter.taken("e", NOW)
    count.value = 5  # the lost commit went through
    counter.forget("e")
    assert counter.fresh("e") is None
    assert counter.taken("e", NOW) == 5
    assert count.calls == 2


def test_events_are_counted_separately() -> None:
    count = SlowCount(1)
    count.release.set()
    counter = TakenCounter(count, max_age=60)
    counter.taken("a", NOW)
    counter.add("a", 5)
    assert counter.fresh("b") is None
    assert counter.taken("b", NOW) == 1
