"""One exception hierarchy; each class carries the stable `code` and HTTP status of API.md.

Services raise these; the single HTTP error handler (shared.core.http) turns them into
application/problem+json. Nothing below the entry layer knows about HTTP requests.
"""

from __future__ import annotations

from typing import Any, ClassVar


class AppError(Exception):
    code: ClassVar[str] = "internal"
    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extra = extra
        self.headers: dict[str, str] = {}


class ValidationFailed(AppError):
    code, status, title = "validation_error", 422, "The request is not valid"

    def __init__(self, detail: str | None = None, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail, errors=errors or [])


class Unauthenticated(AppError):
    code, status, title = "unauthenticated", 401, "Authentication required"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail)
        self.headers["WWW-Authenticate"] = 'Bearer realm="api"'


class NotRegistered(AppError):
    code, status, title = "not_registered", 403, "Register first with POST /v1/users"


class Forbidden(AppError):
    code, status, title = "forbidden", 403, "Not allowed"


class NotFound(AppError):
    code, status, title = "not_found", 404, "Not found"


class MethodNotAllowed(AppError):
    code, status, title = "method_not_allowed", 405, "Method not allowed"

    def __init__(self, detail: str | None = None, allow: list[str] | None = None) -> None:
        super().__init__(detail)
        self.headers["Allow"] = ", ".join(allow or [])


class AlreadyRegistered(AppError):
    code, status, title = "already_registered", 409, "Already registered"


class SoldOut(AppError):
    code, status, title = "sold_out", 409, "Not enough tickets left"


class BookingLimitReached(AppError):
    code, status, title = "booking_limit_reached", 409, "Too many unpaid bookings for this event"


class BookingNotPayable(AppError):
    code, status, title = "booking_not_payable", 409, "This booking cannot be paid"


class InvalidState(AppError):
    code, status, title = "invalid_state", 409, "Not allowed in the booking's current state"


class PaymentInProgress(AppError):
    code, status, title = "payment_in_progress", 409, "A payment or refund of this booking is under way"

    def __init__(self, detail: str | None = None, retry_after: int = 1) -> None:
        super().__init__(detail)
        self.headers["Retry-After"] = str(retry_after)


class CapacityBelowSold(AppError):
    code, status, title = "capacity_below_sold", 409, "Capacity below tickets sold plus held"


class VersionConflict(AppError):
    code, status, title = "version_conflict", 412, "The event changed since you read it"


class PreconditionRequired(AppError):
    code, status, title = "precondition_required", 428, 'Send If-Match: "<version>"'


class IdempotencyKeyReused(AppError):
    code, status, title = "idempotency_key_reused", 422, "Idempotency-Key used with another request"


class PayloadTooLarge(AppError):
    code, status, title = "payload_too_large", 413, "Request body too large"


class InvalidWebhook(AppError):
    code, status, title = "invalid_webhook", 400, "Webhook not accepted"


class PaymentDeclined(AppError):
    code, status, title = "payment_declined", 402, "The payment was declined"


class RateLimited(AppError):
    code, status, title = "rate_limited", 429, "Too many requests"

    def __init__(self, detail: str | None = None, retry_after: int = 1) -> None:
        super().__init__(detail)
        self.headers["Retry-After"] = str(retry_after)


class Unavailable(AppError):
    code, status, title = "unavailable", 503, "A dependency is unavailable; retry shortly"

    def __init__(self, detail: str | None = None, retry_after: int = 2) -> None:
        super().__init__(detail)
        self.headers["Retry-After"] = str(retry_after)


class InvalidTicket(AppError):
    code, status, title = "invalid_ticket", 422, "The ticket code does not verify"


class WrongEvent(AppError):
    code, status, title = "wrong_event", 409, "The ticket is for another event"


class AlreadyCheckedIn(AppError):
    code, status, title = "already_checked_in", 409, "The ticket was checked in before"

    def __init__(self, checked_in_at: str, ticket_id: str) -> None:
        super().__init__(f"checked in at {checked_in_at}", checked_in_at=checked_in_at, ticket_id=ticket_id)


class TicketRevoked(AppError):
    code, status, title = "ticket_revoked", 409, "The ticket was revoked (refunded or cancelled)"


class PromoCodeInvalid(AppError):
    code, status, title = "promo_code_invalid", 422, "Unknown, inactive or expired promo code for this event"


class PromoCodeExhausted(AppError):
    code, status, title = "promo_code_exhausted", 409, "The promo code's uses are all taken"


class PromoCodeExists(AppError):
    code, status, title = "promo_code_exists", 409, "The event already has a promo code with that code"


class InvalidInvitation(AppError):
    code, status, title = "invalid_invitation", 422, "Unknown, used, revoked or expired team invitation"


class AlreadyWaiting(AppError):
    code, status, title = "already_waiting", 409, "You already wait for this event"


class TicketsAvailable(AppError):
    code, status, title = "tickets_available", 409, "Tickets are available: book them instead"


class EventCancelled(AppError):
    code, status, title = "event_cancelled", 409, "The event was cancelled by its organiser"
