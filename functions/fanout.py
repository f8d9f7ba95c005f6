"""The `fanout` function, pushed `integration-events` (the stream's relay): turns each committed
domain event into one delivery per subscribed endpoint of its company, and asks for the first
attempt of each. Private in production; Pub/Sub redelivers on any failure, and the fan-out is
idempotent (a delivery's id is derived from its endpoint and domain event)."""

from __future__ import annotations

import functions_framework

from functions._common import start
from shared.bootstrap import container
from shared.core.http import ApiRequest, ApiResponse, Router, json_response
from shared.core.pubsub_push import push_payload
from shared.wiring_webhooks import webhook_services

start()
router = Router()


@router.route("POST", "/pubsub/integration-events")
def integration_event(req: ApiRequest) -> ApiResponse:
    return json_response(200, {"deliveries": webhook_services(container()).fanout.take(push_payload(req))})


@functions_framework.http
def fanout(request):  # type: ignore[no-untyped-def]
    return router.handle(request)
