"""The `events` function: managers create and update events; anyone searches and reads them."""

from __future__ import annotations

import functions_framework

from functions._common import start
from shared.bootstrap import container
from shared.core.http import ApiRequest, ApiResponse, Router, json_response
from shared.schemas import (
    EventIn,
    EventPatch,
    EventSearch,
    EventStatsOut,
    ListQuery,
    PromoCodeIn,
    PromoCodePatch,
    WaitlistEntryOut,
    WaitlistJoinIn,
)
from shared.schemas.cancel import EventCancelIn
from shared.services.events import EventView
from shared.wiring_cancel import cancel_services

start()
router = Router()


def _event(status: int, view: EventView) -> ApiResponse:
    return json_response(status, view.out(), ETag=f'"{view.event.version}"')


@router.route("POST", "/v1/events")
def create(req: ApiRequest) -> ApiResponse:
    c = container()
    principal = c.authenticator.principal(req.header("Authorization"))
    return _event(201, c.events.create(principal, req.json_body(EventIn)))


@router.route("GET", "/v1/events")
def search(req: ApiRequest) -> ApiResponse:
    c = container()
    c.authenticator.optional_principal(req.header("Authorization"))  # no token is fine; a bad one is not
    return json_response(200, c.events.search(req.query(EventSearch)))


@router.route("GET", "/v1/events/{event_id}")
def get(req: ApiRequest) -> ApiResponse:
    c = container()
    principal = c.authenticator.optional_principal(req.header("Authorization"))
    view = cancel_services(c).cancelling.with_progress(c.events.get(principal, req.params["event_id"]))
    return _event(200, view)


@router.route("PATCH", "/v1/events/{event_id}")
def update(req: ApiRequest) -> ApiResponse:
    c = container()
    principal = c.authenticator.principal(req.header("Authorization"))
    patch = req.json_body(EventPatch)
    view = c.events.update(principal, req.params["event_id"], patch, req.header("If-Match"))
    return _event(200, view)


@router.route("POST", "/v1/events/{event_id}/cancel")
def cancel(req: ApiRequest) -> ApiResponse:
    """202: cancelled; its bookings are settled in the background (docs/cancelling-events.md)."""
    c = container()
    principal = c.authenticator.principal(req.header("Authorization"))
    reason = req.json_body(EventCancelIn).reason
    view = cancel_services(c).cancelling.cancel(principal, req.params["event_id"], reason, req.header("If-Match"))
    return _event(202, view)


@router.route("GET", "/v1/events/{event_id}/stats")
def stats(req: ApiRequest) -> ApiResponse:
    c = container()
    principal = c.authenticator.principal(req.header("Authorization"))
    return json_response(200, EventStatsOut.model_validate(c.tickets.stats.of(principal, req.params["event_id"])))


@router.route("GET", "/v1/events/{event_id}/audit")
def audit(req: ApiRequest) -> ApiResponse:
    c = container()
    principal = c.authenticator.principal(req.header("Authorization"))
    query = req.query(ListQuery)
    return json_response(200, c.audit.of_event(principal, req.params["event_id"], query.limit, query.page_token))


@router.route("POST", "/v1/events/{event_id}/promo-codes")
def create_promo_code(req: ApiRequest) -> ApiResponse:
    c = container()
    principal = c.authenticator.principal(req.header("Authorization"))
    return json_response(201, c.promo.codes.create(principal, req.params["event_id"], req.json_body(PromoCodeIn)))


@router.route("GET", "/v1/events/{event_id}/promo-codes")
def promo_codes(req: ApiRequest) -> ApiResponse:
    c = container()
    principal = c.authenticator.principal(req.header("Authorization"))
    return json_response(200, c.promo.codes.page(principal, req.params["event_id"], req.query(ListQuery)))


@router.route("PATCH", "/v1/events/{event_id}/promo-codes/{code}")
def update_promo_code(req: ApiRequest) -> ApiResponse:
    c = container()
    principal = c.authenticator.principal(req.header("Authorization"))
    patch = req.json_body(PromoCodePatch)
    return json_response(200, c.promo.codes.update(principal, req.params["event_id"], req.params["code"], patch))


@router.route("POST", "/v1/events/{event_id}/waitlist")
def join_waitlist(req: ApiRequest) -> ApiResponse:
    c = container()
    identity = c.authenticator.identity(req.header("Authorization"))
    principal = c.authenticator.principal_of(identity)
    body = req.json_body(WaitlistJoinIn)
    entry = c.waitlist.service.join(principal, identity.subject, req.params["event_id"], body.quantity)
    return json_response(201, WaitlistEntryOut.of(entry))


@router.route("GET", "/v1/events/{event_id}/waitlist")
def event_waitlist(req: ApiRequest) -> ApiResponse:
    c = container()
    principal = c.authenticator.principal(req.header("Authorization"))
    return json_response(200, c.waitlist.service.of_event(principal, req.params["event_id"], req.query(ListQuery)))


@functions_framework.http
def events(request):  # type: ignore[no-untyped-def]
    return router.handle(request)
