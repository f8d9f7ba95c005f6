"""The `meta` function: health, the OpenAPI document and the ticket-verification keys."""

from __future__ import annotations

import functions_framework

from functions._common import start
from shared.core.http import ApiRequest, ApiResponse, Router, json_response

settings = start()
router = Router()


@router.route("GET", "/healthz")
def healthz(req: ApiRequest) -> ApiResponse:
    return json_response(200, {"status": "ok"})


@router.route("GET", "/v1/openapi.json")
def openapi(req: ApiRequest) -> ApiResponse:
    from shared.openapi import document  # built on first request: keeps the cold start short

    return json_response(200, document(include_dev=settings.is_local))


@router.route("GET", "/v1/ticket-keys")
def ticket_keys(req: ApiRequest) -> ApiResponse:
    """The public keys that verify ticket codes offline (a JWKS); cacheable for a few minutes."""
    from shared.bootstrap import container

    return json_response(200, container().tickets.codes.jwks(), **{"Cache-Control": "public, max-age=300"})


@functions_framework.http
def meta(request):  # type: ignore[no-untyped-def]
    return router.handle(request)
