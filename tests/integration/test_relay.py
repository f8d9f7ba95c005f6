"""The outbox relay against the Pub/Sub and Firestore emulators: a commit's events are published
at once and marked in one write; an event whose publish failed stays on the sweep's list.

Each test publishes to topics of its own, read through a pull subscription, and its records lie
in the far future, so the stack's every-minute sweep never relays them while the test looks.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.core.settings import load_settings
from shared.dal.stream import DomainEventDAL
from shared.dal.unit_of_work import FirestoreUnitOfWork
from shared.domain_events import Actor, DomainEvent
from shared.messaging import OutboxRelay, PubSubPublisher
from shared.models import new_id

FAR = datetime(2700, 1, 1, tzinfo=UTC)


@pytest.fixture
def topic(stack_env: dict[str, str]) -> Iterator[tuple[str, Any, str]]:
    """A fresh topic with a pull subscription: (topic name, subscriber client, subscription path)."""
    from google.cloud import pubsub_v1  # type: ignore[attr-defined]

    project = stack_env["GOOGLE_CLOUD_PROJECT"]
    name = f"relay-test-{secrets.token_hex(4)}"
    publisher = pubsub_v1.PublisherClient()
    subscriber = pubsub_v1.SubscriberClient()
    topic_path = publisher.topic_path(project, name)
    subscription = subscriber.subscription_path(project, name + "-pull")
    publisher.create_topic(name=topic_path)
    subscriber.create_subscription(name=subscription, topic=topic_path)
    yield name, subscriber, subscription
    subscriber.delete_subscription(subscription=subscription)
    publisher.delete_topic(topic=topic_path)


def event(topics: tuple[str, ...], event_id: str) -> DomainEvent:
    booking_id = f"b-{secrets.token_hex(6)}"
    return DomainEvent(
        id=new_id(),
        action="booking.confirmed",
        object_type="booking",
        object_id=booking_id,
        event_id=event_id,
        company_id="co-1",
        actor=Actor.system("test"),
        sequence=1,
        at=FAR,
        changes={},
        topics=topics,
        data={"booking_id": booking_id},
    )


def pulled(subscriber: Any, subscription: str, expected: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for _ in range(20):
        response = subscriber.pull(subscription=subscription, max_messages=100, timeout=5)
        if response.received_messages:
            subscriber.acknowledge(subscription=subscription, ack_ids=[m.ack_id for m in response.received_messages])
        found += [json.loads(m.message.data) for m in response.received_messages]
        if len(found) >= expected:
            break
    return found


def test_a_commits_events_are_published_and_marked_together_and_a_failed_one_waits_for_the_sweep(
    firestore_client: Any, stack_env: dict[str, str], topic: tuple[str, Any, str]
) -> None:
    name, subscriber, subscription = topic
    stream = DomainEventDAL(firestore_client)
    relay = OutboxRelay(stream, PubSubPublisher(load_settings()))
    scope = f"ev-{secrets.token_hex(8)}"
    good = [event((name,), scope) for _ in range(30)]
    lost = event((f"no-such-topic-{secrets.token_hex(4)}",), scope)
    uow = FirestoreUnitOfWork(firestore_client, stream)  # no relay: this test relays by hand
    for each in [*good, lost]:
        uow.record(each)
    uow.commit()
    due = {e.id for e in stream.unpublished(FAR, 10_000)}
    assert {e.id for e in good} | {lost.id} <= due

    assert relay.deliver_pending([*good, lost]) == len(good)

    messages = pulled(subscriber, subscription, len(good))
    assert sorted(m["message_id"] for m in messages) == sorted(e.id for e in good)
    left = {e.id for e in stream.unpublished(FAR, 10_000)}
    assert not {e.id for e in good} & left
    assert lost.id in left  # the sweep publishes it once its topic exists
