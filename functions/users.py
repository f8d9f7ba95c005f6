"""The `users` function: registration, the caller's profile, and companies."""

from __future__ import annotations

import functions_framework

from functions._common import start
from shared.bootstrap import container
from shared.core.http import ApiRequest, ApiResponse, Router, json_response
from shared.schemas import CompanyOut, UserIn, UserOut, UserPatch

start()
router = Router()


@router.route("POST", "/v1/users")
def register(req: ApiRequest) -> ApiResponse:
    c = container()
    identity = c.authenticator.identity(req.header("Authorization"))
    user = c.users.register(identity, req.json_body(UserIn))
    return json_response(201, UserOut.of(user))


@router.route("GET", "/v1/users/me")
def me(req: ApiRequest) -> ApiResponse:
    c = container()
    principal = c.authenticator.principal(req.header("Authorization"))
    return json_response(200, UserOut.of(c.users.me(principal)))


@router.route("PATCH", "/v1/users/me")
def update_me(req: ApiRequest) -> ApiResponse:
    c = container()
    principal = c.authenticator.principal(req.header("Authorization"))
    user = c.users.update_me(principal, req.json_body(UserPatch))
    return json_response(200, UserOut.of(user))


@router.route("GET", "/v1/companies/{company_id}")
def company(req: ApiRequest) -> ApiResponse:
    c = container()
    principal = c.authenticator.principal(req.header("Authorization"))
    return json_response(200, CompanyOut.of(c.users.company(principal, req.params["company_id"])))


@functions_framework.http
def users(request):  # type: ignore[no-untyped-def]
    return router.handle(request)
