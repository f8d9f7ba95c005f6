"""Cancelling an event, wired: the cancellation part of the composition root (shared/bootstrap.py).
Built on first use, once per process: `cancel_services(container())` (bootstrap.py is at its size
limit, so the container does not hold it as an attribute).
"""

from __future__ import annotations

from functools import cached_property, lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.bootstrap import Container
    from shared.cancel_tasks import CancellationTasks
    from shared.dal.cancellations import CancellationDAL
    from shared.services.cancelling.cancel import EventCancelling
    from shared.services.cancelling.fanout import CancellationFanOut
    from shared.services.cancelling.notices import CancellationNotice


class CancelServices:
    def __init__(self, root: Container) -> None:
        self.root = root

    @cached_property
    def store(self) -> CancellationDAL:
        from shared.dal.cancellations import CancellationDAL

        return CancellationDAL(self.root.firestore)

    @cached_property
    def tasks(self) -> CancellationTasks:
        from shared.cancel_tasks import CancellationTasks

        return CancellationTasks(self.root.settings, self.root.expiry_scheduler)

    @cached_property
    def notice(self) -> CancellationNotice:
        from shared.dal.notifications import NotificationDAL
        from shared.dal.users import UserDAL
        from shared.notify import SmtpSender
        from shared.services.cancelling.notices import CancellationNotice

        s, fs = self.root.settings, self.root.firestore
        sender = SmtpSender.from_settings(s)
        return CancellationNotice(UserDAL(fs), NotificationDAL(fs), sender)

    @cached_property
    def cancelling(self) -> EventCancelling:
        from shared.services.cancelling.cancel import EventCancelling

        root = self.root
        return EventCancelling(
            root.event_store,
            root.inventory,
            self.store,
            root.new_uow,
            self.tasks.schedule_soon,
            root.event_cache.forget,
        )

    @cached_property
    def fanout(self) -> CancellationFanOut:
        from shared.services.cancelling.fanout import CancellationFanOut

        root = self.root
        return CancellationFanOut(
            root.event_store,
            root.booking_store,
            root.payment_store,
            self.store,
            root.releasing,
            root.payments.refunding,
            self.notice,
            self.tasks.schedule,
            self.root.waitlist.closer.close,
        )


@lru_cache(maxsize=4)
def cancel_services(root: Container) -> CancelServices:
    return CancelServices(root)
