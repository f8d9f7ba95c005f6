"""The OpenAPI 3.1 document, generated from the same pydantic models the handlers validate with."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from shared import schemas as s
from shared.core import errors
from shared.openapi_cancel import CANCEL_OPERATIONS
from shared.openapi_links import LINKS
from shared.openapi_operation import Operation
from shared.openapi_promo import PROMO_OPERATIONS
from shared.openapi_team import TEAM_OPERATIONS
from shared.openapi_tickets import TICKET_OPERATIONS
from shared.openapi_waitlist import WAITLIST_OPERATIONS
from shared.openapi_webhooks import WEBHOOK_OPERATIONS

PROBLEM = "application/problem+json"
# What the handlers accept in each request header (functions/bookings.py, shared/services/events.py).
HEADER_SCHEMAS: dict[str, dict[str, Any]] = {
    "Idempotency-Key": {"type": "string", "pattern": "^[!-~]{1,255}$"},
    "If-Match": {"type": "string", "pattern": '^(W/)?"[0-9]{1,18}"$'},
}
REF = "#/components/schemas/{model}"


OPERATIONS: list[Operation] = [
    Operation("GET", "/healthz", "Liveness", {200: s.Health}, auth="none"),
    Operation("GET", "/v1/openapi.json", "This document", {200: None}, auth="none"),
    Operation("POST", "/v1/users", "Register the token's subject", {201: s.UserOut}, body=s.UserIn, errors=(409,)),
    Operation("GET", "/v1/users/me", "The caller", {200: s.UserOut}),
    Operation("PATCH", "/v1/users/me", "Change the caller's profile", {200: s.UserOut}, body=s.UserPatch),
    Operation("GET", "/v1/companies/{company_id}", "A company (its admins only)", {200: s.CompanyOut}, errors=(404,)),
    Operation("POST", "/v1/events", "Create an event (admin)", {201: s.EventOut}, body=s.EventIn),
    Operation(
        "GET", "/v1/events", "Search published events", {200: s.Page[s.EventOut]}, auth="none", query=s.EventSearch
    ),
    Operation("GET", "/v1/events/{event_id}", "An event", {200: s.EventOut}, auth="optional", errors=(404,)),
    Operation(
        "GET",
        "/v1/events/{event_id}/audit",
        "An event's audit log, newest first (admin of its company)",
        {200: s.Page[s.AuditEntryOut]},
        query=s.ListQuery,
        errors=(404,),
    ),
    Operation(
        "PATCH",
        "/v1/events/{event_id}",
        "Change an event (admin of its company)",
        {200: s.EventOut},
        body=s.EventPatch,
        headers=("If-Match",),
        errors=(404, 409, 412, 428),
    ),
    Operation(
        "POST",
        "/v1/events/{event_id}/bookings",
        "Hold tickets (registered user); 429 rate_limited past MAX_HOLDS_PER_BUYER_PER_MINUTE holds of one event",
        {201: s.BookingOut},
        body=s.BookingIn,
        headers=("Idempotency-Key",),
        errors=(404, 409, 429, 503),
    ),
    Operation(
        "GET",
        "/v1/events/{event_id}/bookings",
        "An event's bookings (admin of its company)",
        {200: s.Page[s.BookingOut]},
        query=s.ListQuery,
        errors=(404,),
    ),
    Operation(
        "GET", "/v1/bookings", "The caller's bookings, newest first", {200: s.Page[s.BookingOut]}, query=s.ListQuery
    ),
    Operation(
        "GET",
        "/v1/bookings/{booking_id}",
        "A booking (its buyer or the event's admins)",
        {200: s.BookingOut},
        errors=(404,),
    ),
    Operation(
        "POST",
        "/v1/bookings/{booking_id}/payments",
        "Pay a booking (its buyer): client-side, or server-side with payment_method. 201: this request"
        " started the attempt (or repeats, with its Idempotency-Key, the one that did); 200: an attempt of the"
        " same request was already under way and is returned as it is. 409 payment_in_progress (Retry-After):"
        " another attempt's provider call has not answered yet, or money is moving for another request",
        {201: s.PaymentOut, 200: s.PaymentOut},
        body=s.PaymentIn,
        body_required=False,
        headers=("Idempotency-Key",),
        errors=(402, 404, 409, 503),
    ),
    Operation(
        "GET",
        "/v1/payments/{payment_id}",
        "A payment (its buyer or the event's admins)",
        {200: s.PaymentOut},
        errors=(404,),
    ),
    Operation(
        "POST",
        "/v1/bookings/{booking_id}/refund",
        "Refund a confirmed booking (admin of the event's company). 409 payment_in_progress: another"
        " refund of it is still waiting for the provider",
        {200: s.BookingOut},
        errors=(404, 409, 503),
    ),
    Operation(
        "GET", "/v1/attention", "Payments that need a person (admin)", {200: s.Page[s.PaymentOut]}, query=s.ListQuery
    ),
    Operation(
        "POST",
        "/v1/webhooks/stripe",
        "Stripe events (signed with Stripe-Signature)",
        {200: None},
        auth="none",
        headers=("Stripe-Signature",),
        errors=(400, 503),
    ),
    Operation(
        "POST",
        "/v1/bookings/{booking_id}/cancel",
        "Cancel an unpaid booking (its buyer)",
        {200: s.BookingOut},
        errors=(404, 409),
    ),
]

OPERATIONS += TICKET_OPERATIONS
OPERATIONS += TEAM_OPERATIONS
OPERATIONS += PROMO_OPERATIONS
OPERATIONS += CANCEL_OPERATIONS
OPERATIONS += WAITLIST_OPERATIONS
OPERATIONS += WEBHOOK_OPERATIONS

DEV_OPERATIONS: list[Operation] = [
    Operation("POST", "/dev/token", "Mint a local ID token", {200: s.DevTokenOut}, auth="none", body=s.DevTokenIn),
    Operation("GET", "/dev/jwks.json", "Local issuer's public keys", {200: None}, auth="none"),
]


def _models() -> list[type[BaseModel]]:
    found: dict[str, type[BaseModel]] = {"Problem": s.Problem}
    for op in OPERATIONS + DEV_OPERATIONS:
        for model in [op.body, *op.responses.values()]:
            if model is not None:
                found[model.__name__] = model
    return list(found.values())


@lru_cache(maxsize=2)
def document(include_dev: bool = False) -> dict[str, Any]:
    refs, defs = models_json_schema(
        [(m, "validation" if m in _request_models() else "serialization") for m in _models()],
        ref_template=REF,
    )
    schemas = defs.get("$defs", {})
    schemas["Problem"]["properties"]["code"]["enum"] = problem_codes()
    _not_nullable(schemas["EventPatch"], keep={"description", "version"})
    paths: dict[str, Any] = {}
    for op in OPERATIONS + (DEV_OPERATIONS if include_dev else []):
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, refs)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Event ticketing API", "version": "1.0.0"},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }


def _not_nullable(schema: dict[str, Any], keep: set[str]) -> None:
    """A PATCH may leave a field out, but only `keep` may be set to null (EventPatch refuses the rest)."""
    for name, prop in schema["properties"].items():
        options = prop.get("anyOf")
        if name in keep or not options:
            continue
        rest = [o for o in options if o != {"type": "null"}]
        prop.pop("anyOf")
        prop.pop("default", None)
        prop.update(rest[0] if len(rest) == 1 else {"anyOf": rest})


def problem_codes() -> list[str]:
    """Every stable problem code the API answers with (one exception class each)."""
    found: set[str] = set()
    pending: list[type[errors.AppError]] = [errors.AppError]
    while pending:
        cls = pending.pop()
        found.add(cls.code)
        pending.extend(cls.__subclasses__())
    return sorted(found)


def _request_models() -> set[type[BaseModel]]:
    return {op.body for op in OPERATIONS + DEV_OPERATIONS if op.body is not None}


def _ref(model: type[BaseModel], refs: dict[Any, Any]) -> dict[str, Any]:
    mode = "validation" if model in _request_models() else "serialization"
    return refs[(model, mode)]


def operation_id(method: str, path: str) -> str:
    return f"{method.lower()}{path}"


def _links(op: Operation, status: int) -> dict[str, Any]:
    return {
        name: {"operationId": operation_id(method, path), "parameters": dict(parameters)}
        for name, (method, path, parameters) in LINKS.get((op.method, op.path, status), {}).items()
    }


def _operation(op: Operation, refs: dict[Any, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {"summary": op.summary, "operationId": operation_id(op.method, op.path)}
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"}}
        for name in _path_names(op.path)
    ]
    if op.query is not None:
        schema = op.query.model_json_schema(by_alias=True)
        required = set(schema.get("required", []))
        for name, prop in schema["properties"].items():
            params.append({"name": name, "in": "query", "required": name in required, "schema": prop})
    for header in op.headers:
        header_schema = dict(HEADER_SCHEMAS.get(header, {"type": "string"}))
        params.append({"name": header, "in": "header", "required": False, "schema": header_schema})
    if params:
        result["parameters"] = params
    if op.body is not None:
        result["requestBody"] = {
            "required": op.body_required,
            "content": {"application/json": {"schema": _ref(op.body, refs)}},
        }
    if op.auth == "required":
        result["security"] = [{"bearer": []}]
    elif op.auth == "optional":
        result["security"] = [{}, {"bearer": []}]
    responses: dict[str, Any] = {}
    for status, model in op.responses.items():
        if status == 204:
            responses[str(status)] = {"description": "Done; no body"}
            continue
        content: dict[str, Any] = {}
        for media in op.media:
            if media == "application/json":
                content[media] = {"schema": _ref(model, refs) if model else {"type": "object"}}
            else:
                content[media] = {"schema": {"type": "string", "format": "binary"}}
        responses[str(status)] = {"description": "OK", "content": content}
        if links := _links(op, status):
            responses[str(status)]["links"] = links
    error_statuses = set(op.errors) | {413, 422}
    if op.query is not None:
        error_statuses |= {414}  # the server refuses request lines over its limit before the app
    if op.auth == "required":
        error_statuses |= {401, 403}
    elif op.auth == "optional":
        error_statuses |= {401}
    problem = {PROBLEM: {"schema": {"$ref": REF.format(model="Problem")}}}
    for status in sorted(error_statuses):
        responses[str(status)] = {"description": "Problem", "content": problem}
    if 414 in error_statuses:  # answered by the HTTP server itself, in its own format
        responses["414"] = {
            "description": "Request line too long",
            "content": {"text/html": {"schema": {"type": "string"}}},
        }
    result["responses"] = responses
    return result


def _path_names(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]
