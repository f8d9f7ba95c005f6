"""Sending a message once per object and kind, however often the news comes (a notification
record is claimed first; a failed send gives the claim back, so a later pass tries again)."""

from __future__ import annotations

import logging
from typing import Protocol

from shared.notify import EmailSender

log = logging.getLogger("notifications")


class SentLog(Protocol):
    def claim(self, booking_id: str, kind: str) -> bool: ...
    def mark_sent(self, booking_id: str, kind: str) -> None: ...
    def release(self, booking_id: str, kind: str) -> None: ...


def send_once(sent: SentLog, sender: EmailSender, key: str, kind: str, to: str, subject: str, body: str) -> bool:
    """True once the message is out (now, or by an earlier pass); False when it could not go."""
    if not sent.claim(key, kind):
        return True
    try:
        sender.send(to, subject, body)
    except Exception:
        sent.release(key, kind)
        log.warning("could not send the %s message of %s; a later pass tries again", kind, key)
        return False
    sent.mark_sent(key, kind)
    return True
