"""Every HTTP function behind one port, routed by path as the production load balancer does.

Each function is loaded with functions-framework's own `create_app`, exactly as it is deployed;
this module only picks the function for a path (functions/routes.json) and passes the request on
unchanged.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import functions_framework

FUNCTIONS_DIR = Path(__file__).resolve().parent.parent / "functions"
WsgiApp = Callable[..., Iterable[bytes]]


def load_routes() -> list[dict[str, Any]]:
    return json.loads((FUNCTIONS_DIR / "routes.json").read_text())["functions"]


def path_regex(template: str) -> re.Pattern[str]:
    pattern = re.escape(template).replace(r"\*\*", ".*")
    pattern = re.sub(r"\\\{\w+\\\}", "[^/]+", pattern)
    return re.compile(f"^{pattern}/?$")


def _not_found(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    body = json.dumps(
        {
            "type": "urn:problem:not_found",
            "title": "Not found",
            "status": 404,
            "detail": "no function serves this path",
            "code": "not_found",
        }
    ).encode()
    headers = [
        ("Content-Type", "application/problem+json"),
        ("Content-Length", str(len(body))),
        ("X-Request-Id", uuid.uuid4().hex),
    ]
    start_response("404 Not Found", headers)
    return [body]


class Gateway:
    def __init__(self, include_local_only: bool, only: str | None = None) -> None:
        self.table: list[tuple[re.Pattern[str], WsgiApp]] = []
        for fn in load_routes():
            if (fn.get("local_only") and not include_local_only) or (only and fn["name"] != only):
                continue
            app = functions_framework.create_app(fn["name"], str(FUNCTIONS_DIR / fn["source"]), "http")
            self.table.extend((path_regex(p), app) for p in fn["paths"])
            if only:  # one function alone answers every path, as a deployed function does
                self.table.append((re.compile(".*"), app))

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        for pattern, app in self.table:
            if pattern.match(path):
                return app(environ, start_response)
        return _not_found(environ, start_response)


def create(only: str | None = None) -> Gateway:
    """Application factory for gunicorn: `gunicorn 'dev.gateway:create()'`; `only` serves one function."""
    return Gateway(include_local_only=os.environ.get("PROFILE", "local") in ("local", "test"), only=only)
