"""Asking for the waitlist's serve task: once per event and window from one process.

Cloud Tasks would refuse a second task of the same name, but the local emulator runs every copy,
one after another: a burst of 500 releases made 500 serve runs in a row there. The process now
asks once per window (the decision below, on a fixed clock; the task itself is covered by the
waitlist e2e tests and the bench).
"""

from __future__ import annotations

from shared.core.settings import load_settings
from shared.tasks import SERVE_WINDOW, CloudTasksExpiryScheduler

START = 1_800_000_000.0  # the start of a window


class Recording(CloudTasksExpiryScheduler):
    def __init__(self) -> None:
        super().__init__(load_settings({"PROFILE": "test", "GOOGLE_CLOUD_PROJECT": "demo-x"}))
        self.asked: list[tuple[str, int]] = []
        self.now = START
        self.clock = lambda: self.now

    def _serve(self, event_id: str, window: int) -> None:
        self.asked.append((event_id, window))

    def settled(self) -> list[tuple[str, int]]:
        self._background.shutdown(wait=True)
        return sorted(self.asked)


def test_a_burst_of_releases_asks_once_per_event_for_the_window_after_it() -> None:
    scheduler = Recording()
    for i in range(50):
        scheduler.now = START + i * (SERVE_WINDOW * 0.9) / 50
        scheduler.schedule_serve("ev-a")
        scheduler.schedule_serve("ev-b")
    window = round(START / SERVE_WINDOW) + 1
    assert scheduler.settled() == [("ev-a", window), ("ev-b", window)]


def test_a_release_in_the_next_window_asks_again() -> None:
    scheduler = Recording()
    scheduler.schedule_serve("ev-a")
    scheduler.now = START + SERVE_WINDOW
    scheduler.schedule_serve("ev-a")
    scheduler.schedule_serve("ev-a")
    window = round(START / SERVE_WINDOW) + 1
    assert scheduler.settled() == [("ev-a", window), ("ev-a", window + 1)]
