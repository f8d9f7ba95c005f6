"""Who may check tickets in at an event: its company's admins, and the check-in devices they add.

A device token (`chk_<device id><secret>`) is shown once, at creation; only its SHA-256 is stored.
Every request reads the device, so a revoked device is refused at once (401), and a device's token
opens the check-in routes of its own event only (403 elsewhere).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

from shared.core.errors import Forbidden, NotFound, Unauthenticated, Unavailable
from shared.core.identity import bearer_token
from shared.dal.records import ConcurrentUpdate, Revision, UnitOfWork
from shared.domain_events import Actor, change
from shared.models import Event, new_id, utcnow
from shared.services.identity import Principal
from shared.ticket_models import CheckinDevice

DEVICE_TOKEN_PREFIX = "chk_"  # noqa: S105 (a prefix, not a secret)
_ID_LENGTH = len(new_id())
_DEVICE_ID = re.compile(rf"^(?!__)[A-Za-z0-9_-]{{{_ID_LENGTH}}}$")


@dataclass(frozen=True)
class Gate:
    """Someone checking tickets in at `event_id`: an admin or a device, as the audit log names them."""

    actor: Actor
    event_id: str
    company_id: str


class DeviceStore(Protocol):
    def get(self, device_id: str) -> tuple[CheckinDevice, Revision] | None: ...
    def of_event(self, event_id: str) -> list[CheckinDevice]: ...
    def stage_create(self, uow: UnitOfWork, device: CheckinDevice) -> None: ...
    def stage_update(self, uow: UnitOfWork, device: CheckinDevice, since: Revision) -> None: ...


class EventReader(Protocol):
    def get(self, event_id: str) -> Event | None: ...


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class Gates:
    def __init__(
        self,
        devices: DeviceStore,
        events: EventReader,
        principal_of: Callable[[str | None], Principal],
        new_uow: Callable[[], UnitOfWork],
    ) -> None:
        self.devices = devices
        self.events = events
        self.principal_of = principal_of
        self.new_uow = new_uow

    def gate(self, authorization: str | None, event_id: str) -> Gate:
        """The admin or device behind `authorization`, if it may check in at `event_id`."""
        token = bearer_token(authorization)
        if token.startswith(DEVICE_TOKEN_PREFIX):
            device = self._device_of(token)
            if device.event_id != event_id:
                raise Forbidden("this device checks tickets in at another event")
            return Gate(Actor.device(device.id), event_id, device.company_id)
        principal = self.principal_of(authorization)
        event = self.managed_event(principal, event_id)
        return Gate(Actor.user(principal.user_id), event_id, event.company_id)

    def managed_event(self, principal: Principal, event_id: str) -> Event:
        event = self.events.get(event_id)
        if event is None or not (event.is_published or principal.manages(event.company_id)):
            raise NotFound("event not found")
        if not principal.manages(event.company_id):
            raise Forbidden("only the event's company admins")
        return event

    # ---- devices ---------------------------------------------------------------------------------

    def add_device(self, principal: Principal, event_id: str, name: str) -> tuple[CheckinDevice, str]:
        """A new device and its token (returned here only)."""
        event = self.managed_event(principal, event_id)
        device_id, secret = new_id(), secrets.token_urlsafe(32)
        now = utcnow()
        device = CheckinDevice(device_id, event.id, event.company_id, name, _hash(secret), now)
        uow = self.new_uow()
        self.devices.stage_create(uow, device)
        uow.record(change("added", device, Actor.user(principal.user_id), now))
        uow.commit()
        return device, f"{DEVICE_TOKEN_PREFIX}{device_id}{secret}"

    def devices_of(self, principal: Principal, event_id: str) -> list[CheckinDevice]:
        self.managed_event(principal, event_id)
        return self.devices.of_event(event_id)

    def revoke_device(self, principal: Principal, event_id: str, device_id: str) -> None:
        """Revoked at once; revoking it again changes nothing."""
        self.managed_event(principal, event_id)
        for _ in range(3):
            found = self.devices.get(device_id)
            if found is None or found[0].event_id != event_id:
                raise NotFound("device not found")
            device, read_at = found
            if device.revoked_at is not None:
                return
            now = utcnow()
            revoked = replace(device, revoked_at=now, seq=device.seq + 1)
            uow = self.new_uow()
            self.devices.stage_update(uow, revoked, since=read_at)
            uow.record(change("revoked", revoked, Actor.user(principal.user_id), now, before=device))
            try:
                uow.commit()
                return
            except ConcurrentUpdate:
                continue  # revoked meanwhile by another request: read it again
        raise Unavailable("the device is changing; retry", retry_after=1)

    def _device_of(self, token: str) -> CheckinDevice:
        body = token[len(DEVICE_TOKEN_PREFIX) :]
        device_id, secret = body[:_ID_LENGTH], body[_ID_LENGTH:]
        found = self.devices.get(device_id) if _DEVICE_ID.match(device_id) and secret else None
        if found is None or not hmac.compare_digest(found[0].token_hash, _hash(secret)):
            raise Unauthenticated("unknown check-in device token")
        if found[0].revoked_at is not None:
            raise Unauthenticated("this check-in device was revoked")
        return found[0]
