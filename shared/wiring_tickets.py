"""The ticket use cases, wired: tickets, the door and the event's statistics (the tickets part of the
composition root, shared/bootstrap.py). Built on first use, once per process.
"""

from __future__ import annotations

import logging
from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.bootstrap import Container
    from shared.core.ticket_codes import TicketCodes
    from shared.services.stats import EventStats
    from shared.services.tickets.attendees import Attendees
    from shared.services.tickets.checking_in import CheckingIn
    from shared.services.tickets.gates import Gates
    from shared.services.tickets.issuing import TicketIssuer
    from shared.services.tickets.queries import TicketQueries

log = logging.getLogger("bootstrap")


class TicketServices:
    def __init__(self, root: Container) -> None:
        self.root = root

    @cached_property
    def codes(self) -> TicketCodes:
        """The signing keys (the settings refuse to start without them outside local and test; a
        local process given none signs with a key of its own, which only it can verify)."""
        from shared.core.ticket_codes import TicketCodes, new_key_setting

        configured = self.root.settings.ticket_signing_keys
        if configured is None:
            log.warning("TICKET_SIGNING_KEYS not set: this process signs tickets with a key of its own")
            return TicketCodes.from_setting(new_key_setting("local"))
        return TicketCodes.from_setting(configured.get_secret_value())

    @cached_property
    def issuer(self) -> TicketIssuer:
        from shared.services.tickets.issuing import TicketIssuer

        return TicketIssuer(self.root.ticket_store, self.codes)

    @cached_property
    def queries(self) -> TicketQueries:
        from shared.services.tickets.queries import TicketQueries

        return TicketQueries(self.root.ticket_store, self.root.booking_queries)

    @cached_property
    def gates(self) -> Gates:
        from shared.dal.checkin import DeviceDAL
        from shared.services.tickets.gates import Gates

        root = self.root
        return Gates(DeviceDAL(root.firestore), root.event_cache, root.authenticator.principal, root.new_uow)

    @cached_property
    def checking_in(self) -> CheckingIn:
        from shared.dal.checkin import ScanDAL
        from shared.services.tickets.checking_in import CheckingIn

        return CheckingIn(self.root.ticket_store, ScanDAL(self.root.firestore), self.codes, self.root.new_uow)

    @cached_property
    def attendees(self) -> Attendees:
        from shared.dal.users import UserDAL
        from shared.services.tickets.attendees import Attendees

        return Attendees(self.root.ticket_store, UserDAL(self.root.firestore), self.gates)

    @cached_property
    def stats(self) -> EventStats:
        from shared.dal.stats import StatsDAL
        from shared.services.stats import EventStats

        return EventStats(StatsDAL(self.root.firestore), self.root.event_store)
