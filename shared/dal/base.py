"""What every DAL shares: the client, conversions, and Firestore errors turned into domain ones."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter
from google.cloud.firestore_v1.field_path import FieldPath

from shared.core import faults
from shared.dal.records import ConcurrentUpdate, DocumentExists, Revision


class Dal:
    collection: str

    def __init__(self, client: firestore.Client) -> None:
        self.client = client

    def ref(self, doc_id: str) -> firestore.DocumentReference:
        return self.client.collection(self.collection).document(doc_id)

    def path(self, doc_id: str) -> str:
        return f"{self.collection}/{doc_id}"

    def page_where(self, field: str, value: str, limit: int, after: str | None) -> tuple[list[Any], str | None]:
        """Documents with `field == value` in id order (the single-field index serves it): a page of
        snapshots and the id the next page starts after."""
        query = (
            self.client.collection(self.collection)
            .where(filter=FieldFilter(field, "==", value))
            .order_by(FieldPath.document_id())
        )
        if after:
            query = query.start_after({FieldPath.document_id(): self.ref(after)})
        found = list(query.limit(limit + 1).stream())
        page = found[:limit]
        return page, page[-1].id if len(found) > limit and page else None


def revision(snap: Any) -> Revision:
    """The precondition for changing the document `snap` was read from."""
    return Revision(snap.update_time)


def commit(batch: firestore.WriteBatch | Any) -> list[Any]:
    """Commit a batch and return its write results; map precondition failures to domain exceptions."""
    try:
        results = list(batch.commit())
        if faults.current().hit("commit_unavailable"):  # fault injection: committed, the answer lost
            raise gexc.ServiceUnavailable("fault injection: the commit succeeded, its answer was lost")
        return results
    except gexc.AlreadyExists as exc:
        raise DocumentExists(str(exc)) from None
    except (gexc.FailedPrecondition, gexc.NotFound) as exc:
        raise ConcurrentUpdate(str(exc)) from None


def as_utc(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    raise TypeError(f"not a timestamp: {value!r}")
