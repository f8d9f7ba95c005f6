"""The `notifier` function, pushed `booking-confirmed`: emails the buyer, once per booking and kind
(a confirmation with the tickets, or a waitlist offer)."""

from __future__ import annotations

import functions_framework

from functions._common import start
from shared.bootstrap import container
from shared.core.http import ApiRequest, ApiResponse, Router, json_response
from shared.core.pubsub_push import push_payload

start()
router = Router()


@router.route("POST", "/pubsub/booking-confirmed")
def booking_confirmed(req: ApiRequest) -> ApiResponse:
    payload = push_payload(req)
    booking_id = payload.get("booking_id")
    if not isinstance(booking_id, str) or not booking_id:
        return json_response(200, {"outcome": "ignored"})
    if payload.get("type") == "waitlist_entry.offered":
        return json_response(200, {"outcome": container().notifier.offer_made(booking_id)})
    return json_response(200, {"outcome": container().notifier.booking_confirmed(booking_id)})


@functions_framework.http
def notifier(request):  # type: ignore[no-untyped-def]
    return router.handle(request)
