"""The background half of a cancellation: every pending booking of a cancelled event is cancelled,
every confirmed one refunded in full, its buyer e-mailed once.

A task (`POST /tasks/cancel-event`) settles one bounded batch of the event's remaining bookings in
id order and asks for the next batch after the last id it saw (a named task: a retried create is
deduplicated). The sweep resumes every cancellation not finished yet (the list the cancel's commit
starts, `open_cancellations`), from the first remaining booking: that is the crash recovery. Every
step is idempotent, so a batch run twice, or a task and the sweep at once, refund nothing twice: a
pending booking is cancelled by a compare-and-set (Releasing), a refund is marked on its payment
before the provider is asked and sent with one idempotency key per payment (Refunding). Refunds are
paced at REFUNDS_PER_SECOND per run (Stripe's limit). The buyer is told before the booking is
settled: a crash after the settle's commit cannot lose the e-mail, and the notification record keeps
it to one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Literal, Protocol

from shared.core.errors import AppError, PaymentInProgress, Unavailable
from shared.dal.cancellations import CancellationCounts
from shared.dal.records import Revision
from shared.domain_events import Actor
from shared.models import Booking, Event, Payment, utcnow
from shared.services.cancelling.notices import CancellationNotice
from shared.services.payments.refunding import REFUND_REFUSED, RefundRefused

log = logging.getLogger("cancellation")
ACTOR = Actor.system("cancellation")
BATCH = 50  # bookings per task
PARALLEL = 8  # bookings of a batch settled at once
REFUNDS_PER_SECOND = 25.0  # per run: Stripe allows 100 operations/s live (25 in test mode)
SWEEP_BUDGET = 20.0  # seconds the sweep spends on one event before handing the rest to a task
Outcome = Literal["cancelled", "refunded", "failed", "settled", "busy"]


class Events(Protocol):
    def get(self, event_id: str) -> Event | None: ...


class Bookings(Protocol):
    def get(self, booking_id: str) -> tuple[Booking, Revision] | None: ...


class Payments(Protocol):
    def get(self, payment_id: str) -> tuple[Payment, Revision] | None: ...


class Remaining(Protocol):
    def remaining(self, event_id: str, after: str | None, limit: int) -> list[str]: ...
    def counts(self, event_id: str, cancelled_at: datetime, refused_note: str) -> CancellationCounts: ...
    def open_ones(self, limit: int) -> list[str]: ...
    def close(self, event_id: str) -> None: ...


class Releaser(Protocol):
    def cancel_for_event(self, booking_id: str, actor: Actor) -> Booking | None: ...


class Refunder(Protocol):
    def refund_cancelled(self, booking_id: str, actor: Actor) -> Booking: ...


class Pacer:
    """At most `rate` calls per second, across threads: `wait()` sleeps until the next one may go."""

    def __init__(self, rate: float, sleep: Callable[[float], None] = time.sleep) -> None:
        self.interval, self.sleep, self.next_at = 1.0 / rate, sleep, 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:  # each caller takes the next free instant
            now = time.monotonic()
            at = max(now, self.next_at)
            self.next_at = at + self.interval
        if at > now:
            self.sleep(at - now)


class CancellationFanOut:
    def __init__(
        self,
        events: Events,
        bookings: Bookings,
        payments: Payments,
        remaining: Remaining,
        releasing: Releaser,
        refunding: Refunder,
        notice: CancellationNotice,
        schedule: Callable[[str, str, str | None], bool],
        close_line: Callable[[Event], int],
        batch: int = BATCH,
        refunds_per_second: float = REFUNDS_PER_SECOND,
        parallel: int = PARALLEL,
    ) -> None:
        self.events = events
        self.bookings = bookings
        self.payments = payments
        self.remaining = remaining
        self.releasing = releasing
        self.refunding = refunding
        self.notice = notice
        self.schedule = schedule  # the next task: (event id, run, cursor) -> created
        self.close_line = close_line  # the event's waiting entries end, each buyer e-mailed
        self.batch = batch
        self.rate = refunds_per_second
        self.parallel = parallel

    def run(self, event_id: str, run: str, after: str | None) -> dict[str, object]:
        """One task: settle a batch after `after`, then ask for the next one if there may be more."""
        event = self.events.get(event_id)
        if event is None or not event.is_cancelled:
            return {"event_id": event_id, "outcomes": {}, "next": None}
        outcomes, last, full = self._batch(event, after, Pacer(self.rate))
        if after is None:
            self.close_line(event)
        if full and last is not None:
            self.schedule(event_id, run, last)
        return {"event_id": event_id, "outcomes": dict(outcomes), "next": last if full else None}

    def resume(self, now: datetime | None = None, limit: int = 20, budget: float = SWEEP_BUDGET) -> int:
        """The sweep: settle what every recent cancellation left (a crash, a task never created or
        a payment confirmed after the fan-out passed), for at most `budget` seconds, then hand the
        rest to tasks; returns how many events it worked on."""
        now = now or utcnow()
        deadline, run, resumed = time.monotonic() + budget, f"s{int(now.timestamp())}", 0
        for event_id in self.remaining.open_ones(limit):
            event = self.events.get(event_id)
            if event is None or not event.is_cancelled:
                self.remaining.close(event_id)
                continue
            waiting = self.close_line(event)
            if self.counts(event).settled and waiting == 0:
                self.remaining.close(event_id)  # finished: off the sweep's list
                continue
            resumed += 1
            pacer, after = Pacer(self.rate), None
            while True:
                if time.monotonic() >= deadline:
                    self.schedule(event.id, run, after)
                    break
                _done, last, full = self._batch(event, after, pacer)
                if not full or last is None:
                    break
                after = last
            log.info("cancellation of event %s resumed", event.id)
        return resumed

    def counts(self, event: Event) -> CancellationCounts:
        return self.remaining.counts(event.id, event.cancelled_at or event.updated_at, REFUND_REFUSED)

    def _batch(self, event: Event, after: str | None, pacer: Pacer) -> tuple[Counter[str], str | None, bool]:
        ids = self.remaining.remaining(event.id, after, self.batch)
        # A few bookings at once (each waits on the provider), paced together under Stripe's limit.
        with ThreadPoolExecutor(self.parallel) as pool:
            outcomes: Counter[str] = Counter(pool.map(lambda booking_id: self.settle(event, booking_id, pacer), ids))
        if ids:
            log.info("cancellation of event %s: %s", event.id, dict(outcomes))
        return outcomes, ids[-1] if ids else after, len(ids) == self.batch

    def settle(self, event: Event, booking_id: str, pacer: Pacer) -> Outcome:
        """One booking: tell its buyer, then cancel it (pending) or refund it (confirmed)."""
        for _ in range(3):  # a pending booking may be confirmed meanwhile: then it is refunded
            found = self.bookings.get(booking_id)
            if found is None or found[0].status not in ("pending_payment", "confirmed"):
                return "settled"
            booking = found[0]
            if booking.status == "confirmed" and self._refused(booking):
                return "failed"  # a person refunds it (GET /v1/attention); never asked again here
            live = booking.status == "confirmed" or booking.expires_at > utcnow()
            if live and not self.notice.tell(booking, event):
                return "busy"  # the mail is down: the booking waits, its buyer must be told first
            try:
                if booking.status == "pending_payment":
                    if self.releasing.cancel_for_event(booking_id, ACTOR) is not None:
                        return "cancelled"
                    continue  # it changed: read it again
                if booking.paid_by is not None:
                    pacer.wait()
                after = self.refunding.refund_cancelled(booking_id, ACTOR)
                return "refunded" if after.status == "refunded" else "busy"
            except RefundRefused:
                return "failed"
            except (PaymentInProgress, Unavailable):
                return "busy"  # a refund of it in flight elsewhere, or the provider is down: later
            except AppError as exc:  # not settable as it is stored: it stays visible, the sweep retries
                log.error("booking %s of cancelled event %s: %s", booking_id, event.id, exc.detail)
                return "busy"
        return "busy"

    def _refused(self, booking: Booking) -> bool:
        found = self.payments.get(booking.paid_by) if booking.paid_by else None
        if found is None:
            return False
        payment = found[0]
        return payment.status == "succeeded" and payment.attention == REFUND_REFUSED and not payment.refund_started_at
