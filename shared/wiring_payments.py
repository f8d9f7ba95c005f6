"""The payment use cases, wired: the payments part of the composition root (shared/bootstrap.py).

Built on first use from the container's clients and stores, once per process.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.bootstrap import Container
    from shared.services.payments.finalising import Finalising
    from shared.services.payments.intake import ProviderEventIntake
    from shared.services.payments.ledger import PaymentLedger
    from shared.services.payments.paying import Paying
    from shared.services.payments.queries import PaymentQueries
    from shared.services.payments.reconciling import Reconciling
    from shared.services.payments.refunding import Refunding


class PaymentServices:
    def __init__(self, root: Container) -> None:
        self.root = root

    @cached_property
    def ledger(self) -> PaymentLedger:
        from datetime import timedelta

        from shared.services.payments.ledger import PaymentLedger
        from shared.services.payments.ports import PaymentRules

        rules = PaymentRules(processing_grace=timedelta(seconds=self.root.settings.processing_grace_seconds))
        return PaymentLedger(
            self.root.payment_store,
            self.root.booking_store,
            self.root.inventory,
            self.root.new_uow,
            rules,
            self.root.expiry_scheduler,
            self.root.promo.uses,
            self.root.waitlist.hooks,
        )

    @cached_property
    def paying(self) -> Paying:
        from shared.services.payments.paying import Paying

        return Paying(
            self.root.payment_store,
            self.root.booking_store,
            self.root.idempotency,
            self.ledger,
            lambda: self.root.gateway,
            self.root.new_uow,
            event_cancelled=self._event_cancelled,
        )

    def _event_cancelled(self, event_id: str) -> bool:
        """Read now, not from the cache: a payment right after the cancel is refused."""
        event = self.root.event_store.get(event_id)
        return event is not None and event.is_cancelled

    @cached_property
    def intake(self) -> ProviderEventIntake:
        from shared.dal.provider_events import ProviderEventDAL
        from shared.services.payments.intake import ProviderEventIntake

        return ProviderEventIntake(
            self.root.payment_store,
            ProviderEventDAL(self.root.firestore),
            self.ledger,
            lambda: self.root.gateway,
            self.root.new_uow,
        )

    @cached_property
    def refunding(self) -> Refunding:
        from shared.services.payments.refunding import Refunding

        return Refunding(
            self.root.payment_store,
            self.root.booking_store,
            self.root.inventory,
            self.ledger,
            lambda: self.root.gateway,
            self.root.new_uow,
            self.root.tickets.issuer,
            self.root.promo.uses,
            self.root.waitlist.hooks,
            released=self.root.sold_slots_released,
        )

    @cached_property
    def finalising(self) -> Finalising:
        from shared.services.payments.finalising import Finalising

        return Finalising(
            self.root.payment_store,
            self.root.booking_store,
            self.root.event_store,
            self.root.inventory,
            self.root.slot_picker,
            self.ledger,
            self.refunding,
            self.root.tickets.issuer,
            self.root.new_uow,
            self.root.promo.uses,
            self.root.waitlist.hooks,
        )

    @cached_property
    def reconciling(self) -> Reconciling:
        from shared.services.payments.reconciling import Reconciling

        return Reconciling(
            self.root.payment_store,
            self.root.booking_store,
            self.ledger,
            self.finalising,
            lambda: self.root.gateway,
            self.ledger.rules,
        )

    @cached_property
    def queries(self) -> PaymentQueries:
        from shared.services.payments.queries import PaymentQueries

        return PaymentQueries(self.root.payment_store)
