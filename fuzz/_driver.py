"""Runs a one-input function under atheris (coverage-guided, libFuzzer flags such as -runs=20000 or
-max_total_time=60) or, where atheris is not installed, under Hypothesis for the same number of runs."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable

# Parsing reads settings (the body limit); a fuzz run is a local test profile like the unit tests.
os.environ.setdefault("PROFILE", "test")
os.environ.setdefault("GOOGLE_CLOUD_PROJECT", "demo-fuzz")
os.environ.setdefault("AUTH_PROVIDER", "local")


def main(one_input: Callable[[bytes], None], instrumented: Callable[[], None], *, everything: bool = False) -> None:
    """`instrumented` imports the code under test, which atheris instruments as it is imported."""
    try:
        import atheris
    except ImportError:
        _hypothesis(one_input, instrumented, sys.argv[1:])
        return
    if everything:  # all that is loaded by then (fast enough for the small webhook target)
        instrumented()
        atheris.instrument_all()
    else:
        with atheris.instrument_imports(include=["shared", "stripe", "werkzeug", "flask"]):
            instrumented()
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


def _hypothesis(one_input: Callable[[bytes], None], instrumented: Callable[[], None], argv: list[str]) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    instrumented()
    runs = 20000
    for arg in argv:
        if arg.startswith("-runs="):
            runs = int(arg.split("=", 1)[1])
    started = time.perf_counter()

    @settings(max_examples=runs, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(st.binary(max_size=4096))
    def run(data: bytes) -> None:
        one_input(data)

    run()
    elapsed = time.perf_counter() - started
    print(f"hypothesis fallback: {runs} runs in {elapsed:.1f}s ({runs / max(elapsed, 1e-9):.0f}/s), no crash")
