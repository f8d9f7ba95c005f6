"""Start-up shared by every entry module: settings checked and logging configured at import."""

from __future__ import annotations

import sys

import flask
import functions_framework

from shared.core.errors import NotFound
from shared.core.http import problem_response, render
from shared.core.logging import configure_logging
from shared.core.settings import ConfigurationError, Settings, get_settings


def start() -> Settings:
    """Validate settings once per process; refuse to start, with a clear message, when unsafe."""
    try:
        settings = get_settings()
    except ConfigurationError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(settings.log_level)
    functions_framework.errorhandler(404)(_not_found)  # paths the framework itself does not route
    return settings


def _not_found(error: Exception) -> flask.Response:
    return render(problem_response(NotFound("no route for this path"), flask.request.path), flask.request)
