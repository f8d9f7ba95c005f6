"""The Firestore unit of work: one batch with preconditions, plus the domain events it records.

No transaction: the emulator locks pessimistically and a contended transaction ends in an
exhausted retry. Each update or delete carries the update time its caller read (compare and set),
each new document is a create, so a lost race is a cheap, typed failure the service decides about.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from google.cloud import firestore

from shared.core import faults
from shared.dal.base import commit
from shared.dal.records import Revision
from shared.dal.stream import DomainEventDAL
from shared.domain_events import DomainEvent

log = logging.getLogger("unit_of_work")


class FirestoreUnitOfWork:
    def __init__(
        self,
        client: firestore.Client,
        stream: DomainEventDAL,
        relay: Callable[[list[DomainEvent]], Any] | None = None,
    ) -> None:
        self.client = client
        self.stream = stream
        self.relay = relay
        self.batch = client.batch()
        self.events: list[DomainEvent] = []
        self.creates: dict[str, dict[str, Any]] = {}  # staged at commit, when carried events are known
        self.carried: dict[str, DomainEvent] = {}  # path of a created document -> the event it carries
        self.committed = False

    def create(self, path: str, data: dict[str, Any]) -> None:
        self.creates[path] = data

    def update(self, path: str, data: dict[str, Any], since: Revision | None = None) -> None:
        self.batch.update(self.client.document(path), data, **self._unchanged(since))

    def delete(self, path: str, since: Revision | None = None) -> None:
        self.batch.delete(self.client.document(path), **self._unchanged(since))

    def record(self, event: DomainEvent, inside: str | None = None) -> None:
        self.events.append(event)
        if inside is not None:
            self.carried[inside] = event

    def commit(self) -> list[DomainEvent]:
        """Write everything at once; then hand the events that have topics to the relay.

        Once only: a unit of work is one commit. A relay that fails after the commit is logged, not
        raised: the change is made, and the sweep publishes what the relay did not."""
        if self.committed:
            raise RuntimeError("a unit of work commits once; start a new one")
        self.committed = True
        if set(self.carried) - set(self.creates):
            raise ValueError("an event is carried only by a document this commit creates")
        for event in self.events:
            if event not in self.carried.values():
                self.stream.stage(self, event)
        for path, data in self.creates.items():
            carried = self.carried.get(path)
            self.batch.create(self.client.document(path), {**data, **self.stream.carried(carried)} if carried else data)
        commit(self.batch)
        faults.current().crash_point("crash_after_commit")  # fault injection: died before the relay
        announced = [e for e in self.events if e.topics]
        if announced and self.relay is not None:
            try:
                self.relay(announced)
            except Exception:
                log.exception("relay after commit failed; the sweep will publish %d event(s)", len(announced))
        return list(self.events)

    def _unchanged(self, since: Revision | None) -> dict[str, Any]:
        return {"option": self.client.write_option(last_update_time=since.at)} if since else {}
