"""ProviderEventDAL: the payment provider's webhook events already taken in (`webhook_events`).

The record is created in the same commit as the change the event makes, so an event applied
once is never applied again, however often the provider delivers it."""

from __future__ import annotations

from datetime import datetime

from shared.dal.base import Dal
from shared.dal.records import UnitOfWork


class ProviderEventDAL(Dal):
    collection = "webhook_events"

    def seen(self, event_id: str) -> bool:
        return bool(self.ref(event_id).get().exists)

    def stage_seen(self, uow: UnitOfWork, event_id: str, payment_id: str | None, at: datetime) -> None:
        uow.create(self.path(event_id), {"payment_id": payment_id, "received_at": at})
