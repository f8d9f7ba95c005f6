"""Retrying a lost compare-and-set: a short, jittered pause that grows with each try."""

from __future__ import annotations

import random
import time


def backoff(attempt: int, step: float = 0.005) -> None:
    time.sleep(random.uniform(0, step * (attempt + 1)))
