"""The ticket, door and statistics operations of the OpenAPI document (API.md: Tickets, Check-in,
Event statistics)."""

from __future__ import annotations

from shared import schemas as s
from shared.openapi_operation import Operation

TICKET_OPERATIONS: list[Operation] = [
    Operation(
        "GET",
        "/v1/events/{event_id}/stats",
        "An event's figures, exact at the read (admin of its company): one snapshot of index counts",
        {200: s.EventStatsOut},
        errors=(404,),
    ),
    Operation(
        "GET",
        "/v1/bookings/{booking_id}/tickets",
        "A booking's tickets (its buyer or the event's admins): none until it is confirmed, revoked once refunded",
        {200: s.TicketList},
        errors=(404,),
    ),
    Operation(
        "GET",
        "/v1/tickets/{ticket_id}/qr.svg",
        "A ticket's code as a QR image, SVG (its buyer or the event's admins)",
        {200: None},
        errors=(404,),
        media=("image/svg+xml",),
    ),
    Operation(
        "GET",
        "/v1/tickets/{ticket_id}/qr.png",
        "A ticket's code as a QR image, PNG (its buyer or the event's admins)",
        {200: None},
        errors=(404,),
        media=("image/png",),
    ),
    Operation(
        "GET",
        "/v1/ticket-keys",
        "The public keys that verify ticket codes offline (JWKS, Ed25519)",
        {200: s.TicketKeysOut},
        auth="none",
    ),
    Operation(
        "POST",
        "/v1/events/{event_id}/checkins",
        "Check a ticket in (the event's admins or its check-in devices): exactly one 200 per ticket",
        {200: s.CheckinOut},
        body=s.CheckinIn,
        errors=(404, 409, 422),
    ),
    Operation(
        "POST",
        "/v1/events/{event_id}/checkins/batch",
        "Offline scans uploaded later (at most 500, a body of up to 640 KiB): the earliest scan of a ticket"
        " wins it; a scan_id sent again gets its first result",
        {200: s.BatchOut},
        body=s.BatchIn,
        errors=(404, 422, 503),
    ),
    Operation(
        "GET",
        "/v1/events/{event_id}/revocations",
        "The event's revoked tickets: what an offline scanner must refuse (admins or devices)",
        {200: s.RevocationsOut},
        errors=(404,),
    ),
    Operation(
        "GET",
        "/v1/events/{event_id}/attendees",
        "The event's attendees (admin): JSON pages, or with `Accept: text/csv` the whole list as CSV",
        {200: s.Page[s.AttendeeOut]},
        query=s.ListQuery,
        errors=(404,),
        media=("application/json", "text/csv"),
    ),
    Operation(
        "POST",
        "/v1/events/{event_id}/checkin-devices",
        "Add a check-in device (admin); its token is shown only here",
        {201: s.DeviceCreated},
        body=s.DeviceIn,
        errors=(404,),
    ),
    Operation(
        "GET",
        "/v1/events/{event_id}/checkin-devices",
        "The event's check-in devices, without tokens (admin)",
        {200: s.DeviceList},
        errors=(404,),
    ),
    Operation(
        "DELETE",
        "/v1/events/{event_id}/checkin-devices/{device_id}",
        "Revoke a check-in device at once (admin)",
        {204: None},
        errors=(404,),
    ),
]
