"""The fan-out: one committed domain event, relayed from the stream, becomes one delivery per endpoint
of its company that subscribes to its type.

It reads the stream's relay (Pub/Sub `integration-events`): a change that was not committed is never
relayed, and one whose relay was lost is relayed by the sweep, so nothing committed is missed. A
delivery's id is derived from the endpoint and the domain event: a redelivered message makes no
second delivery, and a fan-out that died before asking for the first attempt asks again. The body
is built once, here, and stored with the delivery: every attempt sends the same bytes.
`data` is the object as the API returns it, read when the event is fanned out (within a second of
the commit, usually); `sequence` orders the changes of one object.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, Protocol

from shared.dal.records import DocumentExists, Revision
from shared.domain_events import WEBHOOK_TYPES
from shared.models import utcnow
from shared.webhook_models import Delivery, WebhookEndpoint, delivery_id

_POOL = ThreadPoolExecutor(8, thread_name_prefix="fanout-tasks")  # a message's first attempts, asked at once


class EndpointReader(Protocol):
    def of_company(self, company_id: str) -> list[WebhookEndpoint]: ...


class DeliveryMaker(Protocol):
    def get(self, delivery_id: str) -> tuple[Delivery, Revision] | None: ...
    def create_all(self, deliveries: list[Delivery]) -> None: ...


class Fanout:
    def __init__(
        self,
        endpoints: EndpointReader,
        deliveries: DeliveryMaker,
        compose: Callable[[str, str], dict[str, Any] | None],
        schedule: Callable[[str, int, datetime], None],
    ) -> None:
        self.endpoints = endpoints
        self.deliveries = deliveries
        self.compose = compose  # (object type, id) -> the object as the API shows it, or None
        self.schedule = schedule

    def take(self, message: dict[str, Any]) -> int:
        """Deliveries made for the relayed domain event (0 for one nobody subscribes to)."""
        webhook_type = WEBHOOK_TYPES.get(str(message.get("type")))
        company_id, event_id = message.get("company_id"), message.get("message_id")
        if webhook_type is None or not isinstance(company_id, str) or not isinstance(event_id, str):
            return 0
        targets = [e for e in self.endpoints.of_company(company_id) if e.wants(webhook_type)]
        if not targets:
            return 0
        object_type, object_id = str(message.get("object_type")), str(message.get("object_id"))
        created_at = str(message.get("at") or utcnow().isoformat())
        body = json.dumps(
            {
                "id": event_id,
                "type": webhook_type,
                "created_at": created_at,
                "company_id": company_id,
                "sequence": message.get("sequence"),
                "data": self.compose(object_type, object_id) or {"id": object_id},
            },
            separators=(",", ":"),
            default=str,
        )
        now = utcnow()
        deliveries = [
            Delivery(
                id=delivery_id(endpoint.id, event_id),
                endpoint_id=endpoint.id,
                company_id=company_id,
                event_id=event_id,
                type=webhook_type,
                body=body,
                created_at=datetime.fromisoformat(created_at),
                state="pending",
                attempts=0,
                next_attempt_at=now,
                updated_at=now,
            )
            for endpoint in targets
        ]
        try:
            self.deliveries.create_all(deliveries)
            fresh = deliveries
        except DocumentExists:  # a redelivered message: make what is missing, one by one
            fresh = [d for d in deliveries if self._made(d)]
        list(_POOL.map(lambda d: self.schedule(d.id, 1, now), fresh))
        return len(fresh)

    def _made(self, delivery: Delivery) -> bool:
        """Whether the delivery still needs its first attempt (made now, or made before but the
        fan-out that made it died before asking for the attempt)."""
        try:
            self.deliveries.create_all([delivery])
            return True
        except DocumentExists:
            found = self.deliveries.get(delivery.id)
            return found is not None and found[0].attempts == 0 and found[0].state == "pending"
