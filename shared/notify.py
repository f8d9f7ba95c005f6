"""Sending email: a small interface and its SMTP implementation (the local stack runs a sink)."""

from __future__ import annotations

import smtplib
from collections.abc import Sequence
from email.message import EmailMessage
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from shared.core.settings import Settings

Attachment = tuple[str, str, bytes]  # (file name, media type "image/png", content)


class EmailSender(Protocol):
    def send(self, to: str, subject: str, body: str, attachments: Sequence[Attachment] = ()) -> None: ...


class SmtpSender:
    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
    ) -> None:
        self.host, self.port, self.sender = host, port, sender
        self.username, self.password, self.starttls = username, password, starttls

    @classmethod
    def from_settings(cls, s: Settings) -> SmtpSender:
        return cls(s.smtp_host, s.smtp_port, s.smtp_sender, s.smtp_username, s.smtp_password, s.smtp_starttls)

    def send(self, to: str, subject: str, body: str, attachments: Sequence[Attachment] = ()) -> None:
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = self.sender, to, subject
        msg.set_content(body)
        for filename, media, content in attachments:
            maintype, _, subtype = media.partition("/")
            msg.add_attachment(content, maintype=maintype, subtype=subtype, filename=filename)
        with smtplib.SMTP(self.host, self.port, timeout=10) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.username and self.password:
                smtp.login(self.username, self.password)
            smtp.send_message(msg)
