"""DomainEventDAL against the Firestore emulator: the stream of domain events.

Records are staged through a unit of work (their only writer), read back per ticketed event newest
first with a cursor that breaks ties on time by id, and relayed: unpublished() lists the records
with topics not yet relayed, mark_all_published() takes records off that list.

Each test uses its own ticketed-event id. Records meant for the relay sweep lie in the far future
(unpublished() is asked with a cutoff there): the stack's own sweep, which relays records older
than a few seconds every minute, never takes them while a test looks.
"""

from __future__ import annotations

import random
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.dal.stream import DomainEventDAL
from shared.dal.unit_of_work import FirestoreUnitOfWork
from shared.domain_events import BOOKING_CONFIRMED, PAYMENT_EVENTS, Actor, DomainEvent
from shared.models import new_id

BASE = datetime(2031, 6, 1, 18, 0, 0, 250000, tzinfo=UTC)


@pytest.fixture
def stream(firestore_client: Any) -> DomainEventDAL:
    return DomainEventDAL(firestore_client)


def scope() -> str:
    return f"ev-{secrets.token_hex(8)}"


def far_future() -> datetime:
    return datetime(random.randint(2300, 2900), random.randint(1, 12), random.randint(1, 28), 12, tzinfo=UTC)


def make(event_id: str, at: datetime, topics: tuple[str, ...] = (), sequence: int = 1, **overrides: Any) -> DomainEvent:
    object_id = f"b-{secrets.token_hex(6)}"
    fields: dict[str, Any] = {
        "id": new_id(),
        "action": "booking.confirmed" if topics else "booking.held",
        "object_type": "booking",
        "object_id": object_id,
        "event_id": event_id,
        "company_id": "co-1",
        "actor": Actor.user("u-1"),
        "sequence": sequence,
        "at": at,
        "changes": {},
        "topics": topics,
        "data": {"booking_id": object_id},
    }
    fields.update(overrides)
    return DomainEvent(**fields)


def commit(client: Any, stream: DomainEventDAL, *events: DomainEvent) -> None:
    uow = FirestoreUnitOfWork(client, stream)
    for event in events:
        uow.record(event)
    uow.commit()


def newest_first(events: list[DomainEvent]) -> list[str]:
    return [e.id for e in sorted(events, key=lambda e: (e.at, e.id), reverse=True)]


def all_pages(stream: DomainEventDAL, event_id: str, limit: int) -> list[list[str]]:
    pages: list[list[str]] = []
    after = None
    for _ in range(50):
        found, after = stream.of_event(event_id, limit, after)
        pages.append([e.id for e in found])
        if after is None:
            return pages
    raise AssertionError("the stream never ended")


# ---- of_event ------------------------------------------------------------------------------------


def test_a_staged_record_reads_back_as_it_was_recorded(firestore_client: Any, stream: DomainEventDAL) -> None:
    event_id = scope()
    event = make(
        event_id,
        BASE,
        (PAYMENT_EVENTS, BOOKING_CONFIRMED),
        sequence=7,
        action="payment.succeeded",
        object_type="payment",
        actor=Actor.provider("evt_123"),
        changes={"status": ["processing", "succeeded"], "transaction_id": [None, "pi_1"]},
        data={"payment_id": "pay-1", "booking_id": "b-1"},
    )
    commit(firestore_client, stream, event)

    assert stream.of_event(event_id, 10, None) == ([event], None)


def test_of_event_pages_newest_first_with_a_cursor_that_breaks_ties_by_id(
    firestore_client: Any, stream: DomainEventDAL
) -> None:
    event_id = scope()
    offsets = [0, 5, 5, 5, 9, 12, 12]  # seconds after BASE: two groups of ties
    made = [make(event_id, BASE + timedelta(seconds=s), sequence=i + 1) for i, s in enumerate(offsets)]
    commit(firestore_client, stream, *made[:4])
    commit(firestore_client, stream, *made[4:])
    other = make(scope(), BASE + timedelta(seconds=5))  # another event's record at a tied time
    commit(firestore_client, stream, other)
    expected = newest_first(made)

    first, cursor = stream.of_event(event_id, 3, None)
    assert [e.id for e in first] == expected[:3]
    assert cursor == (first[-1].at, first[-1].id)
    second, _ = stream.of_event(event_id, 3, cursor)
    assert [e.id for e in second] == expected[3:6]

    for limit in (1, 2, 3, 4, 7):
        pages = all_pages(stream, event_id, limit)
        assert [i for page in pages for i in page] == expected, limit  # each record once, in order
        assert all(0 < len(page) <= limit for page in pages)
    assert other.id not in {e.id for e in stream.of_event(event_id, 100, None)[0]}


def test_of_event_gives_no_cursor_when_the_page_holds_the_rest(firestore_client: Any, stream: DomainEventDAL) -> None:
    event_id = scope()
    made = [make(event_id, BASE + timedelta(minutes=i)) for i in range(3)]
    commit(firestore_client, stream, *made)

    found, cursor = stream.of_event(event_id, 3, None)
    assert [e.id for e in found] == newest_first(made)
    assert cursor is None  # exactly one page: no next cursor
    assert stream.of_event(event_id, 2, None)[1] is not None


def test_of_event_of_an_event_without_records_is_empty(stream: DomainEventDAL) -> None:
    assert stream.of_event(scope(), 10, None) == ([], None)


def test_a_cursor_stays_valid_when_newer_records_arrive(firestore_client: Any, stream: DomainEventDAL) -> None:
    """The audit log pages backwards in time: records written after the first page do not shift
    or repeat what the next pages hold."""
    event_id = scope()
    made = [make(event_id, BASE + timedelta(seconds=i)) for i in range(5)]
    commit(firestore_client, stream, *made)
    first, cursor = stream.of_event(event_id, 2, None)

    commit(firestore_client, stream, make(event_id, BASE + timedelta(hours=1)))  # newer than everything read

    rest: list[str] = []
    while cursor is not None:
        page, cursor = stream.of_event(event_id, 2, cursor)
        rest += [e.id for e in page]
    assert [e.id for e in first] + rest == newest_first(made)


# ---- unpublished / mark_all_published ------------------------------------------------------------


def test_unpublished_lists_records_with_topics_up_to_the_cutoff_until_marked(
    firestore_client: Any, stream: DomainEventDAL
) -> None:
    cutoff = far_future()
    event_id = scope()
    due = make(event_id, cutoff - timedelta(minutes=1), (PAYMENT_EVENTS,))
    at_cutoff = make(event_id, cutoff, (BOOKING_CONFIRMED,))
    quiet = make(event_id, cutoff - timedelta(minutes=1))  # no topics: nothing to relay
    young = make(event_id, cutoff + timedelta(seconds=1), (PAYMENT_EVENTS,))
    commit(firestore_client, stream, due, at_cutoff, quiet, young)

    # Every unrelayed record of the session is older than this cutoff: a limit above all of them.
    found = {e.id: e for e in stream.unpublished(cutoff, 10_000)}
    assert found[due.id] == due
    assert found[at_cutoff.id] == at_cutoff
    assert quiet.id not in found
    assert young.id not in found
    assert len(stream.unpublished(cutoff, 1)) == 1

    published_at = datetime(2031, 1, 1, tzinfo=UTC)
    stream.mark_all_published([due.id], published_at)

    left = {e.id for e in stream.unpublished(cutoff, 10_000)}
    assert due.id not in left
    assert at_cutoff.id in left
    doc = firestore_client.collection("domain_events").document(due.id).get().to_dict()
    assert doc["published_at"] == published_at
    # marking changes nothing the audit log shows
    assert {e.id: e for e in stream.of_event(event_id, 10, None)[0]}[due.id] == due


def test_marking_a_record_published_twice_is_harmless(firestore_client: Any, stream: DomainEventDAL) -> None:
    cutoff = far_future()
    event = make(scope(), cutoff, (PAYMENT_EVENTS,))
    commit(firestore_client, stream, event)

    stream.mark_all_published([event.id], datetime(2031, 1, 1, tzinfo=UTC))
    stream.mark_all_published([event.id], datetime(2031, 1, 2, tzinfo=UTC))  # the relay is at least once

    assert event.id not in {e.id for e in stream.unpublished(cutoff, 10_000)}
    assert stream.of_event(event.event_id, 10, None) == ([event], None)


def carried_by_a_booking(client: Any, stream: DomainEventDAL, event_id: str, at: datetime) -> DomainEvent:
    """A `booking.held` carried by the booking document it creates (id = booking id), as a hold does."""
    booking_id = f"b-{secrets.token_hex(6)}"
    held = make(event_id, at, id=booking_id, object_id=booking_id)
    uow = FirestoreUnitOfWork(client, stream)
    uow.create(f"bookings/{booking_id}", {"id": booking_id, "event_id": event_id, "booking_time": at})
    uow.record(held, inside=f"bookings/{booking_id}")
    uow.commit()
    return held


def test_events_carried_by_bookings_are_read_with_the_records_in_one_order(
    firestore_client: Any, stream: DomainEventDAL
) -> None:
    event_id = scope()
    carried = [carried_by_a_booking(firestore_client, stream, event_id, BASE + timedelta(seconds=s)) for s in (1, 3, 3)]
    own = [make(event_id, BASE + timedelta(seconds=s)) for s in (0, 2, 3, 4)]
    commit(firestore_client, stream, *own)

    assert all(not firestore_client.document(f"domain_events/{e.id}").get().exists for e in carried)
    for size in (1, 2, 3, 7, 8):
        seen: list[DomainEvent] = []
        after = None
        while True:
            page, after = stream.of_event(event_id, size, after)
            seen += page
            if after is None:
                break
        assert [e.id for e in seen] == newest_first(carried + own), size
    assert stream.of_event(event_id, 7, None)[0] == sorted(carried + own, key=lambda e: (e.at, e.id), reverse=True)


def test_an_event_is_carried_only_by_a_document_the_same_commit_creates(
    firestore_client: Any, stream: DomainEventDAL
) -> None:
    event_id = scope()
    held = make(event_id, BASE)
    uow = FirestoreUnitOfWork(firestore_client, stream)
    uow.record(held, inside=f"bookings/{held.object_id}")

    with pytest.raises(ValueError, match="carried"):
        uow.commit()

    assert stream.of_event(event_id, 10, None) == ([], None)
