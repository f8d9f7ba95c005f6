"""PaymentDAL: payment attempts (collection `payments`), their reads and staged writes."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from google.cloud.firestore_v1.base_query import FieldFilter

from shared.dal.base import Dal, as_utc, revision
from shared.dal.records import Revision, UnitOfWork
from shared.models import Payment


class PaymentDAL(Dal):
    collection = "payments"

    def get(self, payment_id: str) -> tuple[Payment, Revision] | None:
        snap = self.ref(payment_id).get()
        return (_from_doc(snap.to_dict() or {}), revision(snap)) if snap.exists else None

    def stage_create(self, uow: UnitOfWork, payment: Payment) -> None:
        uow.create(self.path(payment.id), _to_doc(payment))

    def stage_update(self, uow: UnitOfWork, payment: Payment, since: Revision) -> None:
        uow.update(self.path(payment.id), _to_doc(payment), since=since)

    def by_company_needing_attention(self, company_id: str, limit: int) -> list[Payment]:
        query = (
            self.client.collection(self.collection)
            .where(filter=FieldFilter("company_id", "==", company_id))
            .where(filter=FieldFilter("needs_attention", "==", True))
            .limit(limit)
        )
        return [_from_doc(s.to_dict() or {}) for s in query.stream()]

    def stuck(self, statuses: list[str], updated_before: datetime, limit: int) -> list[Payment]:
        query = (
            self.client.collection(self.collection)
            .where(filter=FieldFilter("status", "in", statuses))
            .where(filter=FieldFilter("updated_at", "<=", updated_before))
            .limit(limit)
        )
        return [_from_doc(s.to_dict() or {}) for s in query.stream()]


def _to_doc(payment: Payment) -> dict[str, Any]:
    return {**asdict(payment), "needs_attention": payment.attention is not None}


def _from_doc(doc: dict[str, Any]) -> Payment:
    fields = {k: v for k, v in doc.items() if k in Payment.__dataclass_fields__}
    return Payment(**{**fields, "created_at": as_utc(doc["created_at"]), "updated_at": as_utc(doc["updated_at"])})
