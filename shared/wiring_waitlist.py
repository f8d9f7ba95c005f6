"""The waitlist use cases, wired (the waitlist part of the composition root, shared/bootstrap.py).
Built on first use, once per process."""

from __future__ import annotations

from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.bootstrap import Container
    from shared.dal.waitlist import WaitlistDAL
    from shared.services.waitlist.closing import LineCloser
    from shared.services.waitlist.hooks import WaitlistHooks
    from shared.services.waitlist.joining import Waitlist
    from shared.services.waitlist.line import WaitingLine
    from shared.services.waitlist.serving import LineServer


class WaitlistServices:
    def __init__(self, root: Container) -> None:
        self.root = root

    @cached_property
    def entries(self) -> WaitlistDAL:
        from shared.dal.waitlist import WaitlistDAL

        return WaitlistDAL(self.root.firestore)

    @cached_property
    def line(self) -> WaitingLine:
        from shared.services.waitlist.line import WaitingLine

        return WaitingLine(self.entries.waiting)

    @cached_property
    def hooks(self) -> WaitlistHooks:
        from shared.services.waitlist.hooks import WaitlistHooks

        return WaitlistHooks(self.entries, self.root.expiry_scheduler.schedule_serve)

    @cached_property
    def service(self) -> Waitlist:
        from shared.services.waitlist.joining import Waitlist

        r = self.root
        return Waitlist(
            self.entries, r.event_store, r.inventory, self.line, r.expiry_scheduler.schedule_serve, r.new_uow
        )

    @cached_property
    def closer(self) -> LineCloser:
        from shared.dal.notifications import NotificationDAL
        from shared.dal.users import UserDAL
        from shared.notify import SmtpSender
        from shared.services.waitlist.closing import LineCloser

        fs, sender = self.root.firestore, SmtpSender.from_settings(self.root.settings)
        return LineCloser(self.entries, UserDAL(fs), NotificationDAL(fs), sender, self.root.new_uow)

    @cached_property
    def server(self) -> LineServer:
        from shared.services.waitlist.serving import LineServer

        r = self.root
        return LineServer(
            self.entries,
            r.event_store,
            r.booking_store,
            r.inventory,
            r.slot_picker,
            r.taken_counter,
            r.holding,
            r.expiry_scheduler,
            timedelta(seconds=r.settings.waitlist_offer_seconds),
            r.new_uow,
            self.closer.close,
        )
