"""A line that can no longer be served is closed: every waiting entry ends `expired`, its buyer
e-mailed once. That is the line of a cancelled event, and the line of an event that has started.

Run by the cancellation's fan-out (its tasks and the sweep's resumption) for a cancelled event, and
by the waitlist sweep for a started one, so it resumes after any crash. The e-mail goes first (one
notification record per entry), then the entry's compare-and-set: a crash in between sends nothing
twice and ends the entry later. Offered entries end with their booking: the fan-out cancels it, or
it runs out (hooks.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from shared.dal.records import ConcurrentUpdate, Revision, UnitOfWork
from shared.domain_events import Actor, change
from shared.models import Event, User, utcnow
from shared.notify import EmailSender
from shared.services.mail_once import SentLog, send_once
from shared.waitlist_models import WaitlistEntry

CANCELLED, STARTED = "event_cancelled", "event_started"  # the kinds of e-mail sent once per entry
CLOSING = Actor.system("cancellation")
WAITLIST = Actor.system("waitlist")


class LineStore(Protocol):
    def line(self, event_id: str, limit: int) -> list[tuple[WaitlistEntry, Revision]]: ...
    def stage_update(self, uow: UnitOfWork, before: WaitlistEntry, after: WaitlistEntry, since: Revision) -> None: ...


class Users(Protocol):
    def get(self, user_id: str) -> User | None: ...


class LineCloser:
    def __init__(
        self, entries: LineStore, users: Users, sent: SentLog, sender: EmailSender, new_uow: Callable[[], UnitOfWork]
    ) -> None:
        self.entries = entries
        self.users = users
        self.sent = sent
        self.sender = sender
        self.new_uow = new_uow

    def close(self, event: Event, limit: int = 500) -> int:
        """End up to `limit` waiting entries of the cancelled or started event; returns how many
        still wait (the mail was down, or there were more than `limit`): the next pass goes on."""
        actor = CLOSING if event.is_cancelled else WAITLIST
        line = self.entries.line(event.id, limit)
        ended = 0
        for entry, read_at in line:
            if not self._tell(entry, event):
                continue  # the mail is down: the entry waits for the next pass
            now = utcnow()
            after = entry.moved_to("expired", now)
            uow = self.new_uow()
            self.entries.stage_update(uow, entry, after, since=read_at)
            uow.record(change("expired", after, actor, now, before=entry))
            try:
                uow.commit()
            except ConcurrentUpdate:
                continue  # it changed meanwhile (left): nothing to close
            ended += 1
        return len(line) - ended if len(line) < limit else len(line) - ended + 1

    def _tell(self, entry: WaitlistEntry, event: Event) -> bool:
        user = self.users.get(entry.user_id)
        if user is None:
            return True
        if event.is_cancelled:
            kind, subject = CANCELLED, f"Cancelled: {event.name}"
            news = [
                f"we are sorry: {event.name} has been cancelled by its organiser, so its waitlist is closed.",
                f"Their reason: {event.cancellation_reason or 'none given'}",
            ]
        else:
            kind, subject = STARTED, f"Waitlist closed: {event.name}"
            news = [f"{event.name} has started and no tickets came free for you, so its waitlist is closed."]
        body = "\n".join([f"Hello {user.name},", "", *news, "You were not charged anything."])
        return send_once(self.sent, self.sender, entry.id, kind, user.email, subject, body)
