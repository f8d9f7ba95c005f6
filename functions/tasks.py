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
from shared.wiring_cancel import cancel_services
from shared.wiring_webhooks import webhook_services

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


class ServeTask(BaseModel):
    model_config = ConfigDict(extra="ignore")
    event_id: str


@router.route("POST", "/tasks/serve-waitlist")
def serve_waitlist(req: ApiRequest) -> ApiResponse:
    task = req.json_body(ServeTask)
    return json_response(200, {"event_id": task.event_id, "offers": container().waitlist.server.serve(task.event_id)})


class CancelEventTask(BaseModel):
    model_config = ConfigDict(extra="ignore")
    event_id: str
    run: str = "manual"
    after: str | None = None


@router.route("POST", "/tasks/cancel-event")
def cancel_event(req: ApiRequest) -> ApiResponse:
    """One batch of a cancelled event's bookings; it asks for the next (shared/services/cancelling)."""
    task = req.json_body(CancelEventTask)
    return json_response(200, cancel_services(container()).fanout.run(task.event_id, task.run, task.after))


@router.route("POST", "/tasks/sweep")
def sweep(req: ApiRequest) -> ApiResponse:
    """Every minute: expire what the tasks missed, relay what the domain-event stream still holds,
    serve the waitlists that a lost task left waiting."""
    c = container()
    expired = c.releasing.sweep(settings.sweep_batch_size)
    stale = utcnow() - timedelta(seconds=settings.outbox_grace_seconds)
    published = c.relay.deliver_pending(c.stream.unpublished(stale, settings.sweep_batch_size))
    offers = c.waitlist.server.sweep(settings.sweep_batch_size)
    cancellations = cancel_services(c).fanout.resume()  # what a crash or a lost task left of a cancellation
    deliveries = webhook_services(c).sender.resume(settings.sweep_batch_size)  # webhook attempts a task lost
    return json_response(
        200,
        {
            "expired": expired,
            "published": published,
            "offers": offers,
            "cancellations": cancellations,
            "deliveries": deliveries,
        },
    )


@router.route("POST", "/tasks/reconcile")
def reconcile(req: ApiRequest) -> ApiResponse:
    """Compare recent provider payments with our records and repair the differences."""
    return json_response(200, container().payments.reconciling.reconcile())


@functions_framework.http
def tasks(request):  # type: ignore[no-untyped-def]
    return router.handle(request)
