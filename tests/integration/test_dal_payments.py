"""PaymentDAL and ProviderEventDAL against the Firestore emulator, through the unit of work.

A provider event is taken in once: its record in `webhook_events` is a create in the same commit
as the payment's change, so a second delivery's commit fails whole. Payments are created once and
changed only from the revision read.

Each test uses fresh ids (and its own company). Payments meant to look stuck lie in the far future
(the DAL is asked with a cutoff there): the stack's reconciler, which repairs really stuck payments
every minute, never touches them while a test looks.
"""

from __future__ import annotations

import random
import secrets
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.dal.payments import PaymentDAL
from shared.dal.provider_events import ProviderEventDAL
from shared.dal.records import ConcurrentUpdate, DocumentExists, Revision
from shared.dal.stream import DomainEventDAL
from shared.dal.unit_of_work import FirestoreUnitOfWork
from shared.domain_events import PAYMENT_EVENTS, Actor, change
from shared.models import Payment, PaymentStatus, new_id

CREATED = datetime(2031, 3, 1, 10, 0, 0, 123000, tzinfo=UTC)


@pytest.fixture
def payments(firestore_client: Any) -> PaymentDAL:
    return PaymentDAL(firestore_client)


@pytest.fixture
def provider_events(firestore_client: Any) -> ProviderEventDAL:
    return ProviderEventDAL(firestore_client)


@pytest.fixture
def stream(firestore_client: Any) -> DomainEventDAL:
    return DomainEventDAL(firestore_client)


def new_uow(client: Any) -> FirestoreUnitOfWork:
    return FirestoreUnitOfWork(client, DomainEventDAL(client))


def rid(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(8)}"


def make_payment(**overrides: Any) -> Payment:
    fields: dict[str, Any] = {
        "id": new_id(),
        "booking_id": rid("b"),
        "event_id": rid("ev"),
        "company_id": rid("co"),
        "user_id": rid("u"),
        "attempt": 1,
        "amount": 5000,
        "currency": "EUR",
        "status": "processing",
        "provider": "stripe",
        "idempotency_key": rid("pay-key"),
        "created_at": CREATED,
        "updated_at": CREATED,
    }
    fields.update(overrides)
    return Payment(**fields)


def create(client: Any, payments: PaymentDAL, *created: Payment) -> None:
    uow = new_uow(client)
    for payment in created:
        payments.stage_create(uow, payment)
    uow.commit()


def read(payments: PaymentDAL, payment_id: str) -> tuple[Payment, Revision]:
    found = payments.get(payment_id)
    assert found is not None
    return found


def far_future() -> datetime:
    return datetime(random.randint(2300, 2900), random.randint(1, 12), random.randint(1, 28), 12, tzinfo=UTC)


# ---- ProviderEventDAL: each provider event is taken in once ------------------------------------


def test_seen_after_the_commit_that_records_it(firestore_client: Any, provider_events: ProviderEventDAL) -> None:
    event_id, payment_id = rid("evt"), rid("pay")
    assert provider_events.seen(event_id) is False

    uow = new_uow(firestore_client)
    provider_events.stage_seen(uow, event_id, payment_id, CREATED)
    assert provider_events.seen(event_id) is False  # staged is not seen: nothing is written before the commit
    uow.commit()

    assert provider_events.seen(event_id) is True
    doc = firestore_client.collection("webhook_events").document(event_id).get().to_dict()
    assert doc == {"payment_id": payment_id, "received_at": CREATED}


def test_a_provider_event_without_a_payment_is_recorded_too(
    firestore_client: Any, provider_events: ProviderEventDAL
) -> None:
    event_id = rid("evt")
    uow = new_uow(firestore_client)
    provider_events.stage_seen(uow, event_id, None, CREATED)
    uow.commit()
    assert provider_events.seen(event_id) is True
    assert firestore_client.collection("webhook_events").document(event_id).get().get("payment_id") is None


def deliver(
    client: Any,
    payments: PaymentDAL,
    provider_events: ProviderEventDAL,
    event_id: str,
    found: tuple[Payment, Revision],
    status: PaymentStatus,
) -> tuple[FirestoreUnitOfWork, Payment]:
    """What the intake stages for one delivery: the event's record, the payment's change from the
    revision read, and its domain event."""
    current, read_at = found
    uow = new_uow(client)
    provider_events.stage_seen(uow, event_id, current.id, CREATED)
    after = current.moved_to(status, CREATED + timedelta(seconds=1), transaction_id="pi_1")
    payments.stage_update(uow, after, since=read_at)
    actor = Actor.provider(event_id)
    uow.record(change(status, after, actor, after.updated_at, before=current, topics=(PAYMENT_EVENTS,)))
    return uow, after


def test_a_second_delivery_of_a_provider_event_commits_nothing(
    firestore_client: Any, payments: PaymentDAL, provider_events: ProviderEventDAL, stream: DomainEventDAL
) -> None:
    """The second delivery found the event unseen, but read the payment only after the first
    delivery's commit: only the event's record stands in its way, and its commit fails whole."""
    payment = make_payment()
    create(firestore_client, payments, payment)
    event_id = rid("evt")
    assert not provider_events.seen(event_id)  # both deliveries checked here

    first, won = deliver(firestore_client, payments, provider_events, event_id, read(payments, payment.id), "succeeded")
    first.commit()
    second, _ = deliver(firestore_client, payments, provider_events, event_id, read(payments, payment.id), "canceled")
    with pytest.raises(DocumentExists):
        second.commit()

    assert provider_events.seen(event_id)
    assert read(payments, payment.id)[0] == won
    assert [e.action for e in stream.of_event(payment.event_id, 10, None)[0]] == ["payment.succeeded"]


def test_two_deliveries_that_read_the_same_payment_commit_once(
    firestore_client: Any, payments: PaymentDAL, provider_events: ProviderEventDAL, stream: DomainEventDAL
) -> None:
    """Both deliveries read the payment before either commits: the second commit meets the event's
    record and a stale payment, and fails whole (as either conflict: the intake treats both)."""
    payment = make_payment()
    create(firestore_client, payments, payment)
    event_id = rid("evt")
    both = read(payments, payment.id)

    first, won = deliver(firestore_client, payments, provider_events, event_id, both, "succeeded")
    second, _ = deliver(firestore_client, payments, provider_events, event_id, both, "canceled")
    first.commit()
    with pytest.raises((DocumentExists, ConcurrentUpdate)):
        second.commit()

    assert read(payments, payment.id)[0] == won
    assert [e.action for e in stream.of_event(payment.event_id, 10, None)[0]] == ["payment.succeeded"]


def test_recording_a_seen_provider_event_again_fails_even_alone(
    firestore_client: Any, provider_events: ProviderEventDAL
) -> None:
    event_id = rid("evt")
    first = new_uow(firestore_client)
    provider_events.stage_seen(first, event_id, "pay-1", CREATED)
    first.commit()

    again = new_uow(firestore_client)
    provider_events.stage_seen(again, event_id, "pay-2", CREATED + timedelta(minutes=1))
    with pytest.raises(DocumentExists):
        again.commit()
    doc = firestore_client.collection("webhook_events").document(event_id).get().to_dict()
    assert doc == {"payment_id": "pay-1", "received_at": CREATED}  # the first record is kept as it was


# ---- PaymentDAL: create, get, compare-and-set updates ------------------------------------------


def test_create_then_get_returns_the_same_payment_and_its_revision(firestore_client: Any, payments: PaymentDAL) -> None:
    payment = make_payment(
        transaction_id="pi_123",
        client_secret="pi_123_secret",
        payment_method="pm_card_visa",
        refund_started_at=CREATED + timedelta(minutes=5),
        seq=3,
    )
    plain = make_payment(status="creating")
    create(firestore_client, payments, payment, plain)

    for expected in (payment, plain):
        stored, revision = read(payments, expected.id)
        assert stored == expected
        assert revision == Revision(firestore_client.collection("payments").document(expected.id).get().update_time)
    doc = firestore_client.collection("payments").document(payment.id).get().to_dict()
    assert doc["needs_attention"] is False


def test_get_unknown_is_none(payments: PaymentDAL) -> None:
    assert payments.get(rid("missing")) is None


def test_create_with_an_existing_id_is_document_exists_and_keeps_the_original(
    firestore_client: Any, payments: PaymentDAL
) -> None:
    payment = make_payment()
    create(firestore_client, payments, payment)
    _, before = read(payments, payment.id)

    with pytest.raises(DocumentExists):
        create(firestore_client, payments, replace(payment, amount=1))

    stored, after = read(payments, payment.id)
    assert stored == payment
    assert after == before


def test_update_with_the_current_revision_writes(firestore_client: Any, payments: PaymentDAL) -> None:
    payment = make_payment()
    create(firestore_client, payments, payment)
    current, read_at = read(payments, payment.id)
    flagged = current.flagged("provider amount does not match", CREATED + timedelta(minutes=1))

    uow = new_uow(firestore_client)
    payments.stage_update(uow, flagged, since=read_at)
    uow.commit()

    stored, revision = read(payments, payment.id)
    assert stored == flagged
    assert stored.seq == 2
    assert revision.at > read_at.at
    doc = firestore_client.collection("payments").document(payment.id).get().to_dict()
    assert doc["needs_attention"] is True


def test_update_with_a_stale_revision_is_concurrent_update_and_writes_nothing(
    firestore_client: Any, payments: PaymentDAL
) -> None:
    payment = make_payment()
    create(firestore_client, payments, payment)
    current, stale = read(payments, payment.id)
    winner = current.moved_to("succeeded", CREATED + timedelta(minutes=1), transaction_id="pi_9")
    uow = new_uow(firestore_client)
    payments.stage_update(uow, winner, since=stale)
    uow.commit()
    _, winner_revision = read(payments, payment.id)

    loser = new_uow(firestore_client)
    payments.stage_update(loser, current.moved_to("failed", CREATED + timedelta(minutes=2)), since=stale)
    with pytest.raises(ConcurrentUpdate):
        loser.commit()

    stored, revision = read(payments, payment.id)
    assert stored == winner
    assert revision == winner_revision


# ---- queries -------------------------------------------------------------------------------------


def test_by_company_needing_attention_finds_only_that_companys_flagged_payments(
    firestore_client: Any, payments: PaymentDAL
) -> None:
    company = rid("co")
    flagged = [make_payment(company_id=company, attention=f"look {i}") for i in range(3)]
    fine = make_payment(company_id=company)
    elsewhere = make_payment(attention="another company's problem")
    create(firestore_client, payments, *flagged, fine, elsewhere)

    found = payments.by_company_needing_attention(company, 10)
    assert sorted(found, key=lambda p: p.id) == sorted(flagged, key=lambda p: p.id)
    assert len(payments.by_company_needing_attention(company, 2)) == 2

    # once the attention is cleared, it is no longer listed
    current, read_at = read(payments, flagged[0].id)
    uow = new_uow(firestore_client)
    payments.stage_update(uow, current.changed(CREATED, attention=None), since=read_at)
    uow.commit()
    assert {p.id for p in payments.by_company_needing_attention(company, 10)} == {p.id for p in flagged[1:]}


def test_stuck_finds_payments_in_the_statuses_not_updated_since_the_cutoff(
    firestore_client: Any, payments: PaymentDAL
) -> None:
    cutoff = far_future()
    old = cutoff - timedelta(hours=1)
    processing = make_payment(status="processing", updated_at=old)
    creating = make_payment(status="creating", updated_at=cutoff)  # at the cutoff: included
    done = make_payment(status="succeeded", updated_at=old)
    recent = make_payment(status="processing", updated_at=cutoff + timedelta(seconds=1))
    create(firestore_client, payments, processing, creating, done, recent)

    # Every payment of the session in those statuses was updated before this cutoff: a limit above all.
    found = {p.id: p for p in payments.stuck(["processing", "creating"], cutoff, 10_000)}
    assert found[processing.id] == processing
    assert found[creating.id] == creating
    assert done.id not in found
    assert recent.id not in found
    assert len(payments.stuck(["processing", "creating"], cutoff, 1)) == 1
