"""Cancelling an event against recording fakes: the request's compare-and-set, the fan-out in
batches (each booking settled once, however often it runs), a refund the provider refuses, a
payment that succeeds after the cancel, and the pacing of refunds."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from shared.core.errors import EventCancelled, Forbidden, PreconditionRequired, VersionConflict
from shared.dal.cancellations import CancellationCounts
from shared.dal.records import UnitOfWork
from shared.models import Booking, Event, User, utcnow
from shared.payments.gateway import Refused
from shared.services.bookings.ports import HoldRequest
from shared.services.cancelling.cancel import EventCancelling
from shared.services.cancelling.fanout import CancellationFanOut, Pacer
from shared.services.cancelling.notices import CancellationNotice
from shared.services.payments.paying import PayRequest
from shared.services.payments.refunding import REFUND_REFUSED
from tests.unit.fakes import Clock, FakeMailer, Wired
from tests.unit.test_payment_use_cases import ADMIN, BUYER, OTHER, wired

CARD = "pm_card_visa"


class Remaining:
    """CancellationDAL over the fakes' documents."""

    def __init__(self, app: Wired) -> None:
        self.app = app

    def remaining(self, event_id: str, after: str | None, limit: int) -> list[str]:
        ids = sorted(
            b.id
            for b in self.app.bookings.all()
            if b.event_id == event_id and b.status in ("pending_payment", "confirmed")
        )
        return [i for i in ids if after is None or i > after][:limit]

    def stage_open(self, uow: UnitOfWork, event_id: str, at: datetime) -> None:
        uow.create(f"open_cancellations/{event_id}", {"event_id": event_id, "cancelled_at": at})

    def open_ones(self, limit: int) -> list[str]:
        return [path.rsplit("/", 1)[1] for path, _, _ in self.app.store.children("open_cancellations")][:limit]

    def close(self, event_id: str) -> None:
        self.app.store.docs.pop(f"open_cancellations/{event_id}", None)

    def counts(self, event_id: str, cancelled_at: datetime, refused_note: str) -> CancellationCounts:
        mine = [b for b in self.app.bookings.all() if b.event_id == event_id]
        refused = [p for p in self.app.payments.all() if p.status == "succeeded" and p.attention == refused_note]
        return CancellationCounts(
            pending_payment=sum(b.status == "pending_payment" for b in mine),
            confirmed=sum(b.status == "confirmed" for b in mine),
            refunded=sum(b.status == "refunded" and b.updated_at >= cancelled_at for b in mine),
            refused=len(refused),
        )


class Events:
    """EventDAL's reads over the fakes' documents."""

    def __init__(self, app: Wired) -> None:
        self.app = app

    def get(self, event_id: str) -> Event | None:
        return self.app.events.get(event_id)


class Users:
    def get(self, user_id: str) -> User:
        now = utcnow()
        return User(
            user_id, "k", "s", "Buyer", f"{user_id}@example.com", "u", "DE", "+4912345678", "user", None, now, now
        )


class Cancel:
    """The cancellation's use cases wired over one Wired, with the tasks it asked for recorded."""

    def __init__(self, app: Wired, batch: int = 2) -> None:
        self.app, self.mailer, self.tasks = app, FakeMailer(), []
        self.remaining = Remaining(app)
        self.request = EventCancelling(
            app.events, app.inventory, self.remaining, app.store.new_uow, lambda *task: self.tasks.append(task)
        )
        notice = CancellationNotice(Users(), self.mailer, self.mailer)
        self.fanout = CancellationFanOut(
            Events(app),
            app.bookings,
            app.payments,
            self.remaining,
            app.releasing,
            app.refunding,
            notice,
            lambda *task: self.tasks.append(task) is None,
            lambda event: 0,
            batch=batch,
            refunds_per_second=1000,
            parallel=1,  # the in-memory store is not for threads
        )

    def run_all(self) -> None:
        """Every batch, as the chain of tasks would run them."""
        after = None
        while True:
            answer = self.fanout.run("ev-1", "v2", after)
            if answer["next"] is None:
                return
            after = str(answer["next"])


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(monkeypatch)


def confirmed(app: Wired, who: Any) -> Booking:
    booking = app.holding.hold(lambda: who, f"sub-{who.user_id}", HoldRequest("ev-1", 1))[0]
    payment, _ = app.paying.pay(who, PayRequest(booking.id, CARD))
    assert app.finalising.finalize(payment.id) == "confirmed"
    return app.booking_of(booking.id)


def pending(app: Wired, who: Any) -> Booking:
    return app.holding.hold(lambda: who, f"sub-{who.user_id}", HoldRequest("ev-1", 1))[0]


def test_the_request_is_a_compare_and_set_and_repeating_it_changes_nothing(clock: Clock) -> None:
    app = wired(clock, capacity=6)
    cancel = Cancel(app)
    confirmed(app, BUYER)
    with pytest.raises(PreconditionRequired):
        cancel.request.cancel(ADMIN, "ev-1", "flood", None)
    with pytest.raises(VersionConflict):
        cancel.request.cancel(ADMIN, "ev-1", "flood", '"7"')
    with pytest.raises(Forbidden):
        cancel.request.cancel(BUYER, "ev-1", "flood", '"1"')

    view = cancel.request.cancel(ADMIN, "ev-1", "flood", '"1"')

    assert (view.event.status, view.event.version, view.event.cancellation_reason) == ("cancelled", 2, "flood")
    assert view.cancellation is not None
    assert (view.cancellation.refunds_pending, view.cancellation.refunds_done) == (1, 0)
    assert cancel.tasks == [("ev-1", "v2", None)]
    again = cancel.request.cancel(ADMIN, "ev-1", "another", '"1"')  # a retry with the old If-Match
    assert (again.event.version, again.event.cancellation_reason) == (2, "flood")
    assert cancel.tasks == [("ev-1", "v2", None)]
    with pytest.raises(EventCancelled):
        app.holding.hold(lambda: OTHER, "sub-x", HoldRequest("ev-1", 1))


def test_the_fan_out_settles_every_booking_once_in_batches(clock: Clock) -> None:
    app = wired(clock, capacity=6)
    cancel = Cancel(app, batch=2)
    paid = [confirmed(app, who) for who in (BUYER, OTHER)]
    unpaid = pending(app, ADMIN)
    cancel.request.cancel(ADMIN, "ev-1", "flood", '"1"')

    first = cancel.fanout.run("ev-1", "v2", None)
    assert first["next"] is not None  # a full batch asks for the next one
    assert cancel.tasks[-1] == ("ev-1", "v2", first["next"])
    cancel.run_all()
    cancel.run_all()  # a retried chain, or the sweep: nothing more happens
    assert cancel.fanout.resume() == 0

    assert [app.booking_of(b.id).status for b in paid] == ["refunded", "refunded"]
    assert app.booking_of(unpaid.id).status == "cancelled"
    assert len(app.gateway.refunds) == 2
    assert sorted(to for to, _, _ in cancel.mailer.sent) == sorted(
        f"{w.user_id}@example.com" for w in (BUYER, OTHER, ADMIN)
    )
    assert all(t.status == "revoked" for t in app.tickets.all())
    counts = cancel.remaining.counts("ev-1", datetime.min.replace(tzinfo=clock.now().tzinfo), REFUND_REFUSED)
    assert counts.settled


def test_a_refund_the_provider_refuses_is_flagged_once_and_counted_failed(
    clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = wired(clock, capacity=6)
    cancel = Cancel(app)
    booking = confirmed(app, BUYER)
    asked: list[str] = []

    def refuse(intent_id: str, *, idempotency_key: str) -> str:
        asked.append(intent_id)
        raise Refused("No such charge")

    monkeypatch.setattr(app.gateway, "refund", refuse)
    view = cancel.request.cancel(ADMIN, "ev-1", "flood", '"1"')
    cancel.run_all()
    cancel.run_all()

    assert app.booking_of(booking.id).status == "confirmed"
    payment = app.payment_of(str(booking.paid_by))
    assert (payment.status, payment.attention, payment.refund_started_at) == ("succeeded", REFUND_REFUSED, None)
    assert len(asked) == 1  # not asked again: a person refunds it
    progress = cancel.request.progress_of(app.events.events["ev-1"])
    assert progress is not None
    assert (progress.refunds_pending, progress.refunds_done, progress.refunds_failed) == (0, 0, 1)
    assert view.cancellation is not None
    assert view.cancellation.refunds_pending == 1


def test_a_payment_that_succeeds_after_the_cancel_is_refunded_not_confirmed(clock: Clock) -> None:
    app = wired(clock, capacity=6)
    cancel = Cancel(app)
    app.paying.event_cancelled = lambda event_id: cancel.remaining.app.events.events[event_id].is_cancelled
    booking = pending(app, BUYER)
    payment, _ = app.paying.pay(BUYER, PayRequest(booking.id, None))  # client-side: the buyer confirms later
    cancel.request.cancel(ADMIN, "ev-1", "flood", '"1"')
    with pytest.raises(EventCancelled):
        app.paying.pay(BUYER, PayRequest(booking.id, CARD))
    cancel.run_all()

    app.gateway.settle(payment.transaction_id or "")
    app.intake.take(*app.gateway.webhook(payment.transaction_id or ""))
    app.finalising.finalize(payment.id)

    assert app.booking_of(booking.id).status == "cancelled"
    assert app.payment_of(payment.id).status == "refunded"
    assert app.gateway.refunded(payment.transaction_id or "") == booking.total_cost


def test_refunds_are_paced() -> None:
    slept: list[float] = []
    pacer = Pacer(25, slept.append)
    for _ in range(3):
        pacer.wait()
    assert len(slept) == 2  # the first goes at once; the clock stands still, so the waits add up
    assert 0.035 < slept[0] <= 0.04
    assert 0.075 < slept[1] <= 0.08
