"""The `tasks` function: Cloud Tasks and Cloud Scheduler targets. Private in production (IAM:
only the tasks and scheduler service accounts may invoke it); never routed by the load balancer."""

from __future__ import annotations

from datetime import timedelta

import functions_framework
from pydantic import BaseModel, ConfigDict

from functions._common import start
from shared.bootstrap import container
from shared.core.http import ApiRequest, ApiResponse, Router, json_response
from shared.models import utcnow

settings = start()
router = Router()


class ExpireTask(BaseModel):
    model_config = ConfigDict(extra="ignore")
    booking_id: str


@router.route("POST", "/tasks/expire-booking")
def expire_booking(req: ApiRequest) -> ApiResponse:
    task = req.json_body(ExpireTask)
    expired = container().releasing.expire(task.booking_id)
    return json_response(200, {"booking_id": task.booking_id, "expired": expired is not None})


@router.route("POST", "/tasks/sweep")
def sweep(req: ApiRequest) -> ApiResponse:
    """Every minute: expire what the tasks missed, relay what the domain-event stream still holds."""
    c = container()
    expired = c.releasing.sweep(settings.sweep_batch_size)
    stale = utcnow() - timedelta(seconds=settings.outbox_grace_seconds)
    published = c.relay.deliver_pending(c.stream.unpublished(stale, settings.sweep_batch_size))
    return json_response(200, {"expired": expired, "published": published})


@router.route("POST", "/tasks/reconcile")
def reconcile(req: ApiRequest) -> ApiResponse:
    """Compare recent provider payments with our records and repair the differences."""
    return json_response(200, container().payments.reconciling.reconcile())


@functions_framework.http
def tasks(request):  # type: ignore[no-untyped-def]
    return router.handle(request)
