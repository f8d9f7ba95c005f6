"""TokenVerifier against a JWKS served over HTTP on 127.0.0.1 (the same code path as Firebase/OIDC)."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from shared.core.auth import Identity, TokenVerifier, bearer_token
from shared.core.devissuer import DevIssuer, generate_private_key_pem
from shared.core.errors import Unauthenticated, Unavailable

ISSUER = "https://issuer.test"
AUDIENCE = "demo-unit"


class JwksServer:
    """Serves `body` (JSON unless raw bytes) with `status` at `url`; counts the fetches."""

    def __init__(self) -> None:
        self.body: Any = {"keys": []}
        self.status = 200
        self.fetches = 0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.fetches += 1
                payload = server.body if isinstance(server.body, bytes) else json.dumps(server.body).encode()
                self.send_response(server.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/jwks.json"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def __enter__(self) -> JwksServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


class Key:
    """A signing key and the issuer built on it (DevIssuer computes the kid and the public JWK)."""

    def __init__(self, kid: str | None = None) -> None:
        self.pem = generate_private_key_pem()
        self.issuer = DevIssuer(self.pem, ISSUER, AUDIENCE)
        self.kid = kid or self.issuer.kid
        self.jwk = {**self.issuer.jwks()["keys"][0], "kid": self.kid}

    def sign(self, **overrides: Any) -> str:
        now = int(time.time())
        claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "iat": now, "nbf": now, "exp": now + 600}
        claims.update(overrides)
        claims = {k: v for k, v in claims.items() if v is not None}
        private = serialization.load_pem_private_key(self.pem, password=None)
        return jwt.encode(claims, private, algorithm="RS256", headers={"kid": self.kid})  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def key() -> Key:
    return Key()


@pytest.fixture(scope="module")
def other_key() -> Key:
    return Key()


@pytest.fixture
def jwks(key: Key) -> Iterator[JwksServer]:
    with JwksServer() as server:
        server.body = {"keys": [key.jwk]}
        yield server


@pytest.fixture
def verifier(jwks: JwksServer) -> TokenVerifier:
    return TokenVerifier(ISSUER, AUDIENCE, jwks.url)


def now() -> int:
    return int(time.time())


def test_valid_token_gives_the_identity(verifier: TokenVerifier, key: Key) -> None:
    identity = verifier.verify(key.sign(sub="alice", email="a@example.com", name="Alice"))
    assert identity == Identity(issuer=ISSUER, subject="alice", email="a@example.com", name="Alice")


def test_dev_issuer_tokens_verify_like_any_other(verifier: TokenVerifier, key: Key) -> None:
    assert verifier.verify(key.issuer.mint("bob", email="b@example.com")).subject == "bob"


def test_keys_are_fetched_once_for_many_tokens(verifier: TokenVerifier, jwks: JwksServer, key: Key) -> None:
    for sub in ("a", "b", "c"):
        verifier.verify(key.sign(sub=sub))
    assert jwks.fetches == 1


def test_token_expired_beyond_the_leeway_is_refused(verifier: TokenVerifier, key: Key) -> None:
    with pytest.raises(Unauthenticated, match="expired"):
        verifier.verify(key.sign(iat=now() - 900, nbf=now() - 900, exp=now() - 120))


def test_token_expired_within_the_leeway_is_accepted(jwks: JwksServer, key: Key) -> None:
    verifier = TokenVerifier(ISSUER, AUDIENCE, jwks.url, leeway_seconds=60)
    assert verifier.verify(key.sign(iat=now() - 900, nbf=now() - 900, exp=now() - 20)).subject == "alice"


def test_leeway_is_capped_at_a_minute(jwks: JwksServer, key: Key) -> None:
    verifier = TokenVerifier(ISSUER, AUDIENCE, jwks.url, leeway_seconds=3600)
    assert verifier.leeway == 60
    with pytest.raises(Unauthenticated):
        verifier.verify(key.sign(iat=now() - 900, nbf=now() - 900, exp=now() - 120))


def test_token_not_yet_valid_is_refused(verifier: TokenVerifier, key: Key) -> None:
    with pytest.raises(Unauthenticated):
        verifier.verify(key.sign(nbf=now() + 300, exp=now() + 900))


def test_token_issued_in_the_future_is_refused(verifier: TokenVerifier, key: Key) -> None:
    with pytest.raises(Unauthenticated):
        verifier.verify(key.sign(iat=now() + 300, nbf=None, exp=now() + 900))


@pytest.mark.parametrize("aud", ["another-project", ["another-project"]])
def test_token_for_another_audience_is_refused(verifier: TokenVerifier, key: Key, aud: Any) -> None:
    with pytest.raises(Unauthenticated, match="audience"):
        verifier.verify(key.sign(aud=aud))


def test_token_of_another_issuer_is_refused(verifier: TokenVerifier, key: Key) -> None:
    with pytest.raises(Unauthenticated, match="issuer"):
        verifier.verify(key.sign(iss="https://evil.example"))


def test_token_signed_by_another_key_under_a_known_kid_is_refused(verifier: TokenVerifier, key: Key) -> None:
    impostor = Key(kid=key.kid)
    with pytest.raises(Unauthenticated):
        verifier.verify(impostor.sign())


def test_token_with_a_tampered_payload_is_refused(verifier: TokenVerifier, key: Key) -> None:
    header, _, signature = key.sign(sub="alice").split(".")
    forged_payload = jwt.utils.base64url_encode(
        json.dumps({"iss": ISSUER, "aud": AUDIENCE, "sub": "admin", "iat": now(), "exp": now() + 600}).encode()
    ).decode()
    with pytest.raises(Unauthenticated):
        verifier.verify(f"{header}.{forged_payload}.{signature}")


def test_token_with_an_unknown_kid_is_refused(verifier: TokenVerifier, other_key: Key) -> None:
    with pytest.raises(Unauthenticated, match="signing key"):
        verifier.verify(other_key.sign())


def test_unsigned_token_is_refused(verifier: TokenVerifier, key: Key) -> None:
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "iat": now(), "exp": now() + 600}
    token = jwt.encode(claims, None, algorithm="none", headers={"kid": key.kid})
    with pytest.raises(Unauthenticated):
        verifier.verify(token)


def test_hmac_token_is_refused(verifier: TokenVerifier, key: Key) -> None:
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "iat": now(), "exp": now() + 600}
    token = jwt.encode(claims, "a-shared-secret-of-32-bytes-long!", algorithm="HS256", headers={"kid": key.kid})
    with pytest.raises(Unauthenticated):
        verifier.verify(token)


@pytest.mark.parametrize("claim", ["sub", "exp", "iat", "aud", "iss"])
def test_token_missing_a_required_claim_is_refused(verifier: TokenVerifier, key: Key, claim: str) -> None:
    with pytest.raises(Unauthenticated):
        verifier.verify(key.sign(**{claim: None}))


@pytest.mark.parametrize("sub", ["", 42])
def test_token_with_an_empty_or_non_text_subject_is_refused(verifier: TokenVerifier, key: Key, sub: Any) -> None:
    with pytest.raises(Unauthenticated):
        verifier.verify(key.sign(sub=sub))


@pytest.mark.parametrize("token", ["", "garbage", "a.b.c", "eyJhbGciOiJSUzI1NiJ9.e30"])
def test_malformed_token_is_refused(verifier: TokenVerifier, token: str) -> None:
    with pytest.raises(Unauthenticated):
        verifier.verify(token)


def test_token_signed_with_a_rotated_key_is_accepted_after_refetch(jwks: JwksServer, key: Key, other_key: Key) -> None:
    verifier = TokenVerifier(ISSUER, AUDIENCE, jwks.url, refetch_cooldown=0)
    verifier.verify(key.sign())
    jwks.body = {"keys": [key.jwk, other_key.jwk]}
    assert verifier.verify(other_key.sign(sub="rotated")).subject == "rotated"
    assert jwks.fetches == 2


def test_unknown_kids_do_not_refetch_within_the_cooldown(
    verifier: TokenVerifier, jwks: JwksServer, key: Key, other_key: Key
) -> None:
    verifier.verify(key.sign())
    with pytest.raises(Unauthenticated):
        verifier.verify(other_key.sign())
    with pytest.raises(Unauthenticated):
        verifier.verify(other_key.sign())
    assert jwks.fetches == 1


def test_unreachable_jwks_is_unavailable_not_unauthenticated(key: Key) -> None:
    with JwksServer() as server:
        url = server.url
    verifier = TokenVerifier(ISSUER, AUDIENCE, url)  # the server is closed: connection refused
    with pytest.raises(Unavailable) as raised:
        verifier.verify(key.sign())
    assert raised.value.headers["Retry-After"]


def test_jwks_server_error_is_unavailable(verifier: TokenVerifier, jwks: JwksServer, key: Key) -> None:
    jwks.status = 500
    with pytest.raises(Unavailable):
        verifier.verify(key.sign())


def test_jwks_answering_something_other_than_json_is_unavailable(
    verifier: TokenVerifier, jwks: JwksServer, key: Key
) -> None:
    jwks.body = b"<html>maintenance</html>"
    with pytest.raises(Unavailable):
        verifier.verify(key.sign())


@pytest.mark.parametrize(
    ("header", "token"),
    [("Bearer abc.def.ghi", "abc.def.ghi"), ("bearer abc", "abc"), ("BEARER  abc  ", "abc")],
)
def test_bearer_token_is_taken_from_the_header(header: str, token: str) -> None:
    assert bearer_token(header) == token


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer   ", "Basic dXNlcjpwYXNz", "Token abc", "abc"])
def test_missing_or_other_authorization_schemes_are_refused(header: str | None) -> None:
    with pytest.raises(Unauthenticated):
        bearer_token(header)


@pytest.mark.parametrize("body", [{"keys": []}, {"keys": [{"kty": "RSA"}]}, ["not", "a", "set"]])
def test_jwks_without_usable_keys_is_refused_cleanly(
    verifier: TokenVerifier, jwks: JwksServer, key: Key, body: Any
) -> None:
    jwks.body = body
    with pytest.raises((Unauthenticated, Unavailable)):
        verifier.verify(key.sign())


def test_a_verified_token_is_remembered_but_not_past_its_expiry(jwks: JwksServer, key: Key) -> None:
    verifier = TokenVerifier(ISSUER, AUDIENCE, jwks.url, leeway_seconds=0)
    token = key.sign(exp=int(time.time()) + 2)
    assert verifier.verify(token).subject == verifier.verify(token).subject == "alice"
    assert jwks.fetches == 1
    time.sleep(max(0.0, jwt.decode(token, options={"verify_signature": False})["exp"] - time.time()) + 1.1)
    with pytest.raises(Unauthenticated):
        verifier.verify(token)
