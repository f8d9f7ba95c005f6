"""Opaque page tokens: a cursor (timestamp, id) bound to the query it came from."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from datetime import datetime
from typing import Any

from shared.core.errors import ValidationFailed

# Any id this service makes (URL-safe base64, which may begin with "__"); Firestore reserves only __x__.
_DOC_ID = re.compile(r"^(?!__.*__$)[A-Za-z0-9_-]{1,64}$")


def fingerprint(filters: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(filters, sort_keys=True, default=str).encode()).hexdigest()[:16]


def encode_token(cursor: tuple[datetime, str], query_fingerprint: str) -> str:
    payload = {"t": cursor[0].isoformat(), "id": cursor[1], "f": query_fingerprint}
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


def decode_token(token: str, query_fingerprint: str) -> tuple[datetime, str]:
    try:
        payload: dict[str, Any] = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        moment = datetime.fromisoformat(payload["t"])
        doc_id = payload["id"]
        if (
            payload["f"] != query_fingerprint
            or not isinstance(doc_id, str)
            or not _DOC_ID.match(doc_id)
            or moment.tzinfo is None
        ):
            raise ValueError
    except (ValueError, TypeError, KeyError, json.JSONDecodeError):
        raise _not_ours() from None
    return moment, doc_id


def _not_ours() -> ValidationFailed:
    return ValidationFailed(
        "page_token is not valid for this query",
        [{"field": "page_token", "message": "not a token of this query"}],
    )


def encode_after(doc_id: str, query_fingerprint: str) -> str:
    """A cursor that is a document id only (lists in id order)."""
    payload = {"id": doc_id, "f": query_fingerprint}
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


def decode_after(token: str, query_fingerprint: str) -> str:
    try:
        payload: dict[str, Any] = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        doc_id = payload["id"]
        if payload["f"] != query_fingerprint or not isinstance(doc_id, str) or not _DOC_ID.match(doc_id):
            raise ValueError
    except (ValueError, TypeError, KeyError, json.JSONDecodeError):
        raise _not_ours() from None
    return doc_id
