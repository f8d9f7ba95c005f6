"""Checks what the local stack needs from the machine and says what is missing, plainly."""

from __future__ import annotations

import shutil
import sys

from dev.stack import StackError, sdk_root


def main() -> int:
    problems = []
    if shutil.which("java") is None:
        problems.append("java (17+) is needed by the Firestore and Pub/Sub emulators: apt-get install default-jre")
    try:
        sdk = sdk_root()
        for part in ("cloud-firestore-emulator", "pubsub-emulator"):
            if not (sdk / "platform" / part).is_dir():
                problems.append(f"the gcloud component for {part} is missing")
    except StackError as exc:
        problems.append(str(exc))
    if problems:
        print("cannot run the local stack:\n  - " + "\n  - ".join(problems), file=sys.stderr)
        return 1
    print("==> machine ready: java, gcloud emulators, venvs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
