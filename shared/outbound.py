"""The HTTP client that calls integrators' webhook endpoints (only the sender function uses it).

It connects to the address the SSRF guard checked (shared/services/webhooks/guard.py), never to a
new resolution of the name, while TLS still verifies the certificate for the name in the URL. No
redirect is followed, nothing is retried here (the delivery schedule does that), and everything,
connecting included, is bounded by TIMEOUT seconds. At most READ_LIMIT bytes of an answer are read.
"""

from __future__ import annotations

import urllib3

from shared.services.webhooks.guard import Target

TIMEOUT = 10.0
READ_LIMIT = 4096


class NoAnswer(Exception):
    """Nothing usable came back: refused, timed out, TLS failed; the message says which."""


class WebhookPoster:
    def __init__(self, timeout: float = TIMEOUT) -> None:
        self.timeout = timeout

    def post(self, target: Target, headers: dict[str, str], body: bytes) -> int:
        """The endpoint's HTTP status, or NoAnswer."""
        host_header = target.host if target.port in (80, 443) else f"{target.host}:{target.port}"
        timeout = urllib3.Timeout(total=self.timeout)
        pool: urllib3.HTTPConnectionPool
        if target.scheme == "https":
            pool = urllib3.HTTPSConnectionPool(
                target.address,
                target.port,
                timeout=timeout,
                retries=False,
                maxsize=1,
                server_hostname=target.host,
                assert_hostname=target.host,
                cert_reqs="CERT_REQUIRED",
            )
        else:
            pool = urllib3.HTTPConnectionPool(target.address, target.port, timeout=timeout, retries=False, maxsize=1)
        try:
            response = pool.urlopen(
                "POST",
                target.path,
                body=body,
                headers={**headers, "Host": host_header},
                redirect=False,
                retries=False,
                preload_content=False,
                assert_same_host=False,
            )
            try:
                response.read(READ_LIMIT)
            finally:
                response.release_conn()
            return int(response.status)
        except urllib3.exceptions.HTTPError as exc:
            raise NoAnswer(type(exc).__name__) from None
        finally:
            pool.close()
