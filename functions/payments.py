"""The `payments` function: pay a booking, read a payment, refund a booking, what needs attention."""

from __future__ import annotations

import functions_framework

from functions._common import start
from functions.bookings import idempotency_key
from shared.bootstrap import container
from shared.core.http import ApiRequest, ApiResponse, Router, json_response
from shared.models import utcnow
from shared.schemas import BookingOut, ListQuery, PaymentIn, PaymentOut
from shared.services.payments.paying import PayRequest

start()
router = Router()


@router.route("POST", "/v1/bookings/{booking_id}/payments")
def pay(req: ApiRequest) -> ApiResponse:
    c = container()
    principal = c.authenticator.principal(req.header("Authorization"))
    body = req.json_body(PaymentIn, empty_ok=True)
    request = PayRequest(req.params["booking_id"], body.payment_method, idempotency_key(req))
    payment, outcome = c.payments.paying.pay(principal, request)
    # 200: this request joined the attempt another one started (a double click); nothing new.
    return json_response(200 if outcome == "joined" else 201, PaymentOut.of(payment, for_buyer=True))


@router.route("GET", "/v1/payments/{payment_id}")
def get(req: ApiRequest) -> ApiResponse:
    c = container()
    principal = c.authenticator.principal(req.header("Authorization"))
    payment = c.payments.queries.get(principal, req.params["payment_id"])
    return json_response(200, PaymentOut.of(payment, for_buyer=payment.user_id == principal.user_id))


@router.route("POST", "/v1/bookings/{booking_id}/refund")
def refund(req: ApiRequest) -> ApiResponse:
    c = container()
    principal = c.authenticator.principal(req.header("Authorization"))
    booking = c.payments.refunding.refund(principal, req.params["booking_id"])
    latest = c.payments.queries.latest_of(booking)
    payment = PaymentOut.of(latest, for_buyer=False) if latest else None
    return json_response(200, BookingOut.of(booking, utcnow(), payment))


@router.route("GET", "/v1/attention")
def attention(req: ApiRequest) -> ApiResponse:
    c = container()
    principal = c.authenticator.principal(req.header("Authorization"))
    query = req.query(ListQuery)
    items = c.payments.queries.needing_attention(principal, query.limit)
    return json_response(
        200,
        {"items": [PaymentOut.of(p, for_buyer=False).model_dump(mode="json") for p in items], "next_page_token": None},
    )


@functions_framework.http
def payments(request):  # type: ignore[no-untyped-def]
    return router.handle(request)
