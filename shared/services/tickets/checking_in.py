"""Checking tickets in at the door: online one at a time, or offline scans uploaded in a batch.

Exactly once: a check-in changes the ticket document on the revision it was read at, so of two
gates that scan one ticket at the same moment one commit wins and the other reads it checked in
(`already_checked_in`, with when). A batch is decided in memory (scans in `scanned_at` order, so
the earliest scan of a ticket wins it) and committed in chunks, each with the first result of
every scan in it: a `scan_id` sent again gets that result back, and a chunk that lost a race to
another gate is read again and decided again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from shared.core.errors import (
    AlreadyCheckedIn,
    AppError,
    InvalidTicket,
    TicketRevoked,
    Unavailable,
    WrongEvent,
)
from shared.core.ticket_codes import TicketCodes
from shared.dal.records import ConcurrentUpdate, DocumentExists, Revision, UnitOfWork
from shared.domain_events import change
from shared.models import utcnow
from shared.services.tickets.gates import Gate
from shared.ticket_models import ScanRecord, ScanResult, Ticket

MAX_ATTEMPTS = 5
CHUNK = 100  # tickets per commit: a check-in writes the ticket, its domain event and the scan record


@dataclass(frozen=True)
class Scan:
    scan_id: str
    code: str
    scanned_at: datetime


class TicketStore(Protocol):
    def get(self, ticket_id: str) -> tuple[Ticket, Revision] | None: ...
    def get_many(self, ticket_ids: list[str]) -> dict[str, tuple[Ticket, Revision]]: ...
    def stage_update(self, uow: UnitOfWork, ticket: Ticket, since: Revision) -> None: ...


class ScanStore(Protocol):
    def first_results(self, event_id: str, gate: str, scan_ids: list[str]) -> dict[str, ScanRecord]: ...
    def stage_create(self, uow: UnitOfWork, record: ScanRecord) -> None: ...


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


class CheckingIn:
    def __init__(
        self, tickets: TicketStore, scans: ScanStore, codes: TicketCodes, new_uow: Callable[[], UnitOfWork]
    ) -> None:
        self.tickets = tickets
        self.scans = scans
        self.codes = codes
        self.new_uow = new_uow

    def check_in(self, gate: Gate, code: str) -> Ticket:
        """The ticket, checked in now; the contract's 409/422 problems otherwise."""
        ticket_id = self._ticket_id(gate, code)
        for _ in range(MAX_ATTEMPTS):
            found = self.tickets.get(ticket_id)
            if found is None:
                raise InvalidTicket("no such ticket was issued")
            ticket, read_at = found
            _refuse(ticket)
            now = utcnow()
            admitted = ticket.changed(now, status="checked_in", checked_in_at=now, checked_in_by=_by(gate))
            uow = self.new_uow()
            self.tickets.stage_update(uow, admitted, since=read_at)
            uow.record(change("checked_in", admitted, gate.actor, now, before=ticket))
            try:
                uow.commit()
            except ConcurrentUpdate:
                continue  # another gate (or a refund) changed it: read it again
            return admitted
        raise Unavailable("the ticket is changing; retry", retry_after=1)

    def batch(self, gate: Gate, scans: list[Scan]) -> list[ScanRecord]:
        """Each scan's result, in the order sent (a scan sent before gets its first result).

        A chunk that met a resend of the same batch (its records exist) is progress, not
        contention: only lost races with other gates count against the attempts."""
        lost = 0
        for _ in range(MAX_ATTEMPTS + len(scans) // CHUNK + 1):
            try:
                return self._batch_once(gate, scans)
            except DocumentExists:
                continue  # the same scans sent again are being recorded: read what they decided
            except ConcurrentUpdate:
                lost += 1  # another gate changed a ticket of this chunk: decide it again
                if lost >= MAX_ATTEMPTS:
                    break
        raise Unavailable("the tickets are changing; retry the batch", retry_after=1)

    def _batch_once(self, gate: Gate, scans: list[Scan]) -> list[ScanRecord]:
        known = self.scans.first_results(gate.event_id, _by(gate), [s.scan_id for s in scans])
        fresh = sorted((s for s in scans if s.scan_id not in known), key=lambda s: (s.scanned_at, s.scan_id))
        claimed: dict[str, str | None] = {}  # scan id -> ticket id its code names (None: refused, see why)
        refused: dict[str, ScanResult] = {}
        for scan in fresh:
            try:
                claimed[scan.scan_id] = self._ticket_id(gate, scan.code)
            except WrongEvent:
                claimed[scan.scan_id], refused[scan.scan_id] = None, "wrong_event"
            except AppError:
                claimed[scan.scan_id], refused[scan.scan_id] = None, "invalid_ticket"
        tickets = self.tickets.get_many(sorted({t for t in claimed.values() if t}))
        now = utcnow()
        decided: list[tuple[ScanRecord, Ticket | None, Revision | None, Ticket | None]] = []
        current = {tid: pair[0] for tid, pair in tickets.items()}
        for scan in fresh:
            result, ticket_id, before, after = self._decide(gate, scan, claimed[scan.scan_id], refused, current, now)
            if after is not None:
                current[after.id] = after
            read_at = tickets[ticket_id][1] if after is not None and ticket_id else None
            record = ScanRecord(gate.event_id, _by(gate), scan.scan_id, result, ticket_id, scan.scanned_at, now)
            decided.append((record, before, read_at, after))
        for start in range(0, len(decided), CHUNK):
            uow = self.new_uow()
            for record, before, read_at, after in decided[start : start + CHUNK]:
                self.scans.stage_create(uow, record)
                if after is not None and before is not None and read_at is not None:
                    self.tickets.stage_update(uow, after, since=read_at)
                    uow.record(change("checked_in", after, gate.actor, now, before=before))
            uow.commit()
        results = {**known, **{record.scan_id: record for record, _, _, _ in decided}}
        return [results[s.scan_id] for s in scans]

    def _decide(
        self,
        gate: Gate,
        scan: Scan,
        ticket_id: str | None,
        refused: dict[str, ScanResult],
        current: dict[str, Ticket],
        now: datetime,
    ) -> tuple[ScanResult, str | None, Ticket | None, Ticket | None]:
        """(result, ticket id, the ticket before, the ticket after) of one scan."""
        if ticket_id is None:
            return refused[scan.scan_id], None, None, None
        ticket = current.get(ticket_id)
        if ticket is None:
            return "invalid_ticket", None, None, None
        if ticket.status == "revoked":
            return "ticket_revoked", ticket_id, None, None
        if ticket.status == "checked_in":
            return "already_checked_in", ticket_id, None, None
        at = max(min(scan.scanned_at, now), ticket.issued_at)  # never in the future, nor before it existed
        admitted = ticket.changed(now, status="checked_in", checked_in_at=at, checked_in_by=_by(gate))
        return "ok", ticket_id, ticket, admitted

    def _ticket_id(self, gate: Gate, code: str) -> str:
        claims = self.codes.verify(code)
        if claims.event_id != gate.event_id:
            raise WrongEvent("this ticket is for another event")
        return claims.ticket_id


def _refuse(ticket: Ticket) -> None:
    if ticket.status == "revoked":
        raise TicketRevoked("the ticket's booking was refunded or its event cancelled")
    if ticket.status == "checked_in":
        raise AlreadyCheckedIn(_iso(ticket.checked_in_at or ticket.updated_at), ticket.id)


def _by(gate: Gate) -> str:
    return f"{gate.actor.type}:{gate.actor.id}"
