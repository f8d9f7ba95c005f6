"""Reading payments: a buyer's or an admin's view of one, and what needs a person's attention."""

from __future__ import annotations

from shared.core.errors import Forbidden, NotFound
from shared.models import Booking, Payment
from shared.services.identity import Principal
from shared.services.payments.ports import PaymentStore


class PaymentQueries:
    def __init__(self, payments: PaymentStore) -> None:
        self.payments = payments

    def get(self, principal: Principal, payment_id: str) -> Payment:
        found = self.payments.get(payment_id)
        if found is None:
            raise NotFound("payment not found")
        payment = found[0]
        if payment.user_id != principal.user_id and not principal.manages(payment.company_id):
            raise NotFound("payment not found")
        return payment

    def latest_of(self, booking: Booking) -> Payment | None:
        if booking.latest_payment_id is None:
            return None
        found = self.payments.get(booking.latest_payment_id)
        return found[0] if found else None

    def needing_attention(self, principal: Principal, limit: int) -> list[Payment]:
        if not principal.is_admin or principal.company_id is None:
            raise Forbidden("only event managers see what needs attention")
        return self.payments.by_company_needing_attention(principal.company_id, limit)
