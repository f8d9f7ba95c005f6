"""Structured logs: one JSON object per line, the request id on each, and no secret ever written."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.core.logging import CloudLoggingFormatter, redact, request_id_var, trace_var

JWT = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
SECRETS = [
    "Bearer abc.def-ghi_jkl",
    JWT,
    "sk_test_51HxYzAbCdEfGh",
    "sk_live_51HxYzAbCdEfGh",
    "rk_live_51HxYzAbCdEfGh",
    "whsec_AbCdEf0123456789",
    "pi_3Nabc_secret_XyZ123",
    "4242424242424242",
]

Lines = Callable[[], list[dict[str, Any]]]


@pytest.fixture
def log() -> Iterator[tuple[logging.Logger, Lines]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(CloudLoggingFormatter())
    logger = logging.getLogger("unit.logging")
    logger.handlers, logger.propagate = [handler], False
    logger.setLevel(logging.DEBUG)

    def lines() -> list[dict[str, Any]]:
        return [json.loads(line) for line in stream.getvalue().splitlines()]

    yield logger, lines
    logger.handlers = []


def test_each_record_is_one_json_line_with_cloud_logging_fields(log: tuple[logging.Logger, Lines]) -> None:
    logger, lines = log
    logger.warning("hello %s", "world")
    logger.info("second")
    first, second = lines()
    assert first["severity"] == "WARNING"
    assert first["message"] == "hello world"
    assert first["logger"] == "unit.logging"
    assert second["severity"] == "INFO"
    written = datetime.fromisoformat(first["time"].replace("Z", "+00:00"))
    assert first["time"].endswith("Z")
    assert abs(datetime.now(UTC) - written) < timedelta(minutes=1)


def test_request_id_and_trace_come_from_the_context(log: tuple[logging.Logger, Lines]) -> None:
    logger, lines = log
    rid, trace = request_id_var.set("req-123"), trace_var.set("projects/demo-unit/traces/abc")
    try:
        logger.info("inside")
    finally:
        request_id_var.reset(rid)
        trace_var.reset(trace)
    logger.info("outside")
    inside, outside = lines()
    assert inside["request_id"] == "req-123"
    assert inside["logging.googleapis.com/labels"] == {"request_id": "req-123"}
    assert inside["logging.googleapis.com/trace"] == "projects/demo-unit/traces/abc"
    assert "request_id" not in outside
    assert "logging.googleapis.com/trace" not in outside


def test_extra_fields_are_kept(log: tuple[logging.Logger, Lines]) -> None:
    logger, lines = log
    logger.info("done", extra={"booking_id": "b1", "httpRequest": {"status": 201, "latency": "0.1s"}})
    (line,) = lines()
    assert line["booking_id"] == "b1"
    assert line["httpRequest"] == {"status": 201, "latency": "0.1s"}


@pytest.mark.parametrize("secret", SECRETS)
def test_secrets_are_redacted_from_the_message(log: tuple[logging.Logger, Lines], secret: str) -> None:
    logger, lines = log
    logger.info("calling with %s now", secret)
    (line,) = lines()
    assert secret not in json.dumps(line)
    assert "[redacted]" in line["message"]
    assert line["message"].startswith("calling with ")


@pytest.mark.parametrize("secret", SECRETS)
def test_secrets_are_redacted_from_extra_fields(log: tuple[logging.Logger, Lines], secret: str) -> None:
    logger, lines = log
    logger.info("request", extra={"headers": {"Authorization": secret}, "values": ["x", secret]})
    (line,) = lines()
    assert secret not in json.dumps(line)
    assert line["headers"]["Authorization"] == "[redacted]" or "[redacted]" in line["headers"]["Authorization"]


def test_secrets_are_redacted_from_stack_traces(log: tuple[logging.Logger, Lines]) -> None:
    logger, lines = log
    try:
        raise RuntimeError("stripe said no to sk_test_51HxYzAbCdEfGh")
    except RuntimeError:
        logger.exception("payment failed")
    (line,) = lines()
    assert "RuntimeError" in line["stack_trace"]
    assert "sk_test_51HxYzAbCdEfGh" not in json.dumps(line)


@pytest.mark.parametrize("card", ["4242 4242 4242 4242", "4242-4242-4242-4242"])
def test_card_numbers_written_in_groups_are_redacted(card: str) -> None:
    assert "4242" not in redact(f"card {card} declined")


def test_ordinary_text_and_numbers_are_left_alone() -> None:
    text = "booking b_1 for 3 tickets at 2500 cents, event 2030-05-01, order 123456789012"
    assert redact(text) == text


def test_long_numbers_in_extra_fields_do_not_break_the_line(log: tuple[logging.Logger, Lines]) -> None:
    logger, lines = log
    logger.info("webhook", extra={"created_ms": 1_767_225_600_000, "card": 4242424242424242})
    (line,) = lines()
    assert line["message"] == "webhook"
    assert "4242424242424242" not in json.dumps(line)
