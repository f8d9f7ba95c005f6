"""Local stand-in for Cloud Scheduler: calls the sweep and the reconciler every SWEEP_INTERVAL_SECONDS
(default 60)."""

from __future__ import annotations

import os
import sys
import time
import urllib.request


def main() -> int:
    base = sys.argv[1]
    interval = float(os.environ.get("SWEEP_INTERVAL_SECONDS", "60"))
    while True:
        time.sleep(interval)
        for job in ("sweep", "reconcile"):
            try:
                request = urllib.request.Request(f"{base}/tasks/{job}", data=b"{}", method="POST")
                request.add_header("Content-Type", "application/json")
                with urllib.request.urlopen(request, timeout=60) as response:
                    print(f"{job}: {response.status} {response.read().decode()}", flush=True)
            except OSError as exc:
                print(f"{job} failed: {exc}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
