"""Where a webhook may be sent: the SSRF guard, at registration and again at every delivery.

`https` to a public address only: a URL with credentials, an address that is loopback, private,
link-local (the metadata server, 169.254.169.254, is one), multicast, reserved or otherwise not
global is refused, and so is a name that resolves to any such address. The local and test
profiles alone also accept `http://127.0.0.1:<port>` (the receivers of the tests and the bench),
and resolve no name at all: nothing there leaves the machine. At delivery the sender connects to
the address checked here, never to a second resolution of the name (no DNS rebinding), and follows
no redirect.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from shared.core.errors import ValidationFailed

MAX_URL = 2048
LOCAL_HOST = "127.0.0.1"
Resolver = Callable[[str, int], list[str]]  # (host, port) -> IP addresses


def system_resolver(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return []
    return sorted({str(info[4][0]) for info in infos})


def offline_resolver(host: str, port: int) -> list[str]:
    """Local and test: no name is resolved (nothing may leave the machine)."""
    return []


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # as written in the URL (the Host header and the certificate's name)
    port: int
    path: str  # path and query
    address: str  # the checked address the sender connects to


class Refused(ValueError):
    """The URL may not be called; the message says why (shown to the admin)."""


class UrlGuard:
    def __init__(self, allow_local_http: bool, resolve: Resolver) -> None:
        self.allow_local_http = allow_local_http
        self.resolve = resolve

    def check(self, url: str) -> Target:
        """The target to connect to, or Refused."""
        if len(url) > MAX_URL:
            raise Refused(f"at most {MAX_URL} characters")
        try:
            parts = urlsplit(url)
            port = parts.port
            host = parts.hostname
        except ValueError:
            raise Refused("not a URL") from None
        if parts.username is not None or parts.password is not None:
            raise Refused("credentials in the URL are not accepted")
        if not host:
            raise Refused("the URL has no host")
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if parts.scheme == "http" and self.allow_local_http and host == LOCAL_HOST:
            return Target("http", host, port or 80, path, LOCAL_HOST)
        if parts.scheme != "https":
            raise Refused("must be https")
        port = port or 443
        literal = _address(host)
        addresses = [str(literal)] if literal is not None else self.resolve(host, port)
        if not addresses:
            raise Refused(f"{host} does not resolve to an address")
        for found in addresses:
            address = _address(found)
            if address is None or not _public(address):
                raise Refused(f"{host} is not a public address")
        return Target("https", host, port, path, addresses[0])

    def field_error(self, url: str) -> Target:
        """check(), with a refusal as the API's validation error on `url`."""
        try:
            return self.check(url)
        except Refused as exc:
            message = f"url: {exc}"
            raise ValidationFailed(message, [{"field": "url", "message": str(exc)}]) from None


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def _public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped or address.sixtofour
        if mapped is not None:
            return _public(mapped)
    return address.is_global and not address.is_multicast
