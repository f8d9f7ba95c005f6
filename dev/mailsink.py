"""Local SMTP sink: accepts every message and writes it to a folder as an .eml file (aiosmtpd)."""

from __future__ import annotations

import argparse
import asyncio
import itertools
import time
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


class SaveToFolder:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.counter = itertools.count(1)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook name
        name = f"{time.strftime('%Y%m%dT%H%M%S')}-{next(self.counter):05d}.eml"
        (self.folder / name).write_bytes(envelope.original_content or envelope.content)
        print(f"mail to {', '.join(envelope.rcpt_tos)} saved as {self.folder / name}", flush=True)
        return "250 Message accepted"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--folder", type=Path, required=True)
    args = parser.parse_args()
    args.folder.mkdir(parents=True, exist_ok=True)
    controller = Controller(SaveToFolder(args.folder), hostname="127.0.0.1", port=args.port)
    controller.start()
    print(f"SMTP sink on 127.0.0.1:{args.port}, messages in {args.folder}", flush=True)
    try:
        asyncio.run(asyncio.Event().wait())
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
