"""The `integrations` function: a company's admins manage the endpoints that receive its webhooks,
read their delivery logs and send a delivery again (API.md, Webhooks to integrators)."""

from __future__ import annotations

import functions_framework

from functions._common import start
from shared.bootstrap import container
from shared.core.http import ApiRequest, ApiResponse, Router, json_response
from shared.schemas import ListQuery, Page
from shared.schemas.webhooks import DeliveryOut, EndpointCreated, EndpointIn, EndpointOut, EndpointPatch
from shared.wiring_webhooks import webhook_services

start()
router = Router()


@router.route("POST", "/v1/webhook-endpoints")
def create(req: ApiRequest) -> ApiResponse:
    c = container()
    principal = c.authenticator.principal(req.header("Authorization"))
    endpoint, secret = webhook_services(c).endpoints.create(principal, req.json_body(EndpointIn))
    return json_response(201, EndpointCreated(**EndpointOut.of(endpoint).model_dump(), secret=secret))


@router.route("GET", "/v1/webhook-endpoints")
def list_endpoints(req: ApiRequest) -> ApiResponse:
    c = container()
    principal = c.authenticator.principal(req.header("Authorization"))
    query = req.query(ListQuery)
    found, token = webhook_services(c).endpoints.page(principal, query.limit, query.page_token)
    return json_response(200, Page[EndpointOut](items=[EndpointOut.of(e) for e in found], next_page_token=token))


@router.route("GET", "/v1/webhook-endpoints/{endpoint_id}")
def get(req: ApiRequest) -> ApiResponse:
    c = container()
    principal = c.authenticator.principal(req.header("Authorization"))
    return json_response(200, EndpointOut.of(webhook_services(c).endpoints.get(principal, req.params["endpoint_id"])))


@router.route("PATCH", "/v1/webhook-endpoints/{endpoint_id}")
def update(req: ApiRequest) -> ApiResponse:
    c = container()
    principal = c.authenticator.principal(req.header("Authorization"))
    patch = req.json_body(EndpointPatch)
    return json_response(
        200, EndpointOut.of(webhook_services(c).endpoints.update(principal, req.params["endpoint_id"], patch))
    )


@router.route("DELETE", "/v1/webhook-endpoints/{endpoint_id}")
def delete(req: ApiRequest) -> ApiResponse:
    c = container()
    principal = c.authenticator.principal(req.header("Authorization"))
    webhook_services(c).endpoints.delete(principal, req.params["endpoint_id"])
    return ApiResponse(204, None)


@router.route("GET", "/v1/webhook-endpoints/{endpoint_id}/deliveries")
def deliveries(req: ApiRequest) -> ApiResponse:
    c = container()
    principal = c.authenticator.principal(req.header("Authorization"))
    query = req.query(ListQuery)
    found, token = webhook_services(c).endpoints.delivery_log(
        principal, req.params["endpoint_id"], query.limit, query.page_token
    )
    return json_response(200, Page[DeliveryOut](items=[DeliveryOut.of(d) for d in found], next_page_token=token))


@router.route("POST", "/v1/webhook-endpoints/{endpoint_id}/deliveries/{delivery_id}/retry")
def retry(req: ApiRequest) -> ApiResponse:
    c = container()
    principal = c.authenticator.principal(req.header("Authorization"))
    again = webhook_services(c).endpoints.retry(principal, req.params["endpoint_id"], req.params["delivery_id"])
    return json_response(202, DeliveryOut.of(again))


@functions_framework.http
def integrations(request):  # type: ignore[no-untyped-def]
    return router.handle(request)
