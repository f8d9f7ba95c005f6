"""The local Cloud Tasks emulator (gcloud-tasks-emulator), with production's behaviour on the queues
named by `--parallel`: due tasks are dispatched concurrently (Cloud Tasks runs up to
`max_concurrent_dispatches` at once; the stock emulator runs one task at a time per queue, so one
slow webhook receiver would hold up every other), and a task name already used is refused with
ALREADY_EXISTS (the stock emulator runs both copies). Other queues behave as the stock emulator.

Runs in the emulator's own venv (.venv-tasks): it imports nothing from this project.
Usage: python dev/tasks_emulator.py start --port P -d QUEUE ... [--parallel QUEUE ...] [-r N] [-q]
"""

from __future__ import annotations

import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from urllib import error

from gcloud_tasks_emulator import __main__ as cli
from gcloud_tasks_emulator import server
from google.api_core.exceptions import AlreadyExists
from google.cloud.tasks_v2 import Queue

WORKERS = 32  # concurrent dispatches per parallel queue
RETRY_DELAY = timedelta(seconds=0.5)  # a failed task is tried again after this
LOOP_SLEEP = 0.02

PARALLEL: set[str] = set()
_lock = threading.Lock()
_seen: dict[str, set[str]] = {}
_create_task = server.QueueState.create_task
_process_queue = server.Processor._process_queue


def create_task(self: server.QueueState, queue: str, task: server.Task) -> server.Task:
    if queue in PARALLEL and task.name:
        with _lock:
            seen = _seen.setdefault(queue, set())
            if task.name in seen:
                raise AlreadyExists(f"task {task.name} already exists")
            seen.add(task.name)
    return _create_task(self, queue, task)


def process_queue(self: server.Processor, queue: str) -> None:
    if queue not in PARALLEL:
        _process_queue(self, queue)
        return
    state = self._state
    pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="dispatch")
    while self._is_running.is_set() and queue in state._queue_tasks:
        if state.queue(queue).state == Queue.State.RUNNING:
            now = datetime.now(UTC)
            with _lock:
                tasks = state._queue_tasks[queue]
                due = [t for t in tasks if not (t.schedule_time and t.schedule_time > now)]
                for task in due:
                    tasks.remove(task)
            for task in due:
                pool.submit(_dispatch, state, queue, task)
        time.sleep(LOOP_SLEEP)
    pool.shutdown(wait=False)


def _dispatch(state: server.QueueState, queue: str, task: server.Task) -> None:
    task.dispatch_count += 1
    try:
        status = server._make_task_request(queue, task, state._target_host, state._target_port).status
    except error.HTTPError as exc:
        status = exc.code
    except Exception:
        status = 500
    if 400 <= status < 600 and (state._max_retries < 0 or task.dispatch_count <= state._max_retries):
        task.schedule_time = datetime.now(UTC) + RETRY_DELAY
        with _lock:
            state._queue_tasks[queue].append(task)


def main() -> None:
    args = sys.argv[1:]
    while "--parallel" in args:
        i = args.index("--parallel")
        PARALLEL.add(args[i + 1])
        del args[i : i + 2]
    sys.argv = [sys.argv[0], *args]
    server.QueueState.create_task = create_task  # type: ignore[method-assign]
    server.Processor._process_queue = process_queue  # type: ignore[method-assign]
    cli.main()


if __name__ == "__main__":
    main()
