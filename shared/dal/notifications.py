"""NotificationDAL: which messages went out, so that a redelivered event sends nothing twice."""

from __future__ import annotations

from google.api_core import exceptions as gexc
from google.cloud import firestore

from shared.dal.base import Dal


class NotificationDAL(Dal):
    collection = "notifications"

    def claim(self, booking_id: str, kind: str) -> bool:
        """True for the first caller only: creates the record of this message."""
        try:
            self.ref(f"{booking_id}-{kind}").create({"state": "sending", "at": firestore.SERVER_TIMESTAMP})
        except gexc.AlreadyExists:
            return False
        return True

    def mark_sent(self, booking_id: str, kind: str) -> None:
        self.ref(f"{booking_id}-{kind}").update({"state": "sent", "at": firestore.SERVER_TIMESTAMP})

    def release(self, booking_id: str, kind: str) -> None:
        self.ref(f"{booking_id}-{kind}").delete()
