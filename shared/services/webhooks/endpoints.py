"""A company's admins register, read, change and delete the endpoints that receive its webhooks, read
each endpoint's delivery log and send a delivery again.

An endpoint is the company's own: another company's is `not_found`. Its URL passes the SSRF guard
(guard.py) when it is registered and whenever it changes. Its signing secret is made here, shown once
in the answer and stored sealed (signing.py).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from shared.core.errors import Forbidden, InvalidState, NotFound, Unavailable
from shared.dal.records import ConcurrentUpdate, Revision
from shared.models import new_id, utcnow
from shared.schemas.webhooks import EndpointIn, EndpointPatch
from shared.services.identity import Principal
from shared.services.paging import decode_after, decode_token, encode_after, encode_token, fingerprint
from shared.services.webhooks.guard import UrlGuard
from shared.services.webhooks.signing import SecretBox, new_secret
from shared.webhook_models import Delivery, WebhookEndpoint

MAX_ENDPOINTS = 20  # per company


class EndpointStore(Protocol):
    def get(self, endpoint_id: str) -> tuple[WebhookEndpoint, Revision] | None: ...
    def page_of_company(
        self, company_id: str, limit: int, after: str | None
    ) -> tuple[list[WebhookEndpoint], str | None]: ...
    def of_company(self, company_id: str) -> list[WebhookEndpoint]: ...
    def create(self, endpoint: WebhookEndpoint) -> None: ...
    def update(self, endpoint: WebhookEndpoint, since: Revision) -> None: ...
    def delete(self, endpoint_id: str, since: Revision) -> None: ...


class DeliveryStore(Protocol):
    def get(self, delivery_id: str) -> tuple[Delivery, Revision] | None: ...
    def page_of_endpoint(
        self, endpoint_id: str, limit: int, after: tuple[datetime, str] | None
    ) -> tuple[list[Delivery], tuple[datetime, str] | None]: ...
    def update(self, delivery: Delivery, since: Revision) -> Revision: ...


class Endpoints:
    def __init__(
        self,
        endpoints: EndpointStore,
        deliveries: DeliveryStore,
        guard: UrlGuard,
        box: SecretBox,
        send_now: Callable[[str, int], None],
    ) -> None:
        self.endpoints = endpoints
        self.deliveries = deliveries
        self.guard = guard
        self.box = box
        self.send_now = send_now  # asks the sender for attempt n of a delivery, now

    def create(self, principal: Principal, body: EndpointIn) -> tuple[WebhookEndpoint, str]:
        """The new endpoint and its secret (shown only in this answer)."""
        company_id = _admin(principal)
        self.guard.field_error(body.url)
        if len(self.endpoints.of_company(company_id)) >= MAX_ENDPOINTS:
            raise InvalidState(f"a company has at most {MAX_ENDPOINTS} webhook endpoints")
        now, endpoint_id, secret = utcnow(), new_id(), new_secret()
        endpoint = WebhookEndpoint(
            id=endpoint_id,
            company_id=company_id,
            url=body.url,
            events=tuple(body.events),
            description=body.description,
            status="enabled",
            secret_sealed=self.box.seal(secret, endpoint_id),
            created_at=now,
            updated_at=now,
        )
        self.endpoints.create(endpoint)
        return endpoint, secret

    def page(
        self, principal: Principal, limit: int, page_token: str | None
    ) -> tuple[list[WebhookEndpoint], str | None]:
        company_id = _admin(principal)
        query = fingerprint({"webhook_endpoints": company_id})
        after = decode_after(page_token, query) if page_token else None
        found, cursor = self.endpoints.page_of_company(company_id, limit, after)
        return found, encode_after(cursor, query) if cursor else None

    def get(self, principal: Principal, endpoint_id: str) -> WebhookEndpoint:
        return self._own(principal, endpoint_id)[0]

    def update(self, principal: Principal, endpoint_id: str, patch: EndpointPatch) -> WebhookEndpoint:
        if patch.url is not None:
            self.guard.field_error(patch.url)
        for _ in range(3):
            current, read_at = self._own(principal, endpoint_id)
            changes: dict[str, object] = {}
            if patch.url is not None:
                changes["url"] = patch.url
            if patch.events is not None:
                changes["events"] = tuple(patch.events)
            if patch.status is not None and patch.status != current.status:
                changes["status"] = patch.status
                # enabled again: its failures so far no longer count toward disabling it
                changes.update(failing_since=None, disabled_at=None if patch.status == "enabled" else utcnow())
            revised = current.changed(utcnow(), **changes)
            try:
                self.endpoints.update(revised, since=read_at)
            except ConcurrentUpdate:
                continue
            return revised
        raise Unavailable("the endpoint is changing; retry", retry_after=1)

    def delete(self, principal: Principal, endpoint_id: str) -> None:
        """Deleted endpoints get nothing more: their pending deliveries end `failed` when next tried."""
        for _ in range(3):
            _, read_at = self._own(principal, endpoint_id)
            try:
                self.endpoints.delete(endpoint_id, since=read_at)
            except ConcurrentUpdate:
                continue
            return
        raise Unavailable("the endpoint is changing; retry", retry_after=1)

    def delivery_log(
        self, principal: Principal, endpoint_id: str, limit: int, page_token: str | None
    ) -> tuple[list[Delivery], str | None]:
        self._own(principal, endpoint_id)
        query = fingerprint({"webhook_deliveries": endpoint_id})
        after = decode_token(page_token, query) if page_token else None
        found, cursor = self.deliveries.page_of_endpoint(endpoint_id, limit, after)
        return found, encode_token(cursor, query) if cursor else None

    def retry(self, principal: Principal, endpoint_id: str, delivery_id: str) -> Delivery:
        """Send the delivery again now (whatever its state), as its next attempt."""
        self._own(principal, endpoint_id)
        for _ in range(3):
            found = self.deliveries.get(delivery_id)
            if found is None or found[0].endpoint_id != endpoint_id:
                raise NotFound("delivery not found")
            current, read_at = found
            now = utcnow()
            again = current.changed(now, state="pending", next_attempt_at=now)
            try:
                self.deliveries.update(again, since=read_at)
            except ConcurrentUpdate:
                continue  # an attempt is being recorded: read it again
            self.send_now(delivery_id, again.attempts + 1)
            return again
        raise Unavailable("the delivery is changing; retry", retry_after=1)

    def _own(self, principal: Principal, endpoint_id: str) -> tuple[WebhookEndpoint, Revision]:
        company_id = _admin(principal)
        found = self.endpoints.get(endpoint_id)
        if found is None or found[0].company_id != company_id:
            raise NotFound("webhook endpoint not found")
        return found


def _admin(principal: Principal) -> str:
    if not principal.is_admin or principal.company_id is None:
        raise Forbidden("only a company's admins manage its webhook endpoints")
    return principal.company_id
