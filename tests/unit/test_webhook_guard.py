"""The SSRF guard and the signatures, as pure logic: names are resolved by a stubbed resolver, so
no test here resolves or connects to anything."""

from __future__ import annotations

import base64
import os
import time

import pytest
from standardwebhooks import Webhook

from shared.services.webhooks.guard import Refused, UrlGuard
from shared.services.webhooks.signing import SecretBox, new_secret, sign

PUBLIC = "93.184.216.34"
DNS = {
    "hooks.example.com": [PUBLIC],
    "rebind.example.com": [PUBLIC, "10.0.0.8"],  # one public and one private answer
    "metadata.google.internal": ["169.254.169.254"],
    "internal.example.com": ["172.16.4.2"],
    "v6.example.com": ["2606:2800:220:1:248:1893:25c8:1946"],
    "v6-local.example.com": ["fd00::1"],
    "cgnat.example.com": ["100.64.1.1"],
}
asked: list[tuple[str, int]] = []


def resolver(host: str, port: int) -> list[str]:
    asked.append((host, port))
    return DNS.get(host, [])


def production() -> UrlGuard:
    return UrlGuard(allow_local_http=False, resolve=resolver)


def test_a_public_name_is_accepted_and_the_checked_address_is_the_one_connected_to() -> None:
    target = production().check("https://hooks.example.com:8443/in?x=1")
    assert (target.scheme, target.host, target.port, target.path, target.address) == (
        "https",
        "hooks.example.com",
        8443,
        "/in?x=1",
        PUBLIC,
    )
    assert ("hooks.example.com", 8443) in asked
    assert production().check("https://v6.example.com/").address == DNS["v6.example.com"][0]


@pytest.mark.parametrize(
    "url",
    [
        "https://rebind.example.com/x",
        "https://metadata.google.internal/computeMetadata/v1/",
        "https://internal.example.com/x",
        "https://v6-local.example.com/x",
        "https://cgnat.example.com/x",
        "https://nowhere.example.com/x",
        "https://169.254.169.254/",
        "https://[fe80::1]/",
        "https://224.0.0.1/",
        "https://0.0.0.0/",
        "http://127.0.0.1:8080/x",  # production: not even the local exception
        "http://hooks.example.com/x",
        "https://user@hooks.example.com/x",
        "https:///x",
        "https://hooks.example.com:99999/x",
    ],
)
def test_a_private_unresolvable_or_plain_http_target_is_refused(url: str) -> None:
    with pytest.raises(Refused):
        production().check(url)


def test_local_and_test_accept_only_http_to_127_0_0_1_and_resolve_nothing() -> None:
    local = UrlGuard(allow_local_http=True, resolve=lambda host, port: [])
    assert local.check("http://127.0.0.1:9000/hooks").address == "127.0.0.1"
    for url in ("http://localhost:9000/x", "http://127.0.0.2/x", "https://hooks.example.com/x"):
        with pytest.raises(Refused):
            local.check(url)


def test_a_signature_verifies_with_the_standard_webhooks_library_and_only_for_its_bytes() -> None:
    secret = new_secret()
    body = '{"id":"msg_1","type":"event.created"}'

    now = int(time.time())
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(now),
        "webhook-signature": sign(secret, "msg_1", now, body),
    }
    assert Webhook(secret).verify(body, headers) == {"id": "msg_1", "type": "event.created"}
    with pytest.raises(Exception, match=r"(?i)signature"):
        Webhook(secret).verify(body.replace("created", "updated"), headers)
    with pytest.raises(Exception, match=r"(?i)signature"):
        Webhook(new_secret()).verify(body, headers)


def test_a_sealed_secret_opens_only_with_its_key_and_for_its_endpoint() -> None:
    box = SecretBox(base64.b64encode(os.urandom(32)).decode())
    sealed = box.seal("whsec_abc", "ep-1")
    assert "whsec_abc" not in sealed
    assert box.open(sealed, "ep-1") == "whsec_abc"
    with pytest.raises(Exception):  # noqa: B017, PT011 - cryptography's InvalidTag
        box.open(sealed, "ep-2")
    with pytest.raises(Exception):  # noqa: B017, PT011
        SecretBox(base64.b64encode(os.urandom(32)).decode()).open(sealed, "ep-1")
