"""The `bookings` function: hold tickets, read and cancel bookings, an event's bookings for admins."""

from __future__ import annotations

import re

import functions_framework

from functions._common import start
from shared.bootstrap import container
from shared.core.errors import ValidationFailed
from shared.core.http import ApiRequest, ApiResponse, Router, json_response
from shared.models import utcnow
from shared.schemas import BookingIn, BookingOut, ListQuery, PaymentOut, TicketList, TicketOut, WaitlistEntryOut
from shared.services.bookings.ports import HoldRequest

start()
router = Router()
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


def idempotency_key(req: ApiRequest) -> str | None:
    key = req.header("Idempotency-Key")
    if key is None:
        return None
    if not _IDEMPOTENCY_KEY.match(key):
        raise ValidationFailed(
            "Idempotency-Key must be 1-255 printable characters",
            [{"field": "Idempotency-Key", "message": "1-255 printable ASCII characters"}],
        )
    return key


@router.route("POST", "/v1/events/{event_id}/bookings")
def hold(req: ApiRequest) -> ApiResponse:
    c = container()
    identity = c.authenticator.identity(req.header("Authorization"))
    body = req.json_body(BookingIn)
    request = HoldRequest(req.params["event_id"], body.quantity, idempotency_key(req), body.promo_code)
    booking, _created = c.holding.hold(lambda: c.authenticator.principal_of(identity), identity.subject, request)
    return json_response(201, BookingOut.of(booking, utcnow()))


@router.route("GET", "/v1/events/{event_id}/bookings")
def of_event(req: ApiRequest) -> ApiResponse:
    c = container()
    principal = c.authenticator.principal(req.header("Authorization"))
    query = req.query(ListQuery)
    return json_response(
        200, c.booking_queries.of_event(principal, req.params["event_id"], query.limit, query.page_token)
    )


@router.route("GET", "/v1/waitlist")
def my_waitlist(req: ApiRequest) -> ApiResponse:
    c = container()
    principal = c.authenticator.principal(req.header("Authorization"))
    return json_response(200, c.waitlist.service.mine(principal, req.query(ListQuery)))


@router.route("DELETE", "/v1/waitlist/{entry_id}")
def leave_waitlist(req: ApiRequest) -> ApiResponse:
    c = container()
    principal = c.authenticator.principal(req.header("Authorization"))
    return json_response(200, WaitlistEntryOut.of(c.waitlist.service.leave(principal, req.params["entry_id"])))


@router.route("GET", "/v1/bookings")
def mine(req: ApiRequest) -> ApiResponse:
    c = container()
    principal = c.authenticator.principal(req.header("Authorization"))
    query = req.query(ListQuery)
    return json_response(200, c.booking_queries.mine(principal, query.limit, query.page_token))


@router.route("GET", "/v1/bookings/{booking_id}")
def get(req: ApiRequest) -> ApiResponse:
    c = container()
    principal = c.authenticator.principal(req.header("Authorization"))
    booking = c.booking_queries.get(principal, req.params["booking_id"])
    latest = c.payments.queries.latest_of(booking)
    payment = PaymentOut.of(latest, for_buyer=booking.user_id == principal.user_id) if latest else None
    return json_response(200, BookingOut.of(booking, utcnow(), payment))


@router.route("GET", "/v1/bookings/{booking_id}/tickets")
def tickets(req: ApiRequest) -> ApiResponse:
    c = container()
    principal = c.authenticator.principal(req.header("Authorization"))
    found = c.tickets.queries.of_booking(principal, req.params["booking_id"])
    return json_response(200, TicketList(items=[TicketOut.of(t) for t in found]))


@router.route("GET", "/v1/tickets/{ticket_id}/qr.svg")
def ticket_svg(req: ApiRequest) -> ApiResponse:
    return _qr(req, "svg")


@router.route("GET", "/v1/tickets/{ticket_id}/qr.png")
def ticket_png(req: ApiRequest) -> ApiResponse:
    return _qr(req, "png")


def _qr(req: ApiRequest, kind: str) -> ApiResponse:
    from shared.services.tickets import qr

    c = container()
    principal = c.authenticator.principal(req.header("Authorization"))
    ticket = c.tickets.queries.get(principal, req.params["ticket_id"])
    image, media = (qr.svg(ticket.code), "image/svg+xml") if kind == "svg" else (qr.png(ticket.code), "image/png")
    return ApiResponse(200, image, {"Content-Type": media, "Cache-Control": "private, max-age=300"})


@router.route("POST", "/v1/bookings/{booking_id}/cancel")
def cancel(req: ApiRequest) -> ApiResponse:
    c = container()
    principal = c.authenticator.principal(req.header("Authorization"))
    return json_response(200, BookingOut.of(c.releasing.cancel(principal, req.params["booking_id"]), utcnow()))


@functions_framework.http
def bookings(request):  # type: ignore[no-untyped-def]
    return router.handle(request)
