"""The `checkin` function: the door. Check-in online and in offline batches, the revocation list,
check-in devices, and the attendees of an event."""

from __future__ import annotations

import functions_framework

from functions._common import start
from shared.bootstrap import container
from shared.core.http import ApiRequest, ApiResponse, Router, json_response
from shared.schemas import (
    AttendeeOut,
    BatchIn,
    BatchOut,
    CheckinIn,
    CheckinOut,
    DeviceCreated,
    DeviceIn,
    DeviceList,
    DeviceOut,
    ListQuery,
    Page,
    RevocationsOut,
    ScanResultOut,
    TicketOut,
)
from shared.schemas.tickets import MAX_BATCH_BYTES
from shared.services.tickets.checking_in import Scan

start()
router = Router()


@router.route("POST", "/v1/events/{event_id}/checkins")
def check_in(req: ApiRequest) -> ApiResponse:
    c = container()
    gate = c.tickets.gates.gate(req.header("Authorization"), req.params["event_id"])
    body = req.json_body(CheckinIn)
    ticket = c.tickets.checking_in.check_in(gate, body.code)
    assert ticket.checked_in_at is not None
    return json_response(200, CheckinOut(ticket=TicketOut.of(ticket), checked_in_at=ticket.checked_in_at))


@router.route("POST", "/v1/events/{event_id}/checkins/batch")
def check_in_batch(req: ApiRequest) -> ApiResponse:
    c = container()
    gate = c.tickets.gates.gate(req.header("Authorization"), req.params["event_id"])
    body = req.json_body(BatchIn, max_bytes=MAX_BATCH_BYTES)
    scans = [Scan(s.scan_id, s.code, s.scanned_at) for s in body.scans]
    records = c.tickets.checking_in.batch(gate, scans)
    return json_response(200, BatchOut(results=[ScanResultOut.of(r) for r in records]))


@router.route("GET", "/v1/events/{event_id}/revocations")
def revocations(req: ApiRequest) -> ApiResponse:
    c = container()
    gate = c.tickets.gates.gate(req.header("Authorization"), req.params["event_id"])
    return json_response(200, RevocationsOut(ticket_ids=c.ticket_store.revoked_of_event(gate.event_id)))


@router.route("POST", "/v1/events/{event_id}/checkin-devices")
def add_device(req: ApiRequest) -> ApiResponse:
    c = container()
    principal = c.authenticator.principal(req.header("Authorization"))
    body = req.json_body(DeviceIn)
    device, token = c.tickets.gates.add_device(principal, req.params["event_id"], body.name)
    return json_response(201, DeviceCreated(id=device.id, name=device.name, token=token, created_at=device.created_at))


@router.route("GET", "/v1/events/{event_id}/checkin-devices")
def devices(req: ApiRequest) -> ApiResponse:
    c = container()
    principal = c.authenticator.principal(req.header("Authorization"))
    found = c.tickets.gates.devices_of(principal, req.params["event_id"])
    return json_response(200, DeviceList(items=[DeviceOut.of(d) for d in found]))


@router.route("DELETE", "/v1/events/{event_id}/checkin-devices/{device_id}")
def revoke_device(req: ApiRequest) -> ApiResponse:
    c = container()
    principal = c.authenticator.principal(req.header("Authorization"))
    c.tickets.gates.revoke_device(principal, req.params["event_id"], req.params["device_id"])
    return ApiResponse(204)


@router.route("GET", "/v1/events/{event_id}/attendees")
def attendees(req: ApiRequest) -> ApiResponse:
    """JSON pages; with `Accept: text/csv`, the whole list as one CSV file."""
    c = container()
    principal = c.authenticator.principal(req.header("Authorization"))
    event_id = req.params["event_id"]
    wanted = req.raw.accept_mimetypes.best_match(["application/json", "text/csv"], default="application/json")
    if wanted == "text/csv":
        body = c.tickets.attendees.csv(principal, event_id)
        disposition = f'attachment; filename="attendees-{event_id}.csv"'
        headers = {"Content-Type": "text/csv; charset=utf-8", "Content-Disposition": disposition, "Vary": "Accept"}
        return ApiResponse(200, body, headers)
    query = req.query(ListQuery)
    found, token = c.tickets.attendees.page(principal, event_id, query.limit, query.page_token)
    items = [AttendeeOut(**vars(a)) for a in found]
    return json_response(200, Page[AttendeeOut](items=items, next_page_token=token), Vary="Accept")


@functions_framework.http
def checkin(request):  # type: ignore[no-untyped-def]
    return router.handle(request)
