"""EndpointDAL (`webhook_endpoints/<id>`) and DeliveryDAL (`webhook_deliveries/<id>`).

A delivery's id is derived from its endpoint and domain event, so the fan-out creates it at most
once however often the stream is redelivered. Every change of a delivery or an endpoint is a
compare-and-set on the update time it was read at: two senders of one attempt cannot both record it.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from google.cloud.firestore_v1.base_query import FieldFilter

from shared.dal.base import Dal, as_utc, commit, revision
from shared.dal.records import Revision
from shared.webhook_models import Delivery, WebhookEndpoint


class EndpointDAL(Dal):
    collection = "webhook_endpoints"

    def get(self, endpoint_id: str) -> tuple[WebhookEndpoint, Revision] | None:
        snap = self.ref(endpoint_id).get()
        return (_endpoint(snap.to_dict() or {}), revision(snap)) if snap.exists else None

    def page_of_company(
        self, company_id: str, limit: int, after: str | None
    ) -> tuple[list[WebhookEndpoint], str | None]:
        snaps, cursor = self.page_where("company_id", company_id, limit, after)
        return [_endpoint(s.to_dict() or {}) for s in snaps], cursor

    def of_company(self, company_id: str) -> list[WebhookEndpoint]:
        """Every endpoint of the company (a company has a handful; the fan-out filters them)."""
        query = self.client.collection(self.collection).where(filter=FieldFilter("company_id", "==", company_id))
        return [_endpoint(s.to_dict() or {}) for s in query.stream()]

    def create(self, endpoint: WebhookEndpoint) -> None:
        batch = self.client.batch()
        batch.create(self.ref(endpoint.id), _doc(endpoint))
        commit(batch)

    def update(self, endpoint: WebhookEndpoint, since: Revision) -> None:
        batch = self.client.batch()
        batch.update(self.ref(endpoint.id), _doc(endpoint), **_since(self, since))
        commit(batch)

    def delete(self, endpoint_id: str, since: Revision) -> None:
        batch = self.client.batch()
        batch.delete(self.ref(endpoint_id), **_since(self, since))
        commit(batch)


class DeliveryDAL(Dal):
    collection = "webhook_deliveries"

    def get(self, delivery_id: str) -> tuple[Delivery, Revision] | None:
        snap = self.ref(delivery_id).get()
        return (_delivery(snap.to_dict() or {}), revision(snap)) if snap.exists else None

    def page_of_endpoint(
        self, endpoint_id: str, limit: int, after: tuple[datetime, str] | None
    ) -> tuple[list[Delivery], tuple[datetime, str] | None]:
        """The endpoint's deliveries, newest first, and the cursor of the next page."""
        query = (
            self.client.collection(self.collection)
            .where(filter=FieldFilter("endpoint_id", "==", endpoint_id))
            .order_by("created_at", direction="DESCENDING")
            .order_by("__name__", direction="DESCENDING")
        )
        if after:
            query = query.start_after({"created_at": after[0], "__name__": self.ref(after[1])})
        found = [_delivery(s.to_dict() or {}) for s in query.limit(limit + 1).stream()]
        page = found[:limit]
        more = len(found) > limit and page
        return page, (page[-1].created_at, page[-1].id) if more else None

    def overdue(self, before: datetime, limit: int) -> list[Delivery]:
        """Pending deliveries whose next attempt was due before `before` (their task was lost)."""
        query = (
            self.client.collection(self.collection)
            .where(filter=FieldFilter("state", "==", "pending"))
            .where(filter=FieldFilter("next_attempt_at", "<", before))
            .order_by("next_attempt_at")
            .limit(limit)
        )
        return [_delivery(s.to_dict() or {}) for s in query.stream()]

    def create_all(self, deliveries: list[Delivery]) -> None:
        """All in one commit; DocumentExists (and none made) when the fan-out made one before."""
        batch = self.client.batch()
        for delivery in deliveries:
            batch.create(self.ref(delivery.id), _doc(delivery))
        commit(batch)

    def update(self, delivery: Delivery, since: Revision) -> Revision:
        """Store the changed delivery if nobody changed it since; its new revision."""
        batch = self.client.batch()
        batch.update(self.ref(delivery.id), _doc(delivery), **_since(self, since))
        return Revision(commit(batch)[0].update_time)


def _since(dal: Dal, since: Revision) -> dict[str, Any]:
    return {"option": dal.client.write_option(last_update_time=since.at)}


def _doc(obj: WebhookEndpoint | Delivery) -> dict[str, Any]:
    doc = asdict(obj)
    if isinstance(obj, WebhookEndpoint):
        doc["events"] = list(obj.events)
    return doc


_ENDPOINT_TIMES = ("created_at", "updated_at")
_ENDPOINT_OPTIONAL = ("failing_since", "disabled_at")
_DELIVERY_OPTIONAL = ("next_attempt_at", "last_attempt_at", "delivered_at", "updated_at")


def _endpoint(doc: dict[str, Any]) -> WebhookEndpoint:
    values = {k: v for k, v in doc.items() if k in WebhookEndpoint.__dataclass_fields__}
    values["events"] = tuple(doc.get("events") or ())
    for k in _ENDPOINT_TIMES:
        values[k] = as_utc(doc[k])
    for k in _ENDPOINT_OPTIONAL:
        values[k] = as_utc(doc[k]) if doc.get(k) is not None else None
    return WebhookEndpoint(**values)


def _delivery(doc: dict[str, Any]) -> Delivery:
    values = {k: v for k, v in doc.items() if k in Delivery.__dataclass_fields__}
    values["created_at"] = as_utc(doc["created_at"])
    for k in _DELIVERY_OPTIONAL:
        values[k] = as_utc(doc[k]) if doc.get(k) is not None else None
    return Delivery(**values)
