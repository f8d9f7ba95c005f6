"""OpenAPI links: what a client (and schemathesis's stateful phase) can do next with an answer."""

from __future__ import annotations

from shared.openapi_promo import PROMO_LINKS
from shared.openapi_waitlist import WAITLIST_LINKS
from shared.openapi_webhooks import WEBHOOK_LINKS

# OpenAPI links: what a client (and schemathesis's stateful phase) can do next with an answer.
# (method, path, status) of the answer -> {link name: (method, path) of the next operation, its parameters}.
EVENT_ID = {"path.event_id": "$response.body#/id"}
BOOKING_ID = {"path.booking_id": "$response.body#/id"}
BOOKING_OF_PAYMENT = {"path.booking_id": "$response.body#/booking_id"}
FIRST_EVENT = {"path.event_id": "$response.body#/items/0/id"}
_NEXT_FOR_BOOKING: dict[str, tuple[str, str, dict[str, str]]] = {
    "GetBooking": ("GET", "/v1/bookings/{booking_id}", BOOKING_ID),
    "PayBooking": ("POST", "/v1/bookings/{booking_id}/payments", BOOKING_ID),
    "CancelBooking": ("POST", "/v1/bookings/{booking_id}/cancel", BOOKING_ID),
}
_NEXT_FOR_PAYMENT: dict[str, tuple[str, str, dict[str, str]]] = {
    "GetPayment": ("GET", "/v1/payments/{payment_id}", {"path.payment_id": "$response.body#/id"}),
    "GetBooking": ("GET", "/v1/bookings/{booking_id}", BOOKING_OF_PAYMENT),
    "GetTickets": ("GET", "/v1/bookings/{booking_id}/tickets", BOOKING_OF_PAYMENT),
    "RefundBooking": ("POST", "/v1/bookings/{booking_id}/refund", BOOKING_OF_PAYMENT),
}
LINKS: dict[tuple[str, str, int], dict[str, tuple[str, str, dict[str, str]]]] = {
    ("POST", "/v1/events", 201): {
        "GetEvent": ("GET", "/v1/events/{event_id}", EVENT_ID),
        "PatchEvent": ("PATCH", "/v1/events/{event_id}", {**EVENT_ID, "header.If-Match": "$response.header.ETag"}),
        "HoldBooking": ("POST", "/v1/events/{event_id}/bookings", EVENT_ID),
        "ListEventBookings": ("GET", "/v1/events/{event_id}/bookings", EVENT_ID),
        "GetEventAudit": ("GET", "/v1/events/{event_id}/audit", EVENT_ID),
        "GetEventStats": ("GET", "/v1/events/{event_id}/stats", EVENT_ID),
        "ListAttendees": ("GET", "/v1/events/{event_id}/attendees", EVENT_ID),
        "AddCheckinDevice": ("POST", "/v1/events/{event_id}/checkin-devices", EVENT_ID),
        "ListCheckinDevices": ("GET", "/v1/events/{event_id}/checkin-devices", EVENT_ID),
        "GetRevocations": ("GET", "/v1/events/{event_id}/revocations", EVENT_ID),
        "AddPromoCode": ("POST", "/v1/events/{event_id}/promo-codes", EVENT_ID),
        "ListWaitlist": ("GET", "/v1/events/{event_id}/waitlist", EVENT_ID),
    },
    ("GET", "/v1/events", 200): {  # a buyer's way in: an event someone else created
        "GetEvent": ("GET", "/v1/events/{event_id}", FIRST_EVENT),
        "HoldBooking": ("POST", "/v1/events/{event_id}/bookings", FIRST_EVENT),
    },
    ("GET", "/v1/events/{event_id}", 200): {
        "HoldBooking": ("POST", "/v1/events/{event_id}/bookings", EVENT_ID),
    },
    ("PATCH", "/v1/events/{event_id}", 200): {
        "GetEvent": ("GET", "/v1/events/{event_id}", EVENT_ID),
        "HoldBooking": ("POST", "/v1/events/{event_id}/bookings", EVENT_ID),
    },
    ("POST", "/v1/events/{event_id}/bookings", 201): _NEXT_FOR_BOOKING,
    ("GET", "/v1/bookings/{booking_id}", 200): {
        "GetTickets": ("GET", "/v1/bookings/{booking_id}/tickets", BOOKING_ID),
        "PayBooking": _NEXT_FOR_BOOKING["PayBooking"],
        "CancelBooking": _NEXT_FOR_BOOKING["CancelBooking"],
    },
    ("POST", "/v1/bookings/{booking_id}/payments", 201): _NEXT_FOR_PAYMENT,
    ("POST", "/v1/bookings/{booking_id}/payments", 200): _NEXT_FOR_PAYMENT,
    ("POST", "/v1/bookings/{booking_id}/cancel", 200): {
        "GetBooking": _NEXT_FOR_BOOKING["GetBooking"],
        "PayBooking": _NEXT_FOR_BOOKING["PayBooking"],  # too late: 409
    },
}
LINKS.update(PROMO_LINKS)
LINKS.update(WAITLIST_LINKS)
LINKS.update(WEBHOOK_LINKS)
