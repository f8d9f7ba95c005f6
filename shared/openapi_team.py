"""The team operations of the OpenAPI document (API.md: Team members): invitations and members.

Every operation with a path parameter documents 404: an id outside the router's alphabet is no route."""

from __future__ import annotations

from shared import schemas as s
from shared.openapi_operation import Operation

TEAM_OPERATIONS: list[Operation] = [
    Operation(
        "POST",
        "/v1/companies/{company_id}/invitations",
        "Invite a colleague to join the company as an admin (its admins): the single-use code, valid for"
        " 7 days, is shown only here and e-mailed to `email`",
        {201: s.InvitationCreated},
        body=s.InvitationIn,
        errors=(404,),
    ),
    Operation(
        "GET",
        "/v1/companies/{company_id}/invitations",
        "The company's invitations, without their codes (its admins)",
        {200: s.Page[s.InvitationOut]},
        query=s.ListQuery,
        errors=(404,),
    ),
    Operation(
        "DELETE",
        "/v1/companies/{company_id}/invitations/{invitation_id}",
        "Revoke a pending invitation (its company's admins); 409 invalid_state for one that is not pending",
        {200: s.InvitationOut},
        errors=(404, 409, 503),
    ),
    Operation(
        "GET",
        "/v1/companies/{company_id}/members",
        "The company's users (its admins)",
        {200: s.Page[s.UserOut]},
        query=s.ListQuery,
        errors=(404,),
    ),
]
