"""IdempotencyDAL: which object a caller's Idempotency-Key created (collection `idempotency`).

The record is created in the same commit as the object, so a key can never create two objects."""

from __future__ import annotations

from datetime import datetime

from shared.dal.base import Dal
from shared.dal.records import IdempotencyRecord, UnitOfWork


class IdempotencyDAL(Dal):
    collection = "idempotency"

    def get(self, key_id: str) -> IdempotencyRecord | None:
        snap = self.ref(key_id).get()
        if not snap.exists:
            return None
        return IdempotencyRecord(key_id, snap.get("request_hash"), snap.get("resource_id"))

    def stage_create(self, uow: UnitOfWork, record: IdempotencyRecord, at: datetime) -> None:
        doc = {"request_hash": record.request_hash, "resource_id": record.resource_id, "created_at": at}
        uow.create(self.path(record.key_id), doc)
