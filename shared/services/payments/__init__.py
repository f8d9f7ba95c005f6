"""Payments, one module per use case: paying, taking in provider events, finalising, refunding,
reconciling; `ledger` holds what several of them do to a payment, `ports` what they need.

Money rules: the provider is never called inside a commit; each attempt has its own provider
idempotency key (booking + attempt), so a retry after a decline works and a retry of the same
attempt never charges twice; a payment is recorded (`creating`) before the provider is called, so
the reconciler finds an intent whose answer was lost; one attempt and one refund at a time per
booking; payment states never move backwards.
"""
