"""The `benchhold` function (local and test only): the hold path stripped to its inventory code.

`make bench` measures it beside the real route as the ceiling the full path is compared with: the
same slot picking and the same atomic commit (claims, booking, buyer record), without
authentication, registration, idempotency, the per-buyer cap, the price count or expiry tasks.
"""

from __future__ import annotations

from datetime import timedelta

import functions_framework

from functions._common import start
from shared.bootstrap import container
from shared.core.errors import NotFound, SoldOut, Unavailable
from shared.core.http import ApiRequest, ApiResponse, Router, json_response
from shared.dal.records import BuyerHolds, DocumentExists, HoldPlan
from shared.domain_events import Actor
from shared.models import Booking, new_id, utcnow
from shared.services.slots import NoFreeSlots

settings = start()
if not settings.is_local:
    raise SystemExit("benchhold runs only in the local and test profiles")
router = Router()


@router.route("POST", "/bench/hold/{event_id}")
def bare_hold(req: ApiRequest) -> ApiResponse:
    c = container()
    event = c.events.events.get(req.params["event_id"])
    if event is None:
        raise NotFound("event not found")
    holding = c.holding
    for _attempt in range(12):
        now = utcnow()
        try:
            picks = c.slot_picker.pick(event.id, event.capacity, 1, now)
        except NoFreeSlots:
            raise SoldOut() from None
        user = new_id()
        booking = Booking(
            id=new_id(),
            event_id=event.id,
            company_id=event.company_id,
            user_id=user,
            buyer_subject=user,
            quantity=1,
            unit_price=event.base_price,
            total_cost=event.base_price,
            currency=event.currency,
            status="pending_payment",
            booking_time=now,
            expires_at=now + timedelta(seconds=settings.hold_ttl_seconds),
            updated_at=now,
        )
        try:
            holding.commit_hold(HoldPlan(booking, picks, BuyerHolds()), Actor.user(user))
        except DocumentExists:
            c.slot_picker.done(event.id, picks, claimed=False)
            c.slot_picker.collided(event.id, picks, now)
            continue
        c.slot_picker.done(event.id, picks, claimed=True)
        return json_response(201, {"id": booking.id})
    raise Unavailable("contention")


@functions_framework.http
def benchhold(request):  # type: ignore[no-untyped-def]
    return router.handle(request)
