"""Page tokens: a cursor bound to its query, refusing anything it did not make."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.core.errors import ValidationFailed
from shared.services.paging import decode_token, encode_token, fingerprint

MOMENT = datetime(2026, 12, 2, 20, 21, 28, 950927, tzinfo=UTC)


@pytest.mark.parametrize("doc_id", ["__w5KXbqqc28BHBJ-nzZ", "abc__", "a", "x" * 64, "-_-_"])
def test_every_id_the_service_makes_round_trips(doc_id: str) -> None:
    query = fingerprint({"audit": "e1"})
    assert decode_token(encode_token((MOMENT, doc_id), query), query) == (MOMENT, doc_id)


@pytest.mark.parametrize("doc_id", ["__reserved__", "", "x" * 65, "a/b", "a.b"])
def test_ids_firestore_refuses_are_refused(doc_id: str) -> None:
    query = fingerprint({"audit": "e1"})
    with pytest.raises(ValidationFailed):
        decode_token(encode_token((MOMENT, doc_id), query), query)


def test_a_token_of_another_query_is_refused() -> None:
    token = encode_token((MOMENT, "abc"), fingerprint({"audit": "e1"}))
    with pytest.raises(ValidationFailed):
        decode_token(token, fingerprint({"audit": "e2"}))


@pytest.mark.parametrize("token", ["", "not-base64!", "eyJ0IjogMX0", "e30"])
def test_garbage_is_refused(token: str) -> None:
    with pytest.raises(ValidationFailed):
        decode_token(token, fingerprint({}))
