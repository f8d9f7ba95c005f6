"""Composition root: builds clients, DALs and services on first use and keeps them per process.

Nothing here runs at import time, so a function module imports fast and a cold start pays only for
the clients its path uses (Firestore always; Stripe, Pub/Sub and Tasks only where needed).
"""

from __future__ import annotations

from functools import cached_property, lru_cache
from typing import TYPE_CHECKING

from shared.core.settings import Settings, get_settings

if TYPE_CHECKING:
    from google.cloud import firestore

    from shared.dal.inventory import InventoryDAL
    from shared.dal.outbox import OutboxDAL
    from shared.messaging import OutboxRelay
    from shared.payments.gateway import PaymentGateway
    from shared.services.bookings import BookingService
    from shared.services.cache import CachedEvents
    from shared.services.events import EventService
    from shared.services.identity import Authenticator
    from shared.services.notifications import ConfirmationNotifier
    from shared.services.payments import PaymentService
    from shared.services.slots import SlotPicker
    from shared.services.users import UserService


class Container:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def firestore(self) -> firestore.Client:
        from google.cloud import firestore

        return firestore.Client(project=self.settings.gcp_project)

    @cached_property
    def authenticator(self) -> Authenticator:
        from shared.core.auth import TokenVerifier
        from shared.dal.users import UserDAL
        from shared.services.identity import Authenticator

        s = self.settings
        verifier = TokenVerifier(s.issuer, s.audience, s.jwks_url, s.auth_leeway_seconds)
        return Authenticator(verifier, UserDAL(self.firestore))

    @cached_property
    def users(self) -> UserService:
        from shared.dal.users import CompanyDAL, UserDAL
        from shared.services.users import UserService

        return UserService(UserDAL(self.firestore), CompanyDAL(self.firestore))

    @cached_property
    def events(self) -> EventService:
        from shared.dal.events import EventDAL
        from shared.services.capacity import CapacityChanger
        from shared.services.events import EventService

        return EventService(
            EventDAL(self.firestore),
            self.inventory,
            CapacityChanger(self.inventory, self.slot_picker),
            changed=self.event_cache.forget,
        )

    @cached_property
    def event_cache(self) -> CachedEvents:
        from shared.dal.events import EventDAL
        from shared.services.cache import CachedEvents

        return CachedEvents(EventDAL(self.firestore))

    @cached_property
    def inventory(self) -> InventoryDAL:
        from shared.dal.inventory import InventoryDAL

        return InventoryDAL(self.firestore)

    @cached_property
    def slot_picker(self) -> SlotPicker:
        from shared.services.slots import SlotPicker

        return SlotPicker(self.inventory)

    @cached_property
    def bookings(self) -> BookingService:
        from datetime import timedelta

        from shared.dal.bookings import BookingDAL
        from shared.services.bookings import BookingRules, BookingService
        from shared.tasks import CloudTasksExpiryScheduler

        rules = BookingRules(
            hold_ttl=timedelta(seconds=self.settings.hold_ttl_seconds),
            max_pending_per_buyer=self.settings.max_pending_bookings_per_buyer,
        )
        return BookingService(
            BookingDAL(self.firestore, self.inventory, self.outbox),
            self.event_cache,
            self.inventory,
            self.slot_picker,
            CloudTasksExpiryScheduler(self.settings),
            rules,
        )

    @cached_property
    def outbox(self) -> OutboxDAL:
        from shared.dal.outbox import OutboxDAL

        return OutboxDAL(self.firestore)

    @cached_property
    def relay(self) -> OutboxRelay:
        from shared.messaging import OutboxRelay, PubSubPublisher

        skip = self.settings.fault_injection == "skip_outbox_publish"
        return OutboxRelay(self.outbox, PubSubPublisher(self.settings), skip_after_commit=skip)

    @cached_property
    def gateway(self) -> PaymentGateway:
        from shared.payments.factory import make_gateway

        return make_gateway(self.settings)

    @cached_property
    def payments(self) -> PaymentService:
        from datetime import timedelta

        from shared.dal.bookings import BookingDAL
        from shared.dal.events import EventDAL
        from shared.dal.payments import PaymentDAL
        from shared.services.payments import PaymentRules, PaymentService

        bookings = BookingDAL(self.firestore, self.inventory, self.outbox)
        return PaymentService(
            PaymentDAL(self.firestore, bookings, self.outbox),
            bookings,
            EventDAL(self.firestore),
            self.inventory,
            self.slot_picker,
            lambda: self.gateway,
            self.relay,
            PaymentRules(processing_grace=timedelta(seconds=self.settings.processing_grace_seconds)),
        )

    @cached_property
    def notifier(self) -> ConfirmationNotifier:
        from shared.dal.bookings import BookingDAL
        from shared.dal.events import EventDAL
        from shared.dal.notifications import NotificationDAL
        from shared.dal.users import UserDAL
        from shared.notify import SmtpSender
        from shared.services.notifications import ConfirmationNotifier

        s = self.settings
        sender = SmtpSender(s.smtp_host, s.smtp_port, s.smtp_sender, s.smtp_username, s.smtp_password, s.smtp_starttls)
        bookings = BookingDAL(self.firestore, self.inventory, self.outbox)
        return ConfirmationNotifier(
            bookings, UserDAL(self.firestore), EventDAL(self.firestore), NotificationDAL(self.firestore), sender
        )


@lru_cache(maxsize=1)
def container() -> Container:
    return Container(get_settings())
