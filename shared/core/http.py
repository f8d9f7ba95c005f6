"""HTTP plumbing shared by every function: routing, body limits, CORS and the one error handler.

An entry point builds a `Router`, registers handlers by method and path, and exposes
`router.handle` to functions-framework. Handlers receive an `ApiRequest` and return an
`ApiResponse`; every exception becomes application/problem+json here and nowhere else.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import flask
import pydantic

from shared.core import errors, faults
from shared.core.faults import InjectedCrash
from shared.core.logging import request_id_var, trace_var
from shared.core.settings import get_settings

log = logging.getLogger("http")
M = TypeVar("M", bound=pydantic.BaseModel)

ALLOWED_REQUEST_HEADERS = "Authorization, Content-Type, Idempotency-Key, If-Match"
EXPOSED_HEADERS = "ETag, Retry-After, X-Request-Id"
_RESERVED_ID = re.compile(r"^__.*__$")  # Firestore reserves these document ids
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
# Google API errors that mean "try again": matched by name so this module need not import the
# client libraries (cold starts).
_TRANSIENT = {"ServiceUnavailable", "DeadlineExceeded", "InternalServerError", "TooManyRequests", "RetryError"}


@dataclass
class ApiResponse:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class ApiRequest:
    raw: flask.Request
    params: dict[str, str]
    request_id: str
    _body: bytes | None = None

    @property
    def method(self) -> str:
        return self.raw.method

    @property
    def path(self) -> str:
        return self.raw.path

    def header(self, name: str) -> str | None:
        return self.raw.headers.get(name)

    def body(self, max_bytes: int | None = None) -> bytes:
        """The raw body, refused with 413 beyond MAX_BODY_BYTES or a route's own `max_bytes` (never
        read past the limit)."""
        if self._body is None:
            limit = max_bytes or get_settings().max_body_bytes
            declared = self.raw.content_length
            if declared is not None and declared > limit:
                raise errors.PayloadTooLarge(f"body over {limit} bytes")
            data = self.raw.stream.read(limit + 1)
            if len(data) > limit:
                raise errors.PayloadTooLarge(f"body over {limit} bytes")
            self._body = data
        return self._body

    def json_body(self, model: type[M], *, empty_ok: bool = False, max_bytes: int | None = None) -> M:
        """Strict JSON validation: wrong types are refused, not coerced ("5" is not 5)."""
        data = self.body(max_bytes)
        if not data.strip():
            if empty_ok:
                return model()
            raise errors.ValidationFailed("a JSON body is required", [{"field": "", "message": "required"}])
        return validate(model, data, json=True)

    def query(self, model: type[M]) -> M:
        args = self.raw.args
        values: dict[str, Any] = {}
        for key in args:
            items = args.getlist(key)
            if len(items) != 1:
                raise errors.ValidationFailed(
                    f"query parameter {key} given more than once", [{"field": key, "message": "repeated"}]
                )
            values[key] = items[0]
        return validate(model, values)


def validate(model: type[M], payload: Any, *, json: bool = False) -> M:
    try:
        if json:
            return model.model_validate_json(payload, strict=True)
        return model.model_validate(payload)
    except pydantic.ValidationError as exc:
        raise errors.ValidationFailed(
            "the request has invalid fields",
            [
                {
                    "field": ".".join(str(p) for p in e["loc"]),
                    "message": e["msg"].removeprefix("Value error, "),
                    "type": e["type"],
                }
                for e in exc.errors(include_url=False, include_input=False)
            ],
        ) from None


Handler = Callable[[ApiRequest], ApiResponse]


class Router:
    """Routes by method and path template (`/v1/events/{event_id}`) inside one function."""

    def __init__(self) -> None:
        self._routes: list[tuple[re.Pattern[str], dict[str, Handler]]] = []
        self._templates: dict[tuple[str, str], None] = {}  # (method, template) as registered, in order

    def route(self, method: str, template: str) -> Callable[[Handler], Handler]:
        pattern = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[A-Za-z0-9_-]{1,64})", template) + "/?$")

        def register(handler: Handler) -> Handler:
            self._templates[(method, template)] = None
            for existing, methods in self._routes:
                if existing.pattern == pattern.pattern:
                    methods[method] = handler
                    return handler
            self._routes.append((pattern, {method: handler}))
            return handler

        return register

    def routes(self) -> list[tuple[str, str]]:
        """Every (method, path template) registered, in order: what tests and tools enumerate."""
        return list(self._templates)

    def resolve(self, method: str, path: str) -> tuple[Handler, dict[str, str]]:
        for pattern, methods in self._routes:
            match = pattern.match(path)
            if match:
                if any(_RESERVED_ID.match(value) for value in match.groupdict().values()):
                    raise errors.NotFound(f"no route for {path}")
                handler = methods.get("GET" if method == "HEAD" else method)
                if handler is None:
                    raise errors.MethodNotAllowed(f"{method} is not allowed on {path}", allow=sorted(methods))
                return handler, match.groupdict()
        raise errors.NotFound(f"no route for {path}")

    def handle(self, request: flask.Request) -> flask.Response:
        """The functions-framework entry point: everything a request goes through."""
        started = time.perf_counter()
        supplied = request.headers.get("X-Request-Id", "")
        request_id = supplied if _REQUEST_ID.match(supplied) else uuid.uuid4().hex
        token_rid = request_id_var.set(request_id)
        token_trace = trace_var.set(_trace(request))
        try:
            if request.method == "OPTIONS":
                response = ApiResponse(204)
            elif request.path == "/healthz" and request.method == "GET":  # every function answers it
                response = ApiResponse(200, {"status": "ok"})
            else:
                try:
                    handler, params = self.resolve(request.method, request.path)
                    with faults.current().requested(request.headers.get("X-Fault-Inject")):
                        response = handler(ApiRequest(request, params, request_id))
                except Exception as exc:  # the one global error handler
                    response = problem_response(exc, request.path)
            result = render(response, request)
            result.headers["X-Request-Id"] = request_id
            log.info(
                "%s %s %s",
                request.method,
                request.path,
                result.status_code,
                extra={
                    "httpRequest": {
                        "requestMethod": request.method,
                        "requestUrl": request.path,
                        "status": result.status_code,
                        "latency": f"{time.perf_counter() - started:.4f}s",
                    }
                },
            )
            return result
        finally:
            request_id_var.reset(token_rid)
            trace_var.reset(token_trace)


def problem_response(exc: Exception, instance: str) -> ApiResponse:
    if isinstance(exc, InjectedCrash):  # fault injection (local and test): as if the process died
        return ApiResponse(502, {"status": 502, "detail": str(exc)}, {"Content-Type": "application/problem+json"})
    if type(exc).__name__ in _TRANSIENT and type(exc).__module__.startswith("google.api_core"):
        log.warning("dependency unavailable: %s", type(exc).__name__)
        exc = errors.Unavailable()
    if not isinstance(exc, errors.AppError):
        log.exception("unhandled error")
        exc = errors.AppError()
    elif exc.status >= 500:
        log.warning("%s: %s", exc.code, exc.detail)
    body = {
        "type": f"urn:problem:{exc.code}",
        "title": exc.title,
        "status": exc.status,
        "detail": exc.detail,
        "code": exc.code,
        "instance": instance,
        **exc.extra,
    }
    return ApiResponse(exc.status, body, {"Content-Type": "application/problem+json", **exc.headers})


def render(response: ApiResponse, request: flask.Request) -> flask.Response:
    headers = dict(response.headers)
    if response.body is None:
        result = flask.Response(status=response.status, headers=headers)
    elif isinstance(response.body, bytes | str):  # CSV, images: sent as they are, with their own type
        result = flask.Response(response.body, status=response.status, headers=headers)
    else:
        payload = json.dumps(response.body, separators=(",", ":"), default=str)
        headers.setdefault("Content-Type", "application/json")
        result = flask.Response(payload, status=response.status, headers=headers)
    _apply_cors(result, request)
    return result


def _apply_cors(result: flask.Response, request: flask.Request) -> None:
    origin = request.headers.get("Origin")
    if not origin:
        return
    allowed = get_settings().cors_origins
    if "*" in allowed:
        result.headers["Access-Control-Allow-Origin"] = "*"
    elif origin in allowed:
        result.headers["Access-Control-Allow-Origin"] = origin
        result.headers.add("Vary", "Origin")
    else:
        return
    result.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
    if request.method == "OPTIONS":
        result.headers["Access-Control-Allow-Methods"] = "GET, POST, PATCH, DELETE, OPTIONS"
        result.headers["Access-Control-Allow-Headers"] = ALLOWED_REQUEST_HEADERS
        result.headers["Access-Control-Max-Age"] = "600"


def _trace(request: flask.Request) -> str | None:
    header = request.headers.get("X-Cloud-Trace-Context", "")
    trace_id = header.split("/", 1)[0]
    if not re.fullmatch(r"[0-9a-f]{32}", trace_id):
        return None
    return f"projects/{get_settings().gcp_project}/traces/{trace_id}"


def json_response(status: int, model: pydantic.BaseModel | dict[str, Any], **headers: str) -> ApiResponse:
    body = model.model_dump(mode="json") if isinstance(model, pydantic.BaseModel) else model
    return ApiResponse(status, body, dict(headers))
