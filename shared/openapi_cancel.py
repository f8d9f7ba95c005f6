"""The event cancellation operation of the OpenAPI document (API.md, Cancelling an event)."""

from __future__ import annotations

from shared.openapi_operation import Operation
from shared.schemas.cancel import EventCancelIn
from shared.schemas.events import EventOut

CANCEL_OPERATIONS: list[Operation] = [
    Operation(
        "POST",
        "/v1/events/{event_id}/cancel",
        "Cancel an event (admin of its company), with If-Match. 202: cancelled; pending bookings are"
        " cancelled and confirmed ones refunded in the background, `cancellation` counts the refunds."
        " Repeating it on a cancelled event is a no-op 202 whatever its If-Match. 409 invalid_state for"
        " a draft",
        {202: EventOut},
        body=EventCancelIn,
        headers=("If-Match",),
        errors=(404, 409, 412, 428),
    ),
]
