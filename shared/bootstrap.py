"""Composition root: builds clients, DALs and services on first use and keeps them per process.

Nothing here runs at import time, so a function module imports fast and a cold start pays only for
the clients its path uses (Firestore always; Stripe, Pub/Sub and Tasks only where needed).
"""

from __future__ import annotations

from functools import cached_property, lru_cache
from typing import TYPE_CHECKING

from shared.core import faults
from shared.core.settings import Settings, get_settings

if TYPE_CHECKING:
    from google.cloud import firestore

    from shared.dal.bookings import BookingDAL
    from shared.dal.events import EventDAL
    from shared.dal.idempotency import IdempotencyDAL
    from shared.dal.inventory import InventoryDAL
    from shared.dal.payments import PaymentDAL
    from shared.dal.records import UnitOfWork
    from shared.dal.stream import DomainEventDAL
    from shared.dal.tickets import TicketDAL
    from shared.messaging import OutboxRelay
    from shared.payments.gateway import PaymentGateway
    from shared.services.audit import AuditLog
    from shared.services.bookings.holding import Holding
    from shared.services.bookings.queries import BookingQueries
    from shared.services.bookings.releasing import Releasing
    from shared.services.cache import CachedEvents
    from shared.services.counting import TakenCounter
    from shared.services.events import EventService
    from shared.services.identity import Authenticator
    from shared.services.invitations import Team
    from shared.services.notifications import ConfirmationNotifier
    from shared.services.slots import SlotPicker
    from shared.services.users import UserService
    from shared.tasks import CloudTasksExpiryScheduler
    from shared.wiring_payments import PaymentServices
    from shared.wiring_promo import PromoServices
    from shared.wiring_tickets import TicketServices
    from shared.wiring_waitlist import WaitlistServices


class Container:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        faults.configure(settings.fault_plan)  # off unless a local or test run asks for faults

    @cached_property
    def firestore(self) -> firestore.Client:
        from google.cloud import firestore

        return firestore.Client(project=self.settings.gcp_project)

    # ---- stores: one DAL per collection, shared by the services of this process ----------------

    @cached_property
    def stream(self) -> DomainEventDAL:
        from shared.dal.stream import DomainEventDAL

        return DomainEventDAL(self.firestore)

    def new_uow(self) -> UnitOfWork:
        from shared.dal.unit_of_work import FirestoreUnitOfWork

        return FirestoreUnitOfWork(self.firestore, self.stream, self.relay.deliver)

    @cached_property
    def event_store(self) -> EventDAL:
        from shared.dal.events import EventDAL

        return EventDAL(self.firestore)

    @cached_property
    def booking_store(self) -> BookingDAL:
        from shared.dal.bookings import BookingDAL

        return BookingDAL(self.firestore)

    @cached_property
    def ticket_store(self) -> TicketDAL:
        from shared.dal.tickets import TicketDAL

        return TicketDAL(self.firestore)

    @cached_property
    def payment_store(self) -> PaymentDAL:
        from shared.dal.payments import PaymentDAL

        return PaymentDAL(self.firestore)

    @cached_property
    def idempotency(self) -> IdempotencyDAL:
        from shared.dal.idempotency import IdempotencyDAL

        return IdempotencyDAL(self.firestore)

    @cached_property
    def inventory(self) -> InventoryDAL:
        from shared.dal.inventory import InventoryDAL

        return InventoryDAL(self.firestore)

    @cached_property
    def slot_picker(self) -> SlotPicker:
        from shared.services.slots import SlotPicker

        return SlotPicker(self.inventory)

    @cached_property
    def relay(self) -> OutboxRelay:
        from shared.messaging import OutboxRelay, PubSubPublisher

        skip = self.settings.fault_injection == "skip_outbox_publish"
        return OutboxRelay(self.stream, PubSubPublisher(self.settings), skip_after_commit=skip)

    @cached_property
    def gateway(self) -> PaymentGateway:
        from shared.payments.factory import make_gateway

        return make_gateway(self.settings)

    # ---- services ---------------------------------------------------------------------------

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
        from shared.dal.invitations import InvitationDAL
        from shared.dal.users import CompanyDAL, UserDAL
        from shared.services.users import UserService

        fs = self.firestore
        return UserService(UserDAL(fs), CompanyDAL(fs), InvitationDAL(fs), self.new_uow)

    @cached_property
    def team(self) -> Team:
        from shared.dal.invitations import InvitationDAL
        from shared.dal.users import CompanyDAL, UserDAL
        from shared.notify import SmtpSender
        from shared.services.invitations import Team

        s, fs = self.settings, self.firestore
        sender = SmtpSender.from_settings(s)
        return Team(InvitationDAL(fs), UserDAL(fs), CompanyDAL(fs), sender, self.new_uow)

    @cached_property
    def events(self) -> EventService:
        from shared.services.capacity import CapacityChanger
        from shared.services.events import EventService

        return EventService(
            self.event_store,
            self.inventory,
            CapacityChanger(self.inventory, self.slot_picker),
            self.new_uow,
            changed=self.event_changed,
        )

    def event_changed(self, event_id: str, capacity_raised: bool) -> None:
        """An event was saved: this process reads it again, and a raised capacity serves its waitlist."""
        self.event_cache.forget(event_id)
        if capacity_raised:
            self.waitlist.hooks.freed(event_id)

    @cached_property
    def audit(self) -> AuditLog:
        from shared.services.audit import AuditLog

        return AuditLog(self.stream, self.event_store)

    @cached_property
    def event_cache(self) -> CachedEvents:
        from shared.services.cache import CachedEvents

        return CachedEvents(self.event_store)

    @cached_property
    def expiry_scheduler(self) -> CloudTasksExpiryScheduler:
        from shared.tasks import CloudTasksExpiryScheduler

        return CloudTasksExpiryScheduler(self.settings)

    @cached_property
    def taken_counter(self) -> TakenCounter:
        from shared.services.counting import TakenCounter

        return TakenCounter(self.inventory.taken)

    def sold_slots_released(self, event_id: str, numbers: list[int]) -> None:
        """A refund gave sold tickets back: free for this process's picks and off its count."""
        self.slot_picker.released(event_id, numbers)
        self.taken_counter.released(event_id, [None] * len(numbers))

    @cached_property
    def holding(self) -> Holding:
        from datetime import timedelta

        from shared.services.bookings.holding import Holding
        from shared.services.bookings.ports import BookingRules

        rules = BookingRules(
            hold_ttl=timedelta(seconds=self.settings.hold_ttl_seconds),
            max_pending_per_buyer=self.settings.max_pending_bookings_per_buyer,
            max_holds_per_minute=self.settings.max_holds_per_buyer_per_minute,
        )
        return Holding(
            self.booking_store,
            self.idempotency,
            self.event_cache,
            self.inventory,
            self.slot_picker,
            self.taken_counter,
            self.expiry_scheduler,
            rules,
            self.new_uow,
            self.promo.uses,
            self.tickets.issuer,
            self.waitlist.line,
        )

    @cached_property
    def releasing(self) -> Releasing:
        from shared.services.bookings.releasing import Releasing

        return Releasing(
            self.booking_store,
            self.inventory,
            self.slot_picker,
            self.taken_counter,
            self.new_uow,
            self.promo.uses,
            self.waitlist.hooks,
        )

    @cached_property
    def booking_queries(self) -> BookingQueries:
        from shared.services.bookings.queries import BookingQueries

        return BookingQueries(self.booking_store, self.event_cache)

    @cached_property
    def payments(self) -> PaymentServices:
        from shared.wiring_payments import PaymentServices

        return PaymentServices(self)

    @cached_property
    def waitlist(self) -> WaitlistServices:
        from shared.wiring_waitlist import WaitlistServices

        return WaitlistServices(self)

    @cached_property
    def promo(self) -> PromoServices:
        from shared.wiring_promo import PromoServices

        return PromoServices(self)

    @cached_property
    def tickets(self) -> TicketServices:
        from shared.wiring_tickets import TicketServices

        return TicketServices(self)

    @cached_property
    def notifier(self) -> ConfirmationNotifier:
        from shared.dal.notifications import NotificationDAL
        from shared.dal.users import UserDAL
        from shared.notify import SmtpSender
        from shared.services.notifications import ConfirmationNotifier

        s = self.settings
        sender = SmtpSender.from_settings(s)
        return ConfirmationNotifier(
            self.booking_store,
            UserDAL(self.firestore),
            self.event_store,
            self.ticket_store,
            NotificationDAL(self.firestore),
            sender,
        )


@lru_cache(maxsize=1)
def container() -> Container:
    return Container(get_settings())
