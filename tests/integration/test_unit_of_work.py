"""FirestoreUnitOfWork against the Firestore emulator: one batch, all or nothing.

Updates and deletes carry the revision (update time) their caller read; creates fail on an existing
document. The recorded domain events are created in `domain_events` in the same commit, so they
exist exactly when the change they describe does. Only after a successful commit are the events
with topics handed to the relay.

The documents live in a scratch collection under fresh ids: no other test sees them.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.dal.records import ConcurrentUpdate, DocumentExists, Revision
from shared.dal.stream import DomainEventDAL
from shared.dal.unit_of_work import FirestoreUnitOfWork
from shared.domain_events import BOOKING_CONFIRMED, PAYMENT_EVENTS, Actor, DomainEvent
from shared.models import new_id

SCRATCH = "uow_scratch"
AT = datetime(2031, 2, 3, 4, 5, 6, 789000, tzinfo=UTC)


class Relay:
    """Records each call and, at the moment of the call, whether the events were already stored."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls: list[list[DomainEvent]] = []
        self.stored_when_called: list[list[bool]] = []

    def __call__(self, events: list[DomainEvent]) -> None:
        self.calls.append(list(events))
        self.stored_when_called.append([stored(self.client, f"domain_events/{e.id}") is not None for e in events])


@pytest.fixture
def stream(firestore_client: Any) -> DomainEventDAL:
    return DomainEventDAL(firestore_client)


@pytest.fixture
def relay(firestore_client: Any) -> Relay:
    return Relay(firestore_client)


@pytest.fixture
def uow(firestore_client: Any, stream: DomainEventDAL, relay: Relay) -> FirestoreUnitOfWork:
    return FirestoreUnitOfWork(firestore_client, stream, relay)


def path() -> str:
    return f"{SCRATCH}/doc-{secrets.token_hex(8)}"


def stored(client: Any, doc_path: str) -> dict[str, Any] | None:
    snap = client.document(doc_path).get()
    return snap.to_dict() if snap.exists else None


def seed(client: Any, data: dict[str, Any]) -> tuple[str, Revision]:
    """A document written outside any unit of work, and its revision as read."""
    doc_path = path()
    client.document(doc_path).set(data)
    return doc_path, Revision(client.document(doc_path).get().update_time)


def update_time(client: Any, doc_path: str) -> Any:
    return client.document(doc_path).get().update_time


def domain_event(event_id: str, topics: tuple[str, ...] = (), action: str = "booking.held") -> DomainEvent:
    object_id = f"b-{secrets.token_hex(6)}"
    return DomainEvent(
        id=new_id(),
        action=action,
        object_type="booking",
        object_id=object_id,
        event_id=event_id,
        company_id="co-1",
        actor=Actor.user("u-1"),
        sequence=1,
        at=AT,
        changes={"status": [None, "pending_payment"]},
        topics=topics,
        data={"booking_id": object_id},
    )


def event_scope() -> str:
    return f"ev-{secrets.token_hex(8)}"


def test_commit_writes_every_staged_change_and_its_domain_events(
    uow: FirestoreUnitOfWork, firestore_client: Any, stream: DomainEventDAL, relay: Relay
) -> None:
    changed, changed_at = seed(firestore_client, {"a": 1, "b": "keep"})
    deleted, deleted_at = seed(firestore_client, {"x": 1})
    created = path()
    scope = event_scope()
    quiet, announced = domain_event(scope), domain_event(scope, (PAYMENT_EVENTS,))

    uow.create(created, {"n": 7})
    uow.update(changed, {"a": 2}, since=changed_at)
    uow.delete(deleted, since=deleted_at)
    uow.record(quiet)
    uow.record(announced)
    returned = uow.commit()

    assert returned == [quiet, announced]
    assert stored(firestore_client, created) == {"n": 7}
    assert stored(firestore_client, changed) == {"a": 2, "b": "keep"}  # an update changes the fields named
    assert stored(firestore_client, deleted) is None
    page, cursor = stream.of_event(scope, 10, None)
    assert sorted(page, key=lambda e: e.id) == sorted([quiet, announced], key=lambda e: e.id)  # read back whole
    assert cursor is None
    # the events and the change were one commit: they carry one update time
    times = {update_time(firestore_client, p) for p in (created, changed, *(f"domain_events/{e.id}" for e in page))}
    assert len(times) == 1
    assert relay.calls == [[announced]]


def test_updates_and_deletes_without_a_revision_are_unconditional(
    uow: FirestoreUnitOfWork, firestore_client: Any
) -> None:
    changed, _ = seed(firestore_client, {"a": 1})
    deleted, _ = seed(firestore_client, {"x": 1})
    firestore_client.document(changed).update({"a": 5})  # changed since: no precondition, no matter

    uow.update(changed, {"a": 2})
    uow.delete(deleted)
    uow.commit()

    assert stored(firestore_client, changed) == {"a": 2}
    assert stored(firestore_client, deleted) is None


def test_a_stale_revision_fails_the_commit_and_writes_nothing(
    uow: FirestoreUnitOfWork, firestore_client: Any, relay: Relay
) -> None:
    fresh, fresh_at = seed(firestore_client, {"a": 1})
    raced, raced_at = seed(firestore_client, {"a": 1})
    firestore_client.document(raced).update({"a": 99})  # someone wrote it after we read it
    raced_time = update_time(firestore_client, raced)
    fresh_time = update_time(firestore_client, fresh)
    created = path()
    event = domain_event(event_scope(), (PAYMENT_EVENTS,))

    uow.update(fresh, {"a": 2}, since=fresh_at)
    uow.create(created, {"n": 1})
    uow.update(raced, {"a": 2}, since=raced_at)
    uow.record(event)
    with pytest.raises(ConcurrentUpdate):
        uow.commit()

    assert stored(firestore_client, fresh) == {"a": 1}
    assert update_time(firestore_client, fresh) == fresh_time
    assert stored(firestore_client, raced) == {"a": 99}
    assert update_time(firestore_client, raced) == raced_time
    assert stored(firestore_client, created) is None
    assert stored(firestore_client, f"domain_events/{event.id}") is None
    assert relay.calls == []


def test_a_delete_with_a_stale_revision_fails_and_keeps_the_document(
    uow: FirestoreUnitOfWork, firestore_client: Any, relay: Relay
) -> None:
    doc, read_at = seed(firestore_client, {"a": 1})
    firestore_client.document(doc).update({"a": 2})
    created = path()
    event = domain_event(event_scope(), (BOOKING_CONFIRMED,))

    uow.create(created, {"n": 1})
    uow.delete(doc, since=read_at)
    uow.record(event)
    with pytest.raises(ConcurrentUpdate):
        uow.commit()

    assert stored(firestore_client, doc) == {"a": 2}
    assert stored(firestore_client, created) is None
    assert stored(firestore_client, f"domain_events/{event.id}") is None
    assert relay.calls == []


@pytest.mark.parametrize("with_revision", [True, False], ids=["since-read", "unconditional"])
def test_an_update_of_a_document_gone_since_read_fails_and_writes_nothing(
    uow: FirestoreUnitOfWork, firestore_client: Any, relay: Relay, with_revision: bool
) -> None:
    doc, read_at = seed(firestore_client, {"a": 1})
    firestore_client.document(doc).delete()
    created = path()
    event = domain_event(event_scope(), (PAYMENT_EVENTS,))

    uow.create(created, {"n": 1})
    uow.update(doc, {"a": 2}, since=read_at if with_revision else None)
    uow.record(event)
    with pytest.raises(ConcurrentUpdate):
        uow.commit()

    assert stored(firestore_client, doc) is None  # not recreated
    assert stored(firestore_client, created) is None
    assert stored(firestore_client, f"domain_events/{event.id}") is None
    assert relay.calls == []


def test_creating_an_existing_document_is_document_exists_and_writes_nothing(
    uow: FirestoreUnitOfWork, firestore_client: Any, relay: Relay
) -> None:
    existing, _ = seed(firestore_client, {"owner": "first"})
    existing_time = update_time(firestore_client, existing)
    other, other_at = seed(firestore_client, {"a": 1})
    created = path()
    event = domain_event(event_scope(), (PAYMENT_EVENTS,))

    uow.create(created, {"n": 1})
    uow.update(other, {"a": 2}, since=other_at)
    uow.create(existing, {"owner": "second"})
    uow.record(event)
    with pytest.raises(DocumentExists):
        uow.commit()

    assert stored(firestore_client, existing) == {"owner": "first"}
    assert update_time(firestore_client, existing) == existing_time
    assert stored(firestore_client, other) == {"a": 1}
    assert stored(firestore_client, created) is None
    assert stored(firestore_client, f"domain_events/{event.id}") is None
    assert relay.calls == []


def test_a_domain_event_is_recorded_once_a_second_commit_of_it_writes_nothing(
    firestore_client: Any, stream: DomainEventDAL, relay: Relay
) -> None:
    scope = event_scope()
    event = domain_event(scope)
    first = FirestoreUnitOfWork(firestore_client, stream, relay)
    first.record(event)
    first.commit()

    created = path()
    second = FirestoreUnitOfWork(firestore_client, stream, relay)
    second.create(created, {"n": 1})
    second.record(event)
    with pytest.raises(DocumentExists):
        second.commit()

    assert stored(firestore_client, created) is None
    assert stream.of_event(scope, 10, None) == ([event], None)


def test_the_relay_gets_only_events_with_topics_and_only_after_they_are_stored(
    uow: FirestoreUnitOfWork, firestore_client: Any, relay: Relay
) -> None:
    scope = event_scope()
    quiet = domain_event(scope)
    paid = domain_event(scope, (PAYMENT_EVENTS,), "payment.succeeded")
    confirmed = domain_event(scope, (BOOKING_CONFIRMED,), "booking.confirmed")
    created = path()

    uow.create(created, {"n": 1})
    uow.record(paid)
    uow.record(quiet)
    uow.record(confirmed)
    returned = uow.commit()

    assert returned == [paid, quiet, confirmed]
    assert relay.calls == [[paid, confirmed]]  # once, in the order recorded
    assert relay.stored_when_called == [[True, True]]  # the commit came first
    assert all(stored(firestore_client, f"domain_events/{e.id}") is not None for e in returned)


def test_the_relay_is_not_called_without_events_with_topics(
    firestore_client: Any, stream: DomainEventDAL, relay: Relay
) -> None:
    quiet = FirestoreUnitOfWork(firestore_client, stream, relay)
    quiet.record(domain_event(event_scope()))
    quiet.commit()
    nothing = FirestoreUnitOfWork(firestore_client, stream, relay)
    created = path()
    nothing.create(created, {"n": 1})
    assert nothing.commit() == []

    assert stored(firestore_client, created) == {"n": 1}
    assert relay.calls == []


def test_without_a_relay_events_with_topics_are_still_stored(firestore_client: Any, stream: DomainEventDAL) -> None:
    scope = event_scope()
    event = domain_event(scope, (PAYMENT_EVENTS,))
    uow = FirestoreUnitOfWork(firestore_client, stream)
    uow.record(event)

    assert uow.commit() == [event]
    assert stream.of_event(scope, 10, None) == ([event], None)


def test_a_relay_that_fails_after_the_commit_leaves_the_change_for_the_sweep(
    firestore_client: Any, stream: DomainEventDAL
) -> None:
    def broken(events: list[DomainEvent]) -> None:
        raise RuntimeError("Pub/Sub is down")

    scope = event_scope()
    event = domain_event(scope, (PAYMENT_EVENTS,), "payment.succeeded")
    created = path()
    uow = FirestoreUnitOfWork(firestore_client, stream, broken)
    uow.create(created, {"n": 1})
    uow.record(event)

    assert uow.commit() == [event]  # the change is made: no error reaches the caller

    assert stored(firestore_client, created) == {"n": 1}
    assert event.id in {e.id for e in stream.unpublished(event.at, 500)}


def test_a_unit_of_work_commits_once(uow: FirestoreUnitOfWork) -> None:
    created = path()
    uow.create(created, {"n": 1})
    uow.commit()

    with pytest.raises(RuntimeError):
        uow.commit()
