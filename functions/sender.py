"""The `sender` function: the only one that calls out to integrators. Each Cloud Task of the
webhook queue is one attempt of one delivery (shared/services/webhooks/sending.py). Private in
production: only the webhook tasks' own identity may invoke it, and its service account may invoke
nothing (infra/terraform)."""

from __future__ import annotations

import functions_framework
from pydantic import BaseModel, ConfigDict, Field

from functions._common import start
from shared.bootstrap import container
from shared.core.http import ApiRequest, ApiResponse, Router, json_response
from shared.wiring_webhooks import webhook_services

start()
router = Router()


class SendTask(BaseModel):
    model_config = ConfigDict(extra="ignore")
    delivery_id: str = Field(min_length=1, max_length=64)
    attempt: int = Field(ge=1, le=1000)


@router.route("POST", "/deliveries/send")
def send(req: ApiRequest) -> ApiResponse:
    task = req.json_body(SendTask)
    outcome = webhook_services(container()).sender.attempt(task.delivery_id, task.attempt)
    return json_response(200, {"delivery_id": task.delivery_id, "attempt": task.attempt, "outcome": outcome})


@functions_framework.http
def sender(request):  # type: ignore[no-untyped-def]
    return router.handle(request)
