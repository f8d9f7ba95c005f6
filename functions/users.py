"""The `users` function: registration, the caller's profile, companies and their team (invitations,
members)."""

from __future__ import annotations

import functions_framework

from functions._common import start
from shared.bootstrap import container
from shared.core.http import ApiRequest, ApiResponse, Router, json_response
from shared.models import utcnow
from shared.schemas import (
    CompanyOut,
    InvitationCreated,
    InvitationIn,
    InvitationOut,
    ListQuery,
    Page,
    UserIn,
    UserOut,
    UserPatch,
)

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


@router.route("POST", "/v1/companies/{company_id}/invitations")
def invite(req: ApiRequest) -> ApiResponse:
    c = container()
    principal = c.authenticator.principal(req.header("Authorization"))
    body = req.json_body(InvitationIn)
    invitation, code, sent = c.team.invite(principal, req.params["company_id"], body.email)
    shown = InvitationOut.of(invitation, invitation.created_at)
    return json_response(201, InvitationCreated(**shown.model_dump(), code=code, email_sent=sent))


@router.route("GET", "/v1/companies/{company_id}/invitations")
def invitations(req: ApiRequest) -> ApiResponse:
    c = container()
    principal = c.authenticator.principal(req.header("Authorization"))
    query = req.query(ListQuery)
    found, token = c.team.invitations_of(principal, req.params["company_id"], query.limit, query.page_token)
    now = utcnow()
    return json_response(
        200, Page[InvitationOut](items=[InvitationOut.of(i, now) for i in found], next_page_token=token)
    )


@router.route("DELETE", "/v1/companies/{company_id}/invitations/{invitation_id}")
def revoke_invitation(req: ApiRequest) -> ApiResponse:
    c = container()
    principal = c.authenticator.principal(req.header("Authorization"))
    revoked = c.team.revoke(principal, req.params["company_id"], req.params["invitation_id"])
    return json_response(200, InvitationOut.of(revoked, utcnow()))


@router.route("GET", "/v1/companies/{company_id}/members")
def members(req: ApiRequest) -> ApiResponse:
    c = container()
    principal = c.authenticator.principal(req.header("Authorization"))
    query = req.query(ListQuery)
    found, token = c.team.members(principal, req.params["company_id"], query.limit, query.page_token)
    return json_response(200, Page[UserOut](items=[UserOut.of(u) for u in found], next_page_token=token))


@functions_framework.http
def users(request):  # type: ignore[no-untyped-def]
    return router.handle(request)
