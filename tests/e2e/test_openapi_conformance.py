"""The OpenAPI document against the running API, with schemathesis: generated requests for every
operation (valid and invalid), and every answer must be documented, conform to its schema and
never be a server error. Seeded, so a run is repeatable.

Two kinds of run: every operation on its own (examples, coverage, fuzzing), and the stateful phase,
which follows the document's links (create event -> hold -> pay -> read the payment), once with an
admin's token and once with a buyer's. Bounded here; longer with the environment:
SCHEMATHESIS_MAX_EXAMPLES (per operation, default 25), SCHEMATHESIS_STATEFUL_MAX_EXAMPLES (scenarios,
default 20), SCHEMATHESIS_MAX_TIME (seconds: repeat fuzzing and stateful runs until it is spent),
SCHEMATHESIS_SEED (default fixed)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dev.stack import Stack
from tests.conftest import Api
from tests.e2e.bookings_helpers import shared_stack

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
ROOT = Path(__file__).resolve().parents[2]
# Positive stateful steps only (a negative step ends a chain), up to 10 steps, the document's own links.
STATEFUL_CONFIG = """
[phases.stateful]
max-steps = 10
[phases.stateful.generation]
mode = "positive"
[phases.stateful.inference]
algorithms = []
"""


def schemathesis(stack: Stack, token: str, *options: str, config: Path | None = None) -> str:
    budget = ["--max-time", os.environ["SCHEMATHESIS_MAX_TIME"]] if os.environ.get("SCHEMATHESIS_MAX_TIME") else []
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        *(["--config-file", str(config)] if config else []),
        "run",
        f"{stack.url}/v1/openapi.json",
        "--header",
        f"Authorization: Bearer {token}",
        "--checks",
        CHECKS,
        "--seed",
        os.environ.get("SCHEMATHESIS_SEED", "20261124"),
        "--request-timeout",
        "20",
        "--exclude-path",
        "/v1/webhooks/stripe",  # signed by Stripe: covered by test_webhooks.py and fuzz/fuzz_webhook.py
        "--no-color",
        *budget,
        *options,
    ]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "fuzz.schemathesis_hooks", "PYTHONPATH": str(ROOT)}
    timeout = 600 + int(os.environ.get("SCHEMATHESIS_MAX_TIME", "0"))
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False, env=env, cwd=ROOT)
    summary = result.stdout[-4000:]
    assert result.returncode == 0, summary
    assert "Tested: " in summary, summary
    return summary


def test_every_operation_answers_as_documented_and_never_with_a_server_error(stack: Stack, api: Api) -> None:
    admin, _ = api.register_admin()
    examples = os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "25")
    schemathesis(stack, admin, "--phases", "examples,coverage,fuzzing", "--max-examples", examples)


# A buyer's chains all start at the same published event (search -> first result -> hold): with the
# default limits of one unpaid booking per event and five holds a minute, nearly every chain after
# the first stops at 409 booking_limit_reached. Generous limits let them go on to pay and read.
GENEROUS_LIMITS = {"MAX_PENDING_BOOKINGS_PER_BUYER": "100", "MAX_HOLDS_PER_BUYER_PER_MINUTE": "1000"}


@pytest.mark.parametrize("role", ["admin", "buyer"])
def test_chains_of_linked_operations_answer_as_documented(
    pytestconfig: pytest.Config, stack: Stack, tmp_path: Path, role: str
) -> None:
    if role == "buyer":
        stack = shared_stack(pytestconfig, "generous-limits", GENEROUS_LIMITS)
    api = Api(stack.url)
    admin, _ = api.register_admin()
    # a published event for the buyer's search -> hold link, taking any quantity the schema allows
    api.create_event(admin, capacity=10_000, max_tickets_per_booking=100)
    token = admin if role == "admin" else api.register_buyer()[0]
    config = tmp_path / "schemathesis.toml"
    config.write_text(STATEFUL_CONFIG)
    scenarios = os.environ.get("SCHEMATHESIS_STATEFUL_MAX_EXAMPLES", "20")
    summary = schemathesis(stack, token, "--phases", "stateful", "--max-examples", scenarios, config=config)
    assert "API Links:" in summary, summary
    if os.environ.get("SCHEMATHESIS_VERBOSE"):
        print(summary)
