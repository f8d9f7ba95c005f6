"""Buyers pay bookings; provider events confirm them; admins refund; a reconciler repairs drift.

Money rules: the provider is never called inside a Firestore transaction; each attempt has its own
provider idempotency key (booking + attempt), so a retry after a decline works and a retry of the
same attempt never charges twice; a payment is recorded (`creating`) before the provider is called,
so the reconciler finds an intent whose answer was lost; payment states never move backwards.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from shared.core.errors import (
    BookingNotPayable,
    Forbidden,
    IdempotencyKeyReused,
    InvalidState,
    InvalidWebhook,
    NotFound,
    PaymentDeclined,
    Unavailable,
    ValidationFailed,
)
from shared.dal.records import Claim, ConcurrentUpdate, DocumentExists, IdempotencyRecord, OutboxMessage, message
from shared.messaging import BOOKING_CONFIRMED, PAYMENT_EVENTS, OutboxRelay
from shared.models import PROVIDER_STATUSES, Booking, Event, Payment, PaymentStatus, new_id, utcnow
from shared.payments.gateway import (
    BadSignature,
    Declined,
    Intent,
    PaymentGateway,
    ProviderUnavailable,
    UnknownPaymentMethod,
)
from shared.services.identity import Principal
from shared.services.slots import NoFreeSlots, SlotPicker

log = logging.getLogger("payments")
MAX_ATTEMPTS = 8
EVENT_STATUS = {
    "payment_intent.succeeded": "succeeded",
    "payment_intent.payment_failed": "failed",
    "payment_intent.processing": "processing",
    "payment_intent.canceled": "canceled",
    "payment_intent.requires_action": "requires_action",
}
NOT_FINAL = ["creating", "requires_payment_method", "requires_confirmation", "requires_action", "processing"]


class PaymentStore(Protocol):
    def get(self, payment_id: str) -> tuple[Payment, Any] | None: ...
    def begin(
        self, booking: Booking, booking_update_time: Any, payment: Payment, record: IdempotencyRecord | None
    ) -> None: ...
    def save(self, payment: Payment, update_time: Any, messages: Any = ()) -> None: ...
    def record_event(self, event_id: str, payment_id: str | None, decide: Callable[[Payment | None], Any]) -> bool: ...
    def by_company_needing_attention(self, company_id: str, limit: int) -> list[Payment]: ...
    def stuck(self, statuses: list[str], updated_before: datetime, limit: int) -> list[Payment]: ...


class BookingStore(Protocol):
    def get(self, booking_id: str) -> tuple[Booking, Any] | None: ...
    def idempotency(self, key_id: str) -> IdempotencyRecord | None: ...
    def commit_confirm(
        self,
        after: Booking,
        update_time: Any,
        sell: list[Claim],
        new_slots: list[tuple[int, Claim | None]],
        messages: Any,
    ) -> None: ...
    def commit_refund(
        self, after: Booking, update_time: Any, claims: list[Claim], payment: Payment, payment_update_time: Any
    ) -> None: ...
    def extend_hold(self, after: Booking, update_time: Any, claims: list[Claim]) -> None: ...


class Claims(Protocol):
    def claims_of(self, event_id: str, booking_id: str) -> list[Claim]: ...


class EventReader(Protocol):
    def get(self, event_id: str) -> Event | None: ...


@dataclass(frozen=True)
class PaymentRules:
    processing_grace: timedelta
    reconcile_window: timedelta = timedelta(days=3)
    stuck_after: timedelta = timedelta(minutes=10)


class PaymentService:
    def __init__(
        self,
        payments: PaymentStore,
        bookings: BookingStore,
        events: EventReader,
        claims: Claims,
        picker: SlotPicker,
        gateway: Callable[[], PaymentGateway],
        relay: OutboxRelay,
        rules: PaymentRules,
    ) -> None:
        self.payments = payments
        self.bookings = bookings
        self.events = events
        self.claims = claims
        self.picker = picker
        self.gateway = gateway
        self.relay = relay
        self.rules = rules

    # ---- paying -------------------------------------------------------------------------------

    def pay(self, principal: Principal, booking_id: str, payment_method: str | None, key: str | None) -> Payment:
        key_id = _key_id(principal.user_id, key) if key else None
        request_hash = _hash({"booking_id": booking_id, "payment_method": payment_method})
        if key_id:
            replay = self._replay(key_id, request_hash, payment_method)
            if replay is not None:
                return replay
        payment = self._begin(principal, booking_id, key_id, request_hash, payment_method)
        if payment.status != "creating":  # an idempotent replay that raced us
            return payment
        return self._call_provider(payment, payment_method)

    def _begin(
        self, principal: Principal, booking_id: str, key_id: str | None, request_hash: str, payment_method: str | None
    ) -> Payment:
        for _attempt in range(MAX_ATTEMPTS):
            booking, update_time = self._own_booking(principal, booking_id)
            now = utcnow()
            if booking.status_at(now) != "pending_payment":
                raise BookingNotPayable(f"the booking is {booking.status_at(now)}")
            attempt = booking.payment_attempts + 1
            payment = Payment(
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
            )
            counted = replace(booking, payment_attempts=attempt, latest_payment_id=payment.id)
            record = IdempotencyRecord(key_id, request_hash, payment.id) if key_id else None
            try:
                self.payments.begin(counted, update_time, payment, record)
                return payment
            except DocumentExists:
                replay = self._replay(key_id, request_hash, payment_method) if key_id else None
                if replay is not None:
                    return replay
            except ConcurrentUpdate:
                continue
        raise Unavailable("the booking is changing; retry", retry_after=1)

    def _own_booking(self, principal: Principal, booking_id: str) -> tuple[Booking, Any]:
        found = self.bookings.get(booking_id)
        if found is None or found[0].user_id != principal.user_id:
            raise NotFound("booking not found")
        return found

    def _call_provider(self, payment: Payment, payment_method: str | None) -> Payment:
        gateway = self.gateway()
        metadata = {"booking_id": payment.booking_id, "payment_id": payment.id, "attempt": str(payment.attempt)}
        try:
            intent = gateway.create_intent(
                amount=payment.amount,
                currency=payment.currency,
                metadata=metadata,
                idempotency_key=payment.idempotency_key,
                payment_method=payment_method,
            )
            payment = self._record(payment, intent)
            if payment_method and intent.status == "requires_confirmation":
                intent = gateway.confirm_intent(intent.id, idempotency_key=f"{payment.idempotency_key}:confirm")
                payment = self._record(payment, intent)
        except Declined as exc:
            self._record_failure(payment, exc.code, exc.intent_id)
            raise PaymentDeclined(f"declined: {exc.code}") from None
        except UnknownPaymentMethod:
            self._record_failure(payment, "unknown_payment_method", None)
            raise ValidationFailed(
                "the payment provider does not know this payment method",
                [{"field": "payment_method", "message": "unknown payment method"}],
            ) from None
        except ProviderUnavailable:
            raise Unavailable("the payment provider is unavailable; retry with the same Idempotency-Key") from None
        return payment

    def _record(self, payment: Payment, intent: Intent) -> Payment:
        """Store what the provider said about the intent (monotonic) and announce a success."""
        for _attempt in range(MAX_ATTEMPTS):
            found = self.payments.get(payment.id)
            if found is None:
                raise NotFound("payment not found")
            current, update_time = found
            status: PaymentStatus = intent.status if intent.status in PROVIDER_STATUSES else "processing"  # type: ignore[assignment]
            changes = {"transaction_id": intent.id, "client_secret": intent.client_secret}
            if not current.can_become(status):
                if current.transaction_id is None:
                    current = replace(current, **changes)  # type: ignore[arg-type]
                    self.payments.save(current, update_time)
                return current
            updated = current.moved_to(status, utcnow(), **changes)
            messages = [self._payment_event(updated)] if status == "succeeded" else []
            try:
                self.payments.save(updated, update_time, messages)
            except ConcurrentUpdate:
                continue
            self.relay.deliver(messages)
            if status == "processing":
                self._grace(updated)
            return updated
        raise Unavailable("the payment is changing; retry", retry_after=1)

    def _record_failure(self, payment: Payment, code: str, intent_id: str | None) -> None:
        found = self.payments.get(payment.id)
        if found is None:
            return
        current, update_time = found
        if current.can_become("failed"):
            failed = current.moved_to(
                "failed", utcnow(), failure_code=code, transaction_id=intent_id or current.transaction_id
            )
            try:
                self.payments.save(failed, update_time)
            except ConcurrentUpdate:
                log.info("payment %s changed while recording its decline", payment.id)

    def _grace(self, payment: Payment) -> None:
        """A processing payment keeps its hold a little longer (once, bounded) instead of losing it."""
        found = self.bookings.get(payment.booking_id)
        if found is None:
            return
        booking, update_time = found
        now = utcnow()
        extended_until = now + self.rules.processing_grace
        if booking.status != "pending_payment" or booking.expires_at >= extended_until:
            return
        if any(entry.get("reason") == "payment processing" for entry in booking.history):
            return
        after = replace(booking.moved_to("pending_payment", now, "payment processing"), expires_at=extended_until)
        mine = [c for c in self.claims.claims_of(booking.event_id, booking.id) if c.state == "held"]
        try:
            self.bookings.extend_hold(after, update_time, mine)
        except ConcurrentUpdate:
            log.info("booking %s changed; hold not extended", booking.id)

    def _replay(self, key_id: str, request_hash: str, payment_method: str | None) -> Payment | None:
        record = self.bookings.idempotency(key_id)
        if record is None:
            return None
        if record.request_hash != request_hash:
            raise IdempotencyKeyReused()
        found = self.payments.get(record.resource_id)
        if found is None:
            raise Unavailable("the earlier request with this key is still being recorded")
        payment = found[0]
        if payment.status == "creating":  # the earlier call died before the provider answered: resume
            return self._call_provider(payment, payment_method)
        return payment

    # ---- reading ------------------------------------------------------------------------------

    def get(self, principal: Principal, payment_id: str) -> Payment:
        found = self.payments.get(payment_id)
        if found is None:
            raise NotFound("payment not found")
        payment = found[0]
        if payment.user_id != principal.user_id and not principal.manages(payment.company_id):
            raise NotFound("payment not found")
        return payment

    def latest_of(self, booking: Booking) -> Payment | None:
        if booking.latest_payment_id is None:
            return None
        found = self.payments.get(booking.latest_payment_id)
        return found[0] if found else None

    def needing_attention(self, principal: Principal, limit: int) -> list[Payment]:
        if not principal.is_admin or principal.company_id is None:
            raise Forbidden("only event managers see what needs attention")
        return self.payments.by_company_needing_attention(principal.company_id, limit)

    # ---- provider events ----------------------------------------------------------------------

    def webhook(self, payload: bytes, signature: str | None) -> bool:
        """Apply a verified provider event once. Returns False for a duplicate."""
        try:
            event = self.gateway().parse_webhook(payload, signature)
        except BadSignature:
            raise InvalidWebhook("signature, timestamp or body not accepted") from None
        intent = event.intent
        status = EVENT_STATUS.get(event.type)
        payment_id = intent.metadata.get("payment_id") if intent else None
        outbox: list[OutboxMessage] = []

        def decide(current: Payment | None) -> tuple[Payment | None, list[OutboxMessage]]:
            outbox.clear()
            if current is None or intent is None or status is None:
                return None, []
            now = utcnow()
            if (intent.amount, intent.currency, intent.metadata.get("booking_id")) != (
                current.amount,
                current.currency,
                current.booking_id,
            ):
                log.error("payment %s: provider event %s does not match our records", current.id, event.id)
                return current.flagged("provider amount, currency or booking does not match", now), []
            if not current.can_become(status):  # type: ignore[arg-type]
                return None, []
            updated = current.moved_to(status, now, transaction_id=intent.id)  # type: ignore[arg-type]
            if status == "succeeded":
                outbox.append(self._payment_event(updated))
            return updated, list(outbox)

        fresh = self.payments.record_event(event.id, payment_id, decide)
        if fresh:
            self.relay.deliver(outbox)
            if status == "processing" and payment_id:
                found = self.payments.get(payment_id)
                if found is not None and found[0].status == "processing":
                    self._grace(found[0])
        return fresh

    def _payment_event(self, payment: Payment) -> OutboxMessage:
        data = {"type": "payment.succeeded", "payment_id": payment.id, "booking_id": payment.booking_id}
        return message(PAYMENT_EVENTS, data, utcnow())

    # ---- finalisation (Pub/Sub) ---------------------------------------------------------------

    def finalize(self, payment_id: str) -> str:
        """Confirm the booking a succeeded payment pays for; safe to run any number of times."""
        for _attempt in range(MAX_ATTEMPTS):
            try:
                return self._finalize_once(payment_id)
            except (ConcurrentUpdate, DocumentExists):
                continue
        raise Unavailable("finalisation contended; redeliver", retry_after=1)

    def _finalize_once(self, payment_id: str) -> str:
        found = self.payments.get(payment_id)
        if found is None or found[0].status != "succeeded":
            return "ignored"
        payment = found[0]
        booked = self.bookings.get(payment.booking_id)
        if booked is None:
            return self._refund_unbookable(payment, "booking missing")
        booking, update_time = booked
        if booking.status == "confirmed":
            if booking.paid_by == payment.id:
                return "already confirmed"
            return self._refund_unbookable(payment, "booking already paid by another payment")
        if booking.status == "refunded":
            return "ignored"
        if booking.status == "cancelled":
            return self._refund_unbookable(payment, "paid after the buyer cancelled the booking")
        now = utcnow()
        mine = [c for c in self.claims.claims_of(booking.event_id, booking.id) if c.state == "held"]
        on_time = booking.status == "pending_payment" and booking.expires_at > now
        missing = booking.quantity - len(mine)
        new_slots: list[tuple[int, Claim | None]] = []
        if missing > 0:
            event = self.events.get(booking.event_id)
            if event is None:
                return self._refund_unbookable(payment, "event missing")
            try:
                new_slots = self.picker.pick(event.id, event.capacity, missing, now)
            except NoFreeSlots:
                return self._refund_unbookable(payment, "paid after the hold ran out; tickets gone")
            self.picker.done(event.id, new_slots, claimed=False)
        reason = "paid" if on_time and missing == 0 else "paid after the hold ran out; tickets re-acquired"
        after = replace(booking.moved_to("confirmed", now, reason), paid_by=payment.id)
        confirmed = message(
            BOOKING_CONFIRMED,
            {
                "type": "booking.confirmed",
                "booking_id": booking.id,
                "payment_id": payment.id,
                "user_id": booking.user_id,
            },
            now,
        )
        self.bookings.commit_confirm(after, update_time, mine, new_slots, [confirmed])
        if reason != "paid":
            self._flag(payment, reason)
        self.relay.deliver([confirmed])
        return "confirmed" if reason == "paid" else "confirmed late"

    def _refund_unbookable(self, payment: Payment, reason: str) -> str:
        """Money taken with no booking to give: refund it at once and leave a note for a person."""
        if payment.transaction_id:
            try:
                self.gateway().refund(payment.transaction_id, idempotency_key=f"refund:{payment.id}")
            except ProviderUnavailable:
                raise Unavailable("refund pending; redeliver") from None
        found = self.payments.get(payment.id)
        if found is not None and found[0].status != "refunded":
            refunded = found[0].moved_to("refunded", utcnow(), attention=f"refunded automatically: {reason}")
            self.payments.save(refunded, found[1])
        log.warning("payment %s refunded automatically: %s", payment.id, reason)
        return "refunded"

    def _flag(self, payment: Payment, reason: str) -> None:
        """Leave a note for a person, once."""
        found = self.payments.get(payment.id)
        if found is not None and found[0].attention != reason:
            try:
                self.payments.save(found[0].flagged(reason, utcnow()), found[1])
            except ConcurrentUpdate:
                log.info("payment %s changed while flagging it", payment.id)

    # ---- refunds ------------------------------------------------------------------------------

    def refund(self, principal: Principal, booking_id: str) -> Booking:
        for _attempt in range(MAX_ATTEMPTS):
            found = self.bookings.get(booking_id)
            if found is None:
                raise NotFound("booking not found")
            booking, update_time = found
            if not principal.manages(booking.company_id):
                if booking.user_id == principal.user_id:
                    raise Forbidden("only the event's company admins refund")
                raise NotFound("booking not found")
            if booking.status == "refunded":
                return booking
            if booking.status != "confirmed" or booking.paid_by is None:
                raise InvalidState(f"a {booking.status_at(utcnow())} booking cannot be refunded")
            paid = self.payments.get(booking.paid_by)
            if paid is None or paid[0].transaction_id is None:
                raise InvalidState("no payment to refund")
            payment, payment_update_time = paid
            try:
                self.gateway().refund(payment.transaction_id or "", idempotency_key=f"refund:{booking.id}")
            except ProviderUnavailable:
                raise Unavailable("the payment provider is unavailable; retry") from None
            now = utcnow()
            after = booking.moved_to("refunded", now, "refunded by the organiser")
            sold = [c for c in self.claims.claims_of(booking.event_id, booking.id)]
            try:
                self.bookings.commit_refund(
                    after, update_time, sold, payment.moved_to("refunded", now), payment_update_time
                )
            except ConcurrentUpdate:
                continue
            self.picker.released(booking.event_id, [c.n for c in sold])
            return after
        raise Unavailable("the booking is changing; retry", retry_after=1)

    # ---- reconciliation -----------------------------------------------------------------------

    def reconcile(self) -> dict[str, int]:
        """Compare recent provider intents with our records and repair each difference once."""
        counts = {"synced": 0, "finalized": 0, "flagged": 0, "abandoned": 0}
        now = utcnow()
        seen: set[str] = set()
        for intent in self.gateway().recent_intents(now - self.rules.reconcile_window):
            payment_id = intent.metadata.get("payment_id")
            found = self.payments.get(payment_id) if payment_id else None
            if found is None:
                continue
            seen.add(found[0].id)
            counts[self._reconcile_one(found[0], intent)] += 1
        for payment in self.payments.stuck(NOT_FINAL, now - self.rules.stuck_after, 100):
            if payment.id in seen:
                continue
            if payment.transaction_id:
                counts[self._reconcile_one(payment, self.gateway().retrieve_intent(payment.transaction_id))] += 1
            elif payment.status == "creating":  # the provider never saw it
                found = self.payments.get(payment.id)
                if found and found[0].status == "creating":
                    self.payments.save(
                        found[0].moved_to("failed", now, failure_code="never_reached_provider"), found[1]
                    )
                    counts["abandoned"] += 1
        return counts

    def _reconcile_one(self, payment: Payment, intent: Intent) -> str:
        if intent.status in PROVIDER_STATUSES and payment.can_become(intent.status):  # type: ignore[arg-type]
            if (intent.amount, intent.currency) != (payment.amount, payment.currency):
                self._flag(payment, "provider amount or currency does not match")
                return "flagged"
            payment = self._record(payment, intent)
            if payment.status == "succeeded":
                self.finalize(payment.id)
                return "finalized"
            return "synced"
        if payment.status == "succeeded":
            booking = self.bookings.get(payment.booking_id)
            if intent.status != "succeeded":
                self._flag(payment, f"confirmed but the provider says {intent.status}")
                return "flagged"
            if booking is not None and booking[0].status not in ("confirmed", "refunded"):
                self.finalize(payment.id)
                return "finalized"
        return "synced"


def _key_id(user_id: str, key: str) -> str:
    return hashlib.sha256(f"payments\n{user_id}\n{key}".encode()).hexdigest()[:40]


def _hash(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
