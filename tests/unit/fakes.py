"""In-memory stand-ins for the DALs and the token verifier, for service tests (no Firestore, no network).

Each fake honours the contract of the DAL it replaces (uniqueness, version checks, query order) and
records what happened, so that a test asserts on behaviour rather than on calls.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from shared.core.auth import Identity
from shared.core.errors import Unauthenticated
from shared.dal.events import EventQuery, VersionMismatch
from shared.dal.users import IdentityTaken, UsernameTaken
from shared.models import Company, Event, User


class FakeUserStore:
    def __init__(self) -> None:
        self.users: dict[str, User] = {}
        self.identities: dict[str, str] = {}  # identity key -> user id
        self.usernames: dict[str, str] = {}  # casefolded username -> user id
        self.companies: dict[str, Company] = {}

    def get(self, user_id: str) -> User | None:
        return self.users.get(user_id)

    def access_for(self, identity_key: str) -> tuple[str, str, str | None] | None:
        user = self.users.get(self.identities.get(identity_key, ""))
        return (user.id, user.role, user.company_id) if user else None

    def register(self, user: User, company: Company | None) -> None:
        if user.identity_key in self.identities:
            raise IdentityTaken
        if user.username.casefold() in self.usernames:
            raise UsernameTaken
        self.identities[user.identity_key] = user.id
        self.usernames[user.username.casefold()] = user.id
        self.users[user.id] = user
        if company is not None:
            self.companies[company.id] = company

    def update(self, user: User, previous_username: str) -> None:
        if user.username.casefold() != previous_username.casefold():
            if user.username.casefold() in self.usernames:
                raise UsernameTaken
            del self.usernames[previous_username.casefold()]
            self.usernames[user.username.casefold()] = user.id
        self.users[user.id] = user


class FakeCompanyStore:
    """Reads the companies that FakeUserStore.register stored (one batch in Firestore)."""

    def __init__(self, users: FakeUserStore) -> None:
        self._users = users

    def get(self, company_id: str) -> Company | None:
        return self._users.companies.get(company_id)


class FakeEventStore:
    def __init__(self) -> None:
        self.events: dict[str, Event] = {}
        self.scans: list[EventQuery] = []

    def add(self, event: Event) -> Event:
        self.events[event.id] = event
        return event

    def create(self, event: Event) -> None:
        if event.id in self.events:
            raise ValueError(f"event {event.id} exists")
        self.events[event.id] = event

    def get(self, event_id: str) -> Event | None:
        return self.events.get(event_id)

    def save(self, event: Event, expected_version: int) -> None:
        current = self.events[event.id].version
        if current != expected_version:
            raise VersionMismatch(current)
        self.events[event.id] = event

    def bump(self, event_id: str) -> None:
        """Someone else saved the event meanwhile."""
        event = self.events[event_id]
        self.events[event_id] = replace(event, version=event.version + 1)

    def scan_published(
        self, query: EventQuery, matches: Callable[[Event], bool], limit: int, budget: int
    ) -> tuple[list[Event], tuple[datetime, str] | None]:
        """What EventDAL.scan_published does, over a list: index filters, (starts_at, id) order, budget."""
        self.scans.append(query)
        candidates = sorted(
            (e for e in self.events.values() if _indexed(e, query)),
            key=lambda e: (e.starts_at, e.id),
        )
        found: list[Event] = []
        cursor = query.after
        for scanned, event in enumerate(candidates, start=1):
            cursor = (event.starts_at, event.id)
            if matches(event):
                found.append(event)
                if len(found) == limit:
                    return found, cursor
            if scanned == budget:
                return found, cursor
        return found, None


def _indexed(event: Event, query: EventQuery) -> bool:
    """The filters Firestore applies before `matches` sees an event."""
    if not event.is_published or event.starts_at < query.starts_from:
        return False
    if query.starts_before is not None and event.starts_at >= query.starts_before:
        return False
    if query.geohash_precision is not None:
        if event.geohashes()[query.geohash_precision] not in query.geohash_cells:
            return False
    elif query.token is not None and query.token not in event.search_tokens():
        return False
    return query.after is None or (event.starts_at, event.id) > query.after


class FakeInventory:
    """Tickets sold plus held, per event."""

    def __init__(self) -> None:
        self.taken_by_event: dict[str, int] = {}

    def set_taken(self, event_id: str, taken: int) -> None:
        self.taken_by_event[event_id] = taken

    def taken(self, event_id: str, now: datetime) -> int:
        return self.taken_by_event.get(event_id, 0)


class FakeCapacity:
    """Records capacity changes; CapacityChanger itself is tested against slot fakes elsewhere."""

    def __init__(self) -> None:
        self.changes: list[tuple[str, str, int, int]] = []
        self.undone: list[tuple[str, list[int]]] = []

    def lower(self, event_id: str, old: int, new: int, now: datetime) -> list[int]:
        self.changes.append(("lower", event_id, old, new))
        return list(range(new, old))

    def raise_to(self, event_id: str, old: int, new: int) -> None:
        self.changes.append(("raise", event_id, old, new))

    def undo(self, event_id: str, retired: list[int]) -> None:
        self.undone.append((event_id, retired))


class FakeVerifier:
    """Tokens are whatever the test registered: token -> Identity. Anything else is refused."""

    ISSUER = "https://issuer.example"

    def __init__(self) -> None:
        self.identities: dict[str, Identity] = {}
        self.calls = 0

    def issue(self, subject: str, email: str | None = None) -> str:
        token = f"token-{subject}"
        self.identities[token] = Identity(issuer=self.ISSUER, subject=subject, email=email)
        return token

    def verify(self, token: str) -> Identity:
        self.calls += 1
        try:
            return self.identities[token]
        except KeyError:
            raise Unauthenticated("token not valid") from None
