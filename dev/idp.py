"""The local identity provider's key server: publishes the JWKS of the stack's signing key.

The functions fetch signing keys over HTTP exactly as they fetch Firebase's or Keycloak's. Serving
them from this separate process (rather than from the gateway the functions run in) means a burst
of first requests can never wait on the very threads it occupies. Tokens are minted by the gateway's
`POST /dev/token`, with the same key.
"""

from __future__ import annotations

import argparse
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from shared.core.devissuer import DevIssuer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--key-file", type=Path, required=True)
    args = parser.parse_args()
    body = json.dumps(DevIssuer(args.key_file.read_bytes(), "local", "local").jwks()).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/dev/jwks.json":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
