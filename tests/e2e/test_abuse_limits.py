"""Abuse limits on holds: one buyer may make at most MAX_HOLDS_PER_BUYER_PER_MINUTE holds of one event
per minute (default 5), on top of the cap on unpaid bookings (default 1). A bot that holds and
cancels in a loop, or fires requests in parallel, never gets past either cap."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from dev.stack import Stack
from tests.e2e.bookings_helpers import Http, assert_problem, code_of, stored_bookings, tally

Person = tuple[str, dict[str, Any]]

HOLDS_PER_MINUTE = 5  # the default


@pytest.fixture(scope="module")
def http(stack: Stack) -> Http:
    return Http(stack.url)


@pytest.fixture(scope="module")
def admin(http: Http) -> Person:
    return http.register("admin")


def test_holding_and_cancelling_in_a_loop_is_rate_limited(http: Http, admin: Person, firestore_client: Any) -> None:
    event = http.create_event(admin[0], capacity=50)
    other_event = http.create_event(admin[0], capacity=50)
    token, user = http.register()
    for _ in range(HOLDS_PER_MINUTE - 1):
        response = http.hold(token, event["id"], 1)
        assert response.status_code == 201, response.text
        assert http.cancel(token, response.json()["id"]).status_code == 200

    # the last hold of the minute, fired ten times at once: one gets it, nobody gets past the caps
    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(lambda _: http.hold(token, event["id"], 1), range(10)))
    counts = tally(answers)
    assert counts["201"] == 1, counts
    assert set(counts) <= {"201", "409 booking_limit_reached", "429 rate_limited"}, counts
    [won] = [a.json() for a in answers if a.status_code == 201]
    assert http.cancel(token, won["id"]).status_code == 200

    refused = http.hold(token, event["id"], 1)

    body = assert_problem(refused, 429, "rate_limited")
    assert 1 <= int(refused.headers["Retry-After"]) <= 60, refused.headers
    assert "per minute" in body["detail"]
    mine = [b for b in stored_bookings(firestore_client, event["id"]).values() if b["user_id"] == user["id"]]
    assert len(mine) == HOLDS_PER_MINUTE, "a refused hold stores nothing"
    assert code_of(http.hold(token, other_event["id"], 1)) == "201", "the limit is per event"
    other_token, _ = http.register()
    assert code_of(http.hold(other_token, event["id"], 1)) == "201", "and per buyer"
