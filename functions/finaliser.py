"""The `finaliser` function, pushed `payment-events`: a succeeded payment confirms its booking (or,
paid too late with the tickets gone, is refunded). A 2xx acknowledges; anything else makes
Pub/Sub redeliver, and finalising twice changes nothing."""

from __future__ import annotations

import functions_framework

from functions._common import start
from shared.bootstrap import container
from shared.core.http import ApiRequest, ApiResponse, Router, json_response
from shared.core.pubsub_push import push_payload

start()
router = Router()


@router.route("POST", "/pubsub/payment-events")
def payment_event(req: ApiRequest) -> ApiResponse:
    payment_id = push_payload(req).get("payment_id")
    if not isinstance(payment_id, str):
        return json_response(200, {"outcome": "ignored"})  # nothing a retry could fix: acknowledge
    return json_response(200, {"outcome": container().payments.finalising.finalize(payment_id)})


@functions_framework.http
def finaliser(request):  # type: ignore[no-untyped-def]
    return router.handle(request)
