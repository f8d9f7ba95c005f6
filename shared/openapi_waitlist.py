"""The waitlist operations of the OpenAPI document (API.md, Waitlist)."""

from __future__ import annotations

from shared import schemas as s
from shared.openapi_operation import Operation

WAITLIST_OPERATIONS: list[Operation] = [
    Operation(
        "POST",
        "/v1/events/{event_id}/waitlist",
        "Join a sold-out event's waitlist (registered user); 409 tickets_available or already_waiting",
        {201: s.WaitlistEntryOut},
        body=s.WaitlistJoinIn,
        errors=(404, 409),
    ),
    Operation(
        "GET",
        "/v1/events/{event_id}/waitlist",
        "An event's waitlist in the order of joining (admin of its company)",
        {200: s.Page[s.WaitlistEntryOut]},
        query=s.ListQuery,
        errors=(404,),
    ),
    Operation(
        "GET",
        "/v1/waitlist",
        "The caller's waitlist entries, newest first",
        {200: s.Page[s.WaitlistEntryOut]},
        query=s.ListQuery,
    ),
    Operation(
        "DELETE",
        "/v1/waitlist/{entry_id}",
        "Leave the waitlist (the entry's owner, while it is waiting); 409 invalid_state otherwise",
        {200: s.WaitlistEntryOut},
        errors=(404, 409),
    ),
]

WAITLIST_LINKS: dict[tuple[str, str, int], dict[str, tuple[str, str, dict[str, str]]]] = {
    ("POST", "/v1/events/{event_id}/waitlist", 201): {
        "LeaveWaitlist": ("DELETE", "/v1/waitlist/{entry_id}", {"path.entry_id": "$response.body#/id"}),
        "ListMyWaitlist": ("GET", "/v1/waitlist", {}),
    },
}
