"""Check-in devices (`checkin_devices`) and the first results of offline scans (`checkin_scans`)."""

from __future__ import annotations

import hashlib
from dataclasses import asdict
from datetime import datetime
from typing import Any

from google.cloud.firestore_v1.base_query import FieldFilter

from shared.dal.base import Dal, as_utc, revision
from shared.dal.records import Revision, UnitOfWork
from shared.ticket_models import CheckinDevice, ScanRecord


class DeviceDAL(Dal):
    collection = "checkin_devices"

    def get(self, device_id: str) -> tuple[CheckinDevice, Revision] | None:
        snap = self.ref(device_id).get()
        return (_device(snap.to_dict() or {}), revision(snap)) if snap.exists else None

    def of_event(self, event_id: str) -> list[CheckinDevice]:
        query = self.client.collection(self.collection).where(filter=FieldFilter("event_id", "==", event_id))
        return sorted((_device(s.to_dict() or {}) for s in query.stream()), key=lambda d: (d.created_at, d.id))

    def stage_create(self, uow: UnitOfWork, device: CheckinDevice) -> None:
        uow.create(self.path(device.id), asdict(device))

    def stage_update(self, uow: UnitOfWork, device: CheckinDevice, since: Revision) -> None:
        uow.update(self.path(device.id), asdict(device), since=since)


class ScanDAL(Dal):
    collection = "checkin_scans"

    def doc_id(self, event_id: str, gate: str, scan_id: str) -> str:
        """One record per (event, scanner, scan id): two scanners may both number their scans 1, 2, ..."""
        return hashlib.sha256(f"{event_id}\n{gate}\n{scan_id}".encode()).hexdigest()[:40]

    def first_results(self, event_id: str, gate: str, scan_ids: list[str]) -> dict[str, ScanRecord]:
        if not scan_ids:
            return {}
        refs = [self.ref(self.doc_id(event_id, gate, s)) for s in scan_ids]
        found = (_scan(s.to_dict() or {}) for s in self.client.get_all(refs) if s.exists)
        return {r.scan_id: r for r in found}

    def stage_create(self, uow: UnitOfWork, record: ScanRecord) -> None:
        uow.create(self.path(self.doc_id(record.event_id, record.gate, record.scan_id)), asdict(record))


def _device(doc: dict[str, Any]) -> CheckinDevice:
    fields = {k: v for k, v in doc.items() if k in CheckinDevice.__dataclass_fields__}
    revoked: datetime | None = as_utc(doc["revoked_at"]) if doc.get("revoked_at") is not None else None
    return CheckinDevice(**{**fields, "created_at": as_utc(doc["created_at"]), "revoked_at": revoked})


def _scan(doc: dict[str, Any]) -> ScanRecord:
    fields = {k: v for k, v in doc.items() if k in ScanRecord.__dataclass_fields__}
    times = {"scanned_at": as_utc(doc["scanned_at"]), "recorded_at": as_utc(doc["recorded_at"])}
    return ScanRecord(**{**fields, **times})
