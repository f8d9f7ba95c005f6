"""The promo code operations of the OpenAPI document (API.md, Promo codes)."""

from __future__ import annotations

from shared import schemas as s
from shared.openapi_operation import Operation

PROMO_OPERATIONS: list[Operation] = [
    Operation(
        "POST",
        "/v1/events/{event_id}/promo-codes",
        "Create a promo code (admin of the event's company); 409 promo_code_exists for a code it has",
        {201: s.PromoCodeOut},
        body=s.PromoCodeIn,
        errors=(404, 409),
    ),
    Operation(
        "GET",
        "/v1/events/{event_id}/promo-codes",
        "An event's promo codes in code order, with their live uses (admin of its company)",
        {200: s.Page[s.PromoCodeOut]},
        query=s.ListQuery,
        errors=(404,),
    ),
    Operation(
        "PATCH",
        "/v1/events/{event_id}/promo-codes/{code}",
        "Change a promo code's active, max_uses or valid_until (admin); 409 invalid_state for max_uses below uses",
        {200: s.PromoCodeOut},
        body=s.PromoCodePatch,
        errors=(404, 409),
    ),
]

PROMO_LINKS: dict[tuple[str, str, int], dict[str, tuple[str, str, dict[str, str]]]] = {
    ("POST", "/v1/events/{event_id}/promo-codes", 201): {
        "PatchPromoCode": (
            "PATCH",
            "/v1/events/{event_id}/promo-codes/{code}",
            {"path.event_id": "$request.path.event_id", "path.code": "$response.body#/code"},
        ),
        "ListPromoCodes": ("GET", "/v1/events/{event_id}/promo-codes", {"path.event_id": "$request.path.event_id"}),
        "HoldWithCode": ("POST", "/v1/events/{event_id}/bookings", {"path.event_id": "$request.path.event_id"}),
    },
}
