"""Cloud Tasks for cancelling an event: one task per batch of its bookings (`POST /tasks/cancel-event`).

A task is named after the event, the run and the batch's cursor, so a retried create of the same
batch is deduplicated. The request that cancels asks for the first batch in the background (its
answer does not wait); a batch asks for the next before it ends. A task that is never created costs
time, not correctness: the sweep resumes every unsettled cancellation. The queue, client and OIDC
token are the expiry scheduler's (shared/tasks.py).
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from shared.core.settings import Settings
from shared.tasks import CloudTasksExpiryScheduler

log = logging.getLogger("tasks")


class CancellationTasks:
    def __init__(self, settings: Settings, tasks: CloudTasksExpiryScheduler) -> None:
        self.settings = settings
        self.tasks = tasks
        self._background = ThreadPoolExecutor(max_workers=2, thread_name_prefix="cancel-tasks")

    def schedule_soon(self, event_id: str, run: str, after: str | None) -> None:
        """In the background, after the commit (the request path)."""
        self._background.submit(self.schedule, event_id, run, after)

    def schedule(self, event_id: str, run: str, after: str | None) -> bool:
        """Create the task of the batch after `after`; False if it could not be created."""
        from google.api_core import exceptions as gexc

        s = self.settings
        request: dict[str, Any] = {
            "http_method": "POST",
            "url": f"{s.tasks_target_base_url}/tasks/cancel-event",
            "headers": {"Content-Type": "application/json"},
            "body": json.dumps({"event_id": event_id, "run": run, "after": after}).encode(),
        }
        if s.tasks_invoker_service_account:
            request["oidc_token"] = {
                "service_account_email": s.tasks_invoker_service_account,
                "audience": s.tasks_target_base_url,
            }
        name = f"{self.tasks.queue_path}/tasks/cancel-{event_id}-{run}-{after or 'first'}"
        try:
            self.tasks.client().create_task(
                parent=self.tasks.queue_path, task={"name": name, "http_request": request}, retry=None, timeout=5
            )
        except gexc.AlreadyExists:
            return True  # created by an earlier attempt: the name makes this idempotent
        except Exception:
            log.warning(
                "could not schedule the cancellation of event %s after %s; the sweep resumes it", event_id, after
            )
            return False
        return True
