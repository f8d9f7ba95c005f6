"""The outbound webhook operations of the OpenAPI document (API.md, Webhooks to integrators)."""

from __future__ import annotations

from shared import schemas as s
from shared.openapi_operation import Operation
from shared.schemas.webhooks import DeliveryOut, EndpointCreated, EndpointIn, EndpointOut, EndpointPatch

ENDPOINT = "/v1/webhook-endpoints/{endpoint_id}"

WEBHOOK_OPERATIONS: list[Operation] = [
    Operation(
        "POST",
        "/v1/webhook-endpoints",
        "Register an endpoint of the caller's company (admin); the signing secret is shown only here",
        {201: EndpointCreated},
        body=EndpointIn,
        errors=(409,),
    ),
    Operation(
        "GET",
        "/v1/webhook-endpoints",
        "The company's webhook endpoints (admin)",
        {200: s.Page[EndpointOut]},
        query=s.ListQuery,
    ),
    Operation("GET", ENDPOINT, "One webhook endpoint of the company (admin)", {200: EndpointOut}, errors=(404,)),
    Operation(
        "PATCH",
        ENDPOINT,
        "Change an endpoint's url, events or status (admin); enabling it again resets its failures",
        {200: EndpointOut},
        body=EndpointPatch,
        errors=(404,),
    ),
    Operation("DELETE", ENDPOINT, "Delete a webhook endpoint (admin)", {204: None}, errors=(404,)),
    Operation(
        "GET",
        f"{ENDPOINT}/deliveries",
        "The endpoint's delivery log, newest first (admin)",
        {200: s.Page[DeliveryOut]},
        query=s.ListQuery,
        errors=(404,),
    ),
    Operation(
        "POST",
        f"{ENDPOINT}/deliveries/{{delivery_id}}/retry",
        "Send a delivery again now, as its next attempt (admin)",
        {202: DeliveryOut},
        errors=(404,),
    ),
]

WEBHOOK_LINKS: dict[tuple[str, str, int], dict[str, tuple[str, str, dict[str, str]]]] = {
    ("POST", "/v1/webhook-endpoints", 201): {
        "GetEndpoint": ("GET", ENDPOINT, {"path.endpoint_id": "$response.body#/id"}),
        "PatchEndpoint": ("PATCH", ENDPOINT, {"path.endpoint_id": "$response.body#/id"}),
        "EndpointDeliveries": ("GET", f"{ENDPOINT}/deliveries", {"path.endpoint_id": "$response.body#/id"}),
        "DeleteEndpoint": ("DELETE", ENDPOINT, {"path.endpoint_id": "$response.body#/id"}),
    },
}
