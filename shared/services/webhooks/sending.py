"""One attempt of one delivery: run by its own named Cloud Task (`deliver-<delivery>-<n>`).

The attempt is claimed first, by a compare-and-set that moves `attempts` from n-1 to n, so a task
run twice (Cloud Tasks is at least once) or a manual retry racing a scheduled one sends attempt n
once. The claim also moves `next_attempt_at` past the call's timeout: if the process dies while
sending, the sweep finds the delivery overdue and asks for the attempt again. Then the URL passes the
SSRF guard again (a name may resolve elsewhere by now), the body is signed and POSTed, and the
outcome recorded: a 2xx is `delivered`; anything else is retried on the Standard Webhooks schedule
(a task named for the next attempt, at its time) until the last attempt, which leaves it `failed`.
An endpoint that has failed for DISABLE_AFTER is disabled and its company's admins are e-mailed.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol

from shared.dal.records import ConcurrentUpdate, Revision
from shared.models import utcnow
from shared.outbound import NoAnswer
from shared.services.webhooks.guard import Refused, Target, UrlGuard
from shared.services.webhooks.signing import SecretBox, sign
from shared.webhook_models import DISABLE_AFTER, MAX_ATTEMPTS, RETRY_SCHEDULE, Delivery, WebhookEndpoint

log = logging.getLogger("webhooks")
LEASE = timedelta(seconds=40)  # beyond the call's timeout: an attempt that died is due again after it


class Deliveries(Protocol):
    def get(self, delivery_id: str) -> tuple[Delivery, Revision] | None: ...
    def update(self, delivery: Delivery, since: Revision) -> Revision: ...
    def overdue(self, before: datetime, limit: int) -> list[Delivery]: ...


class Endpoints(Protocol):
    def get(self, endpoint_id: str) -> tuple[WebhookEndpoint, Revision] | None: ...
    def update(self, endpoint: WebhookEndpoint, since: Revision) -> None: ...


class Poster(Protocol):
    def post(self, target: Target, headers: dict[str, str], body: bytes) -> int: ...


class Sender:
    def __init__(
        self,
        deliveries: Deliveries,
        endpoints: Endpoints,
        guard: UrlGuard,
        box: SecretBox,
        poster: Poster,
        schedule: Callable[[str, int, datetime], None],
        tell_admins: Callable[[WebhookEndpoint], None],
    ) -> None:
        self.deliveries = deliveries
        self.endpoints = endpoints
        self.guard = guard
        self.box = box
        self.poster = poster
        self.schedule = schedule  # asks for attempt n of a delivery at a time (a named task)
        self.tell_admins = tell_admins

    def attempt(self, delivery_id: str, n: int) -> str:
        """Make attempt n of the delivery, unless it was made; returns what happened."""
        found = self.deliveries.get(delivery_id)
        if found is None:
            return "unknown delivery"
        current, read_at = found
        if current.state != "pending" or current.attempts >= n:
            return "already attempted"
        now = utcnow()
        claimed = current.changed(now, attempts=n, last_attempt_at=now, next_attempt_at=now + LEASE)
        try:
            read_at = self.deliveries.update(claimed, since=read_at)
        except ConcurrentUpdate:
            return "already attempted"
        endpoint = self.endpoints.get(claimed.endpoint_id)
        if endpoint is None or not endpoint[0].wants(claimed.type):
            why = (
                "the endpoint was deleted"
                if endpoint is None
                else "the endpoint is disabled"
                if endpoint[0].status != "enabled"
                else "the endpoint no longer subscribes to this type"
            )
            self._record(claimed, read_at, state="failed", next_attempt_at=None, last_status=None, last_error=why)
            return "dropped"
        status, error = self._post(endpoint[0], claimed)
        if status is not None and 200 <= status < 300:
            self._record(claimed, read_at, state="delivered", next_attempt_at=None, last_status=status, last_error=None)
            self._succeeded(endpoint)
            return "delivered"
        again = now + RETRY_SCHEDULE[min(n, len(RETRY_SCHEDULE)) - 1] if n < MAX_ATTEMPTS else None
        self._record(
            claimed,
            read_at,
            state="pending" if again else "failed",
            next_attempt_at=again,
            last_status=status,
            last_error=error,
        )
        if again is not None:
            self.schedule(delivery_id, n + 1, again)
        self._failed(endpoint[0].id)
        return "failed, retried later" if again else "failed"

    def resume(self, limit: int) -> int:
        """The sweep: ask again for every attempt whose task was lost (or whose sender died)."""
        overdue = self.deliveries.overdue(utcnow() - timedelta(seconds=30), limit)
        for delivery in overdue:
            self.schedule(delivery.id, delivery.attempts + 1, utcnow())
        return len(overdue)

    def _post(self, endpoint: WebhookEndpoint, delivery: Delivery) -> tuple[int | None, str | None]:
        try:
            target = self.guard.check(endpoint.url)
        except Refused as exc:
            return None, f"not sent: {exc}"
        timestamp = int(time.time())
        secret = self.box.open(endpoint.secret_sealed, endpoint.id)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "ticketing-webhooks/1",
            "webhook-id": delivery.event_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(secret, delivery.event_id, timestamp, delivery.body),
        }
        try:
            status = self.poster.post(target, headers, delivery.body.encode())
        except NoAnswer as exc:
            return None, f"no answer: {exc}"
        return status, None if 200 <= status < 300 else f"answered {status}"

    def _record(self, claimed: Delivery, read_at: Revision, **outcome: object) -> None:
        now = utcnow()
        if outcome.get("state") == "delivered":
            outcome["delivered_at"] = now
        try:
            self.deliveries.update(claimed.changed(now, **outcome), since=read_at)
        except ConcurrentUpdate:
            # a manual retry moved it meanwhile: its own attempt records its outcome
            log.info("delivery %s changed while attempt %d was sent", claimed.id, claimed.attempts)

    def _succeeded(self, found: tuple[WebhookEndpoint, Revision]) -> None:
        """A success clears the endpoint's run of failures (read before the call: a failure
        recorded meanwhile is cleared by the next success)."""
        endpoint, read_at = found
        if endpoint.failing_since is None:
            return
        with contextlib.suppress(ConcurrentUpdate):  # another outcome got there first; the next success clears it
            self.endpoints.update(endpoint.changed(utcnow(), failing_since=None), since=read_at)

    def _failed(self, endpoint_id: str) -> None:
        found = self.endpoints.get(endpoint_id)
        if found is None or found[0].status != "enabled":
            return
        endpoint, read_at = found
        now = utcnow()
        if endpoint.failing_since is None:
            changed = endpoint.changed(now, failing_since=now)
        elif now - endpoint.failing_since >= DISABLE_AFTER:
            changed = endpoint.changed(now, status="disabled", disabled_at=now)
        else:
            return
        try:
            self.endpoints.update(changed, since=read_at)
        except ConcurrentUpdate:
            return  # another attempt's outcome got there first
        if changed.status == "disabled":
            log.warning(
                "webhook endpoint %s of company %s disabled after failing since %s",
                endpoint.id,
                endpoint.company_id,
                endpoint.failing_since,
                extra={"alert": "webhook_endpoint_disabled"},
            )
            self.tell_admins(changed)
