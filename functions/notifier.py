"""The `notifier` function, pushed `booking-confirmed`: emails the buyer, once per booking."""

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
    booking_id = push_payload(req).get("booking_id")
    if not isinstance(booking_id, str):
        return json_response(200, {"outcome": "ignored"})
    return json_response(200, {"outcome": container().notifier.booking_confirmed(booking_id)})


@functions_framework.http
def notifier(request):  # type: ignore[no-untyped-def]
    return router.handle(request)
