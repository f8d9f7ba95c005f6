"""The `webhooks` function: Stripe's events, verified on the raw body, recorded once, then 2xx."""

from __future__ import annotations

import functions_framework

from functions._common import start
from shared.bootstrap import container
from shared.core.http import ApiRequest, ApiResponse, Router, json_response

start()
router = Router()


@router.route("POST", "/v1/webhooks/stripe")
def stripe_event(req: ApiRequest) -> ApiResponse:
    fresh = container().payments.intake.take(req.body(), req.header("Stripe-Signature"))
    return json_response(200, {"received": True, "duplicate": not fresh})


@functions_framework.http
def webhooks(request):  # type: ignore[no-untyped-def]
    return router.handle(request)
