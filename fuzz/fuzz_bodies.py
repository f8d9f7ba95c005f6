"""Fuzz target: request bodies and query strings as the functions parse them.

Arbitrary bytes go to ApiRequest.json_body for every request model a function reads (strict
pydantic validation behind the body limit), and to ApiRequest.query for the query models. Only the
project's AppError subclasses (ValidationFailed, PayloadTooLarge, ...: answered as problem+json
4xx) may escape; anything else would be a 500.

    .venv/bin/python -m fuzz.fuzz_bodies -runs=20000        # or -max_total_time=60
"""

from __future__ import annotations

import contextlib
from typing import Any

from fuzz._driver import main

_models: list[tuple[Any, bool]] = []
_queries: list[Any] = []


def _load() -> None:
    import flask  # noqa: F401  (loaded before atheris instruments)
    from werkzeug.test import EnvironBuilder  # noqa: F401

    from shared import schemas as s
    from shared.core import errors, http  # noqa: F401

    _models[:] = [
        (s.UserIn, False),
        (s.UserPatch, False),
        (s.EventIn, False),
        (s.EventPatch, False),
        (s.BookingIn, False),
        (s.PaymentIn, True),  # the payment body is optional
        (s.DevTokenIn, False),
    ]
    _queries[:] = [s.EventSearch, s.ListQuery]


def _request(body: bytes, query: bytes) -> Any:
    import flask
    from werkzeug.test import EnvironBuilder

    from shared.core.http import ApiRequest

    environ = EnvironBuilder(
        method="POST",
        path="/v1/fuzz",
        data=body,
        content_type="application/json",
    ).get_environ()
    environ["QUERY_STRING"] = query.decode("latin-1")  # WSGI: the raw bytes as latin-1
    return ApiRequest(flask.Request(environ), {}, "fuzz")


def one_input(data: bytes) -> None:
    from shared.core import errors

    if not _models:
        _load()
    pick = data[0] if data else 0
    rest = data[1:]
    model, empty_ok = _models[pick % len(_models)]
    query_model = _queries[(pick // len(_models)) % len(_queries)]
    body, _, query = rest.partition(b"\n#?")
    with contextlib.suppress(errors.AppError):
        _request(body, b"").json_body(model, empty_ok=empty_ok)
    with contextlib.suppress(errors.AppError):
        _request(b"", query).query(query_model)


if __name__ == "__main__":
    main(one_input, _load)
