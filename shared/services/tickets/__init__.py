"""Tickets: issued with a confirmation, revoked with a refund, checked in once at the door."""
