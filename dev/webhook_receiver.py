"""A webhook receiver on 127.0.0.1 for the tests and the benchmark: it records every request and answers
with the statuses it is told to (all 200 by default), optionally after a delay."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float
    status: int = 200  # what the receiver answered

    @property
    def payload(self) -> dict[str, Any]:
        return dict(json.loads(self.body))


@dataclass
class Receiver:
    port: int = 0
    answers: list[int] = field(default_factory=list)  # statuses to answer in turn, then `status`
    status: int = 200
    delay: float = 0.0
    location: str | None = None  # sent with a 3xx answer
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def next_status(self) -> int:
        with self.lock:
            return self.answers.pop(0) if self.answers else self.status

    def of_type(self, webhook_type: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.payload.get("type") == webhook_type]

    def with_id(self, webhook_id: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.headers.get("webhook-id") == webhook_id]


@contextmanager
def running(given: Receiver | None = None) -> Iterator[Receiver]:
    receiver = given or Receiver()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status = receiver.next_status()
            entry = Received({k.lower(): v for k, v in self.headers.items()}, body, time.time(), status)
            if receiver.delay:
                time.sleep(receiver.delay)
            with receiver.lock:
                receiver.received.append(entry)
            self.send_response(status)
            if receiver.location and 300 <= status < 400:
                self.send_header("Location", receiver.location)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", receiver.port), Handler)
    server.daemon_threads = True
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
