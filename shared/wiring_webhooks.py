"""Outbound webhooks, wired: the integrations part of the composition root (shared/bootstrap.py).
Built on first use, once per process: `webhook_services(container())`."""

from __future__ import annotations

import base64
import hashlib
import logging
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Any

from shared.models import utcnow

if TYPE_CHECKING:
    from shared.bootstrap import Container
    from shared.dal.webhooks import DeliveryDAL, EndpointDAL
    from shared.services.webhooks.endpoints import Endpoints
    from shared.services.webhooks.fanout import Fanout
    from shared.services.webhooks.guard import UrlGuard
    from shared.services.webhooks.sending import Sender
    from shared.services.webhooks.signing import SecretBox
    from shared.webhook_models import WebhookEndpoint

log = logging.getLogger("webhooks")


class WebhookServices:
    def __init__(self, root: Container) -> None:
        self.root = root

    @cached_property
    def endpoint_store(self) -> EndpointDAL:
        from shared.dal.webhooks import EndpointDAL

        return EndpointDAL(self.root.firestore)

    @cached_property
    def delivery_store(self) -> DeliveryDAL:
        from shared.dal.webhooks import DeliveryDAL

        return DeliveryDAL(self.root.firestore)

    @cached_property
    def guard(self) -> UrlGuard:
        from shared.services.webhooks.guard import UrlGuard, offline_resolver, system_resolver

        local = self.root.settings.is_local  # nothing resolved, only http://127.0.0.1 allowed besides
        return UrlGuard(allow_local_http=local, resolve=offline_resolver if local else system_resolver)

    @cached_property
    def box(self) -> SecretBox:
        from shared.services.webhooks.signing import SecretBox

        s = self.root.settings
        if s.webhook_secret_key is not None:
            return SecretBox(s.webhook_secret_key.get_secret_value())
        # local and test only (settings refuse a deployment without the key): one per project
        return SecretBox(base64.b64encode(hashlib.sha256(f"local:{s.gcp_project}".encode()).digest()).decode())

    @cached_property
    def endpoints(self) -> Endpoints:
        from shared.services.webhooks.endpoints import Endpoints

        schedule = self.root.expiry_scheduler.schedule_delivery
        return Endpoints(
            self.endpoint_store,
            self.delivery_store,
            self.guard,
            self.box,
            lambda delivery_id, n: schedule(delivery_id, n, utcnow(), now=True),
        )

    @cached_property
    def fanout(self) -> Fanout:
        from shared.services.webhooks.fanout import Fanout

        return Fanout(
            self.endpoint_store, self.delivery_store, self.compose, self.root.expiry_scheduler.schedule_delivery
        )

    @cached_property
    def sender(self) -> Sender:
        from shared.outbound import WebhookPoster
        from shared.services.webhooks.sending import Sender

        return Sender(
            self.delivery_store,
            self.endpoint_store,
            self.guard,
            self.box,
            WebhookPoster(),
            self.root.expiry_scheduler.schedule_delivery,
            self.tell_admins,
        )

    def compose(self, object_type: str, object_id: str) -> dict[str, Any] | None:
        """The object a webhook carries, as the API returns it (None: it is gone)."""
        from shared.schemas import BookingOut, EventOut, TicketOut, WaitlistEntryOut
        from shared.wiring_cancel import cancel_services

        r, now = self.root, utcnow()
        if object_type == "booking":
            booking = r.booking_store.get(object_id)
            return BookingOut.of(booking[0], now).model_dump(mode="json") if booking else None
        if object_type == "ticket":
            ticket = r.ticket_store.get(object_id)
            return TicketOut.of(ticket[0]).model_dump(mode="json") if ticket else None
        if object_type == "waitlist_entry":
            entry = r.waitlist.entries.get(object_id)
            return WaitlistEntryOut.of(entry[0]).model_dump(mode="json") if entry else None
        if object_type == "event":
            event = r.event_store.get(object_id)
            if event is None:
                return None
            progress = cancel_services(r).cancelling.progress_of(event)
            return EventOut.of(event, r.inventory.taken(event.id, now), cancellation=progress).model_dump(mode="json")
        return None

    def tell_admins(self, endpoint: WebhookEndpoint) -> None:
        """E-mail the company's admins that an endpoint was disabled (best effort, once: only the
        attempt whose commit disabled it calls this)."""
        from shared.dal.users import UserDAL
        from shared.notify import SmtpSender

        sender = SmtpSender.from_settings(self.root.settings)
        admins, after = [], None
        while True:
            page, after = UserDAL(self.root.firestore).page_of_company(endpoint.company_id, 100, after)
            admins += [u for u in page if u.role == "admin"]
            if not after:
                break
        body = "\n".join(
            [
                "Hello,",
                "",
                f"the webhook endpoint {endpoint.url} ({endpoint.id}) has failed every delivery since",
                f"{endpoint.failing_since:%Y-%m-%d %H:%M} UTC and was disabled. Nothing more is sent to it.",
                "Fix the receiver, then enable it again (PATCH /v1/webhook-endpoints/{id} with",
                '{"status": "enabled"}) and send the failed deliveries again from its delivery log.',
            ]
        )
        for admin in admins:
            try:
                sender.send(admin.email, "A webhook endpoint was disabled", body)
            except Exception:
                log.warning("could not tell admin %s about endpoint %s", admin.id, endpoint.id)


@lru_cache(maxsize=4)
def webhook_services(root: Container) -> WebhookServices:
    return WebhookServices(root)
