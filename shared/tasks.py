"""Cloud Tasks: a task per booking and expiry time, named after them, that expires the hold when it runs
out; and a task that serves an event's waitlist right after tickets came free.

The client is created on first use (cold starts). Locally it talks to the Cloud Tasks emulator over
an insecure channel; in production the task carries an OIDC token for the invoker service account
and the target function accepts only that caller (IAM).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from shared.core import faults
from shared.core.settings import Settings

log = logging.getLogger("tasks")
EXPIRY_GRACE = timedelta(seconds=1)
SERVE_WINDOW = 0.2  # seconds of releases one waitlist task serves
SERVE_MARGIN = 0.05  # after its window ends, for the clocks of the releasing process and of Cloud Tasks


class ExpiryScheduler(Protocol):
    def schedule_expiry(self, booking_id: str, at: datetime) -> None: ...


class CloudTasksExpiryScheduler:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client: Any = None
        self._lock = threading.Lock()
        self._background = ThreadPoolExecutor(max_workers=4, thread_name_prefix="expiry-tasks")
        self._serve_asked: dict[str, int] = {}  # event id -> the last window this process asked for
        self.clock = time.time

    @property
    def queue_path(self) -> str:
        return self._queue(self.settings.expiry_queue)

    def _queue(self, name: str) -> str:
        s = self.settings
        return f"projects/{s.gcp_project}/locations/{s.region}/queues/{name}"

    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                from google.cloud import tasks_v2

                host = self.settings.cloud_tasks_emulator_host
                if host:
                    import grpc
                    from google.cloud.tasks_v2.services.cloud_tasks.transports import CloudTasksGrpcTransport

                    channel = grpc.insecure_channel(host)
                    self._client = tasks_v2.CloudTasksClient(transport=CloudTasksGrpcTransport(channel=channel))
                else:
                    self._client = tasks_v2.CloudTasksClient()
            return self._client

    def schedule_expiry(self, booking_id: str, at: datetime) -> None:
        """Create the task in the background, after the commit: the answer to the buyer does not wait
        for it, and a task that is never created costs nothing but latency (the sweep expires it)."""
        for when in _faulty(at):
            self._background.submit(self._create, booking_id, when)

    def schedule_serve(self, event_id: str) -> None:
        """Serve the event's waitlist right after this SERVE_WINDOW: one task per event and window,
        named after them, so a burst of releases is served by a few runs, each seeing every release
        of its window (committed before the task is asked for). The process asks once per window
        (Cloud Tasks would refuse the repeated name; the local emulator would run every copy, one
        after another). Not created: the sweep serves the line within a minute."""
        window = int(self.clock() / SERVE_WINDOW) + 1
        with self._lock:
            if self._serve_asked.get(event_id) == window:
                return
            if len(self._serve_asked) > 10_000:
                self._serve_asked.clear()
            self._serve_asked[event_id] = window
        self._background.submit(self._serve, event_id, window)

    def _serve(self, event_id: str, window: int) -> None:
        from google.api_core import exceptions as gexc
        from google.protobuf import timestamp_pb2

        when = timestamp_pb2.Timestamp()
        when.FromDatetime(datetime.fromtimestamp(window * SERVE_WINDOW + SERVE_MARGIN, UTC))
        queue = self._queue(self.settings.waitlist_queue)
        task = {
            "name": f"{queue}/tasks/serve-{event_id}-{window}",
            "schedule_time": when,
            "http_request": self._request("serve-waitlist", {"event_id": event_id}),
        }
        try:
            self.client().create_task(parent=queue, task=task, timeout=5)
        except gexc.AlreadyExists:
            pass  # another process asked for the same window
        except Exception:
            log.warning("could not schedule serving the waitlist of event %s; the sweep will", event_id)

    def schedule_delivery(self, delivery_id: str, attempt: int, at: datetime, now: bool = False) -> None:
        """Attempt `attempt` of a webhook delivery at `at`: a task named after both, so a repeated
        ask makes no second task; `now` (a manual retry) names it apart, so it runs even though
        the scheduled task of the same attempt exists (the attempt's claim keeps it to one send).
        Not created: the sweep asks again once the delivery is overdue."""
        from google.api_core import exceptions as gexc
        from google.protobuf import timestamp_pb2

        when = timestamp_pb2.Timestamp()
        when.FromDatetime(at)
        queue = self._queue(self.settings.webhook_queue)
        name = f"deliver-{delivery_id}-{attempt}" + (f"-now-{int(time.time() * 1000)}" if now else "")
        request = self._request("send", {"delivery_id": delivery_id, "attempt": attempt}, webhook=True)
        task = {"name": f"{queue}/tasks/{name}", "schedule_time": when, "http_request": request}
        try:
            self.client().create_task(parent=queue, task=task, timeout=5)
        except gexc.AlreadyExists:
            pass
        except Exception:
            log.warning("could not schedule attempt %d of delivery %s; the sweep will", attempt, delivery_id)

    def _request(self, task: str, body: dict[str, Any], webhook: bool = False) -> dict[str, Any]:
        s = self.settings
        # Webhook deliveries go to the sender, the one function that calls out, as its own invoker.
        base, invoker = (
            (f"{s.webhook_sender_url}/deliveries", s.webhook_invoker_service_account)
            if webhook
            else (f"{s.tasks_target_base_url}/tasks", s.tasks_invoker_service_account)
        )
        request: dict[str, Any] = {
            "http_method": "POST",
            "url": f"{base}/{task}",
            "headers": {"Content-Type": "application/json"},
            "body": json.dumps(body).encode(),
        }
        if invoker:
            request["oidc_token"] = {"service_account_email": invoker, "audience": base.rsplit("/", 1)[0]}
        return request

    def _create(self, booking_id: str, at: datetime) -> None:
        from google.api_core import exceptions as gexc
        from google.protobuf import timestamp_pb2

        when = timestamp_pb2.Timestamp()
        when.FromDatetime(at + EXPIRY_GRACE)
        request = self._request("expire-booking", {"booking_id": booking_id})
        # Named after the booking and the time: a retried create is deduplicated, a hold extended
        # later gets a task of its own.
        name = f"{self.queue_path}/tasks/expire-{booking_id}-{int(at.timestamp())}"
        task = {"name": name, "schedule_time": when, "http_request": request}
        try:
            self.client().create_task(parent=self.queue_path, task=task, timeout=5)
        except gexc.AlreadyExists:
            pass  # scheduled by an earlier attempt: task names make this idempotent
        except Exception:
            log.warning("could not schedule the expiry task of booking %s; the sweep will expire it", booking_id)


def _faulty(at: datetime) -> list[datetime]:
    """When the expiry tasks of a hold that runs out `at` fire: once, at `at`; under fault injection
    (local and test) sometimes early, late, twice or never. The hold's `expires_at` and the sweep
    keep expiry right whichever happens."""
    injected = faults.current()
    if injected.hit("expiry_never"):
        return []
    if injected.hit("expiry_early"):
        return [at - timedelta(seconds=injected.uniform("expiry_early", 1, 10))]
    if injected.hit("expiry_late"):
        return [at + timedelta(seconds=injected.uniform("expiry_late", 5, 30))]
    if injected.hit("expiry_twice"):
        return [at, at + timedelta(seconds=1)]
    return [at]
