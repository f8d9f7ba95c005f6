"""A buyer pays a booking: one attempt in flight per booking, recorded before the provider is called.

A new attempt is a compare-and-set on the booking (its attempt counter and latest payment), so of
concurrent requests exactly one starts an attempt. The others answer with that attempt once it is
under way (the same Payment, not created anew), or `409 payment_in_progress` while the provider has
not answered it yet, or when they ask for something else while money is moving. An open attempt
(waiting for the buyer) is cancelled at the provider before another payment method is tried, so it
can never be charged as well.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, NoReturn

from shared.core.errors import (
    BookingNotPayable,
    EventCancelled,
    IdempotencyKeyReused,
    NotFound,
    PaymentDeclined,
    PaymentInProgress,
    Unavailable,
    ValidationFailed,
)
from shared.dal.records import ConcurrentUpdate, DocumentExists, IdempotencyRecord, Revision, UnitOfWork
from shared.domain_events import Actor, change
from shared.models import Booking, Payment, new_id, utcnow
from shared.payments.gateway import (
    Declined,
    Intent,
    NotCancellable,
    PaymentGateway,
    ProviderBusy,
    ProviderUnavailable,
    UnknownPaymentMethod,
)
from shared.services.identity import Principal
from shared.services.payments.ledger import PaymentLedger
from shared.services.payments.ports import (
    MAX_ATTEMPTS,
    RESUME_AFTER,
    WAIT_FOR_OTHER,
    BookingStore,
    IdempotencyStore,
    PaymentStore,
)
from shared.services.retry import backoff

POLL_SECONDS = 0.1
PayOutcome = Literal["created", "replayed", "joined"]
UNKNOWN_METHOD = "unknown_payment_method"


@dataclass(frozen=True)
class PayRequest:
    booking_id: str
    payment_method: str | None
    idempotency_key: str | None = None


class Paying:
    def __init__(
        self,
        payments: PaymentStore,
        bookings: BookingStore,
        keys: IdempotencyStore,
        ledger: PaymentLedger,
        gateway: Callable[[], PaymentGateway],
        new_uow: Callable[[], UnitOfWork],
        event_cancelled: Callable[[str], bool] = lambda event_id: False,
    ) -> None:
        self.payments = payments
        self.bookings = bookings
        self.keys = keys
        self.ledger = ledger
        self.gateway = gateway
        self.new_uow = new_uow
        self.event_cancelled = event_cancelled  # by its organiser: nothing is paid any more

    def pay(self, principal: Principal, request: PayRequest) -> tuple[Payment, PayOutcome]:
        """The booking's payment attempt, and how this request came to it: it started the attempt
        ("created"), repeated the request that did with the same Idempotency-Key ("replayed"), or
        joined an attempt another request started ("joined")."""
        actor = Actor.user(principal.user_id)
        key_id = _key_id(principal.user_id, request.idempotency_key) if request.idempotency_key else None
        request_hash = _hash({"booking_id": request.booking_id, "payment_method": request.payment_method})
        if key_id:
            replay = self._replay(key_id, request_hash, actor)
            if replay is not None:
                return replay, "replayed"
        for attempt in range(MAX_ATTEMPTS):
            booking, read_at = self._own_booking(principal, request.booking_id)
            if attempt == 0 and self.event_cancelled(booking.event_id):
                raise EventCancelled("the event was cancelled; its bookings are refunded")
            now = utcnow()
            if booking.status_at(now) != "pending_payment":
                raise BookingNotPayable(f"the booking is {booking.status_at(now)}")
            previous = self.payments.get(booking.latest_payment_id) if booking.latest_payment_id else None
            if previous is not None:
                answer = self._settle(previous[0], request.payment_method, actor)
                if answer is not None:
                    return answer, "joined"
            payment = self._attempt(booking, request.payment_method, now)
            uow = self.new_uow()
            counted = booking.changed(now, payment_attempts=payment.attempt, latest_payment_id=payment.id)
            self.bookings.stage_update(uow, booking, counted, since=read_at)
            self.payments.stage_create(uow, payment)
            if key_id:
                self.keys.stage_create(uow, IdempotencyRecord(key_id, request_hash, payment.id), now)
            uow.record(change("created", payment, actor, now))
            try:
                uow.commit()
            except DocumentExists:  # the same key won meanwhile
                replay = self._replay(key_id, request_hash, actor) if key_id else None
                if replay is not None:
                    return replay, "replayed"
                continue
            except ConcurrentUpdate:  # another attempt (or a cancel) changed the booking first
                backoff(attempt)
                continue
            return self._call_provider(payment, actor), "created"
        raise PaymentInProgress("the booking is changing; retry")

    def _settle(self, previous: Payment, payment_method: str | None, actor: Actor) -> Payment | None:
        """What to answer when the booking already has an attempt: that attempt (still the one
        under way), or None when it is over and a new one may start. Raises PaymentInProgress when
        money is moving for another request."""
        previous = self._await_provider(previous, actor)
        if previous.status == "creating":
            raise PaymentInProgress("the provider has not answered the first attempt yet")
        same_request = previous.payment_method == payment_method
        if previous.in_flight:  # processing or succeeded
            if same_request:
                return previous
            raise PaymentInProgress(f"a payment of this booking is {previous.status}")
        if previous.open:
            if same_request:
                return self._resume(previous, actor)
            self._cancel_open(previous, actor)
        return None

    def _resume(self, payment: Payment, actor: Actor) -> Payment:
        """An attempt with a payment method that the provider has not confirmed: while another
        request may still be confirming it, wait for that; once that request cannot be running any
        more (its call timed out, or its process died), confirm the same intent with the same key,
        so a retry finishes the payment instead of returning it unpaid. Never a second intent."""
        deadline = time.monotonic() + WAIT_FOR_OTHER.total_seconds()
        while payment.payment_method and payment.status == "requires_confirmation" and payment.transaction_id:
            if utcnow() - payment.updated_at >= RESUME_AFTER:
                return self._confirm(payment, payment.transaction_id, actor)
            if time.monotonic() >= deadline:
                raise PaymentInProgress("the first request is still confirming this payment")
            time.sleep(POLL_SECONDS)
            found = self.payments.get(payment.id)
            payment = found[0] if found else payment
        return payment

    def _await_provider(self, payment: Payment, actor: Actor) -> Payment:
        """Wait a little for an attempt whose provider call is under way; resume one whose call
        can no longer be running (its process died) with the same provider key."""
        deadline = time.monotonic() + WAIT_FOR_OTHER.total_seconds()
        while payment.status == "creating":
            if utcnow() - payment.updated_at >= RESUME_AFTER:
                return self._call_provider(payment, actor)
            if time.monotonic() >= deadline:
                break
            time.sleep(POLL_SECONDS)
            found = self.payments.get(payment.id)
            payment = found[0] if found else payment
        return payment

    def _cancel_open(self, payment: Payment, actor: Actor) -> None:
        """Cancel an attempt waiting for the buyer before trying another payment method."""
        if payment.transaction_id is None:
            return
        gateway = self.gateway()
        try:
            intent = gateway.cancel_intent(payment.transaction_id, idempotency_key=f"{payment.idempotency_key}:cancel")
        except NotCancellable:
            intent = gateway.retrieve_intent(payment.transaction_id)
            self.ledger.record_intent(payment.id, intent, actor)
            raise PaymentInProgress("the previous attempt was paid meanwhile") from None
        except ProviderUnavailable:
            raise Unavailable("the payment provider is unavailable; retry") from None
        self.ledger.record_intent(payment.id, intent, actor)

    def _attempt(self, booking: Booking, payment_method: str | None, now: datetime) -> Payment:
        attempt = booking.payment_attempts + 1
        return Payment(
            id=new_id(),
            booking_id=booking.id,
            event_id=booking.event_id,
            company_id=booking.company_id,
            user_id=booking.user_id,
            attempt=attempt,
            amount=booking.total_cost,
            currency=booking.currency,
            status="creating",
            provider=self.gateway().name,
            idempotency_key=f"{booking.id}:attempt-{attempt}",
            created_at=now,
            updated_at=now,
            payment_method=payment_method,
        )

    def _own_booking(self, principal: Principal, booking_id: str) -> tuple[Booking, Revision]:
        found = self.bookings.get(booking_id)
        if found is None or found[0].user_id != principal.user_id:
            raise NotFound("booking not found")
        return found

    def _call_provider(self, payment: Payment, actor: Actor) -> Payment:
        """Create the attempt's intent and, when the buyer named a payment method, confirm it at
        once. The created intent is recorded only if the confirmation does not answer: a resumed
        attempt sends the same provider keys, so it gets the same intent back (no second one)."""
        gateway = self.gateway()
        metadata = {"booking_id": payment.booking_id, "payment_id": payment.id, "attempt": str(payment.attempt)}
        try:
            intent = gateway.create_intent(
                amount=payment.amount,
                currency=payment.currency,
                metadata=metadata,
                idempotency_key=payment.idempotency_key,
                payment_method=payment.payment_method,
            )
        except Declined as exc:
            self.ledger.record_failure(payment.id, exc.code, exc.intent_id, actor)
            _refuse(exc.code)
        except UnknownPaymentMethod:
            self.ledger.record_failure(payment.id, UNKNOWN_METHOD, None, actor)
            _refuse(UNKNOWN_METHOD)
        except ProviderBusy:
            raise PaymentInProgress("the provider is still answering the first call of this attempt") from None
        except ProviderUnavailable:
            raise Unavailable("the payment provider is unavailable; retry with the same Idempotency-Key") from None
        if payment.payment_method and intent.status == "requires_confirmation":
            return self._confirm(payment, intent.id, actor, unrecorded=intent)
        return self.ledger.record_intent(payment.id, intent, actor)

    def _confirm(self, payment: Payment, intent_id: str, actor: Actor, unrecorded: Intent | None = None) -> Payment:
        """Server-side confirmation of the attempt's intent (same key on every retry). When the
        provider does not answer, an intent not recorded yet is recorded, so a retry confirms it."""
        try:
            confirmed = self.gateway().confirm_intent(intent_id, idempotency_key=f"{payment.idempotency_key}:confirm")
        except Declined as exc:
            self.ledger.record_failure(payment.id, exc.code, exc.intent_id or intent_id, actor)
            _refuse(exc.code)
        except (ProviderBusy, ProviderUnavailable) as exc:
            if unrecorded is not None:
                self.ledger.record_intent(payment.id, unrecorded, actor)
            if isinstance(exc, ProviderBusy):
                raise PaymentInProgress("the provider is still confirming this attempt") from None
            raise Unavailable("the payment provider is unavailable; retry with the same Idempotency-Key") from None
        return self.ledger.record_intent(payment.id, confirmed, actor)

    def _replay(self, key_id: str, request_hash: str, actor: Actor) -> Payment | None:
        record = self.keys.get(key_id)
        if record is None:
            return None
        if record.request_hash != request_hash:
            raise IdempotencyKeyReused()
        found = self.payments.get(record.resource_id)
        if found is None:
            raise Unavailable("the earlier request with this key is still being recorded")
        payment = self._await_provider(found[0], actor)
        if payment.status == "creating":
            raise PaymentInProgress("the provider has not answered the first request with this key yet")
        if payment.status == "failed":  # the same answer as the first time
            _refuse(payment.failure_code or "declined")
        return self._resume(payment, actor)


def _refuse(failure_code: str) -> NoReturn:
    """The client's answer to a failed attempt, the first time and on every replay of it."""
    if failure_code == UNKNOWN_METHOD:
        raise ValidationFailed(
            "the payment provider does not know this payment method",
            [{"field": "payment_method", "message": "unknown payment method"}],
        )
    raise PaymentDeclined(f"declined: {failure_code}")


def _key_id(user_id: str, key: str) -> str:
    return hashlib.sha256(f"payments\n{user_id}\n{key}".encode()).hexdigest()[:40]


def _hash(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
