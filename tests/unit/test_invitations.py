"""Team invitations (Team, and UserService.register with a code) against the in-memory document store.

What is asserted is what was committed (documents, domain events) and what was e-mailed. Time is a
frozen clock, so expiry is tested without waiting seven days.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pydantic
import pytest

from shared.core.auth import Identity
from shared.core.errors import AlreadyRegistered, Forbidden, InvalidInvitation, InvalidState, NotFound, ValidationFailed
from shared.dal.records import Revision, UnitOfWork
from shared.models import Company, User
from shared.schemas import UserIn
from shared.services.identity import Principal, identity_key
from shared.services.invitations import Team
from shared.services.users import UserService
from shared.team_models import Invitation
from tests.unit.fakes import DocumentStore, FakeCompanyStore, FakeMailer, FakeUserStore, _Collection, _from_doc

ISSUER = "https://issuer.example"


# ---- fakes of the two stores this feature adds to -----------------------------------------------


class FakeInvitationStore(_Collection):
    collection = "invitations"

    def get(self, invitation_id: str) -> tuple[Invitation, Revision] | None:
        found = self.store.get(self.path(invitation_id))
        return (_from_doc(Invitation, found[0]), found[1]) if found else None

    def page_of_company(self, company_id: str, limit: int, after: str | None) -> tuple[list[Invitation], str | None]:
        found = [_from_doc(Invitation, d) for _, d, _ in self.store.children(self.collection)]
        return _page(sorted((i for i in found if i.company_id == company_id), key=lambda i: i.id), limit, after)

    def stage_create(self, uow: UnitOfWork, invitation: Invitation) -> None:
        uow.create(self.path(invitation.id), asdict(invitation))

    def stage_update(self, uow: UnitOfWork, invitation: Invitation, since: Revision) -> None:
        uow.update(self.path(invitation.id), asdict(invitation), since=since)


class TeamUserStore(FakeUserStore):
    """FakeUserStore plus what the team feature uses: a registration staged into a unit of work, and
    a company's users by page."""

    def stage_register(self, uow: UnitOfWork, user: User, company: Company | None) -> None:
        uow.create(
            f"identities/{user.identity_key}", {"user_id": user.id, "role": user.role, "company_id": user.company_id}
        )
        uow.create(f"usernames/{user.username.casefold()}", {"user_id": user.id})
        uow.create(self.path(user.id), asdict(user))
        if company is not None:
            uow.create(f"companies/{company.id}", asdict(company))

    def page_of_company(self, company_id: str, limit: int, after: str | None) -> tuple[list[User], str | None]:
        members = sorted((u for u in self.users.values() if u.company_id == company_id), key=lambda u: u.id)
        return _page(members, limit, after)


def _page(items: list[Any], limit: int, after: str | None) -> tuple[list[Any], str | None]:
    rest = [i for i in items if after is None or i.id > after]
    page = rest[:limit]
    return page, page[-1].id if len(rest) > limit else None


class FailingMailer(FakeMailer):
    def send(self, to: str, subject: str, body: str, attachments: Any = ()) -> None:
        raise ConnectionRefusedError(f"no mail server (body was: {body})")


# ---- fixtures -----------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.at = datetime(2031, 3, 1, 12, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.at


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    for module in ("shared.services.invitations", "shared.services.users"):
        monkeypatch.setattr(f"{module}.utcnow", clock.now)
    return clock


@pytest.fixture
def docs() -> DocumentStore:
    return DocumentStore()


@pytest.fixture
def users(docs: DocumentStore) -> TeamUserStore:
    return TeamUserStore(docs)


@pytest.fixture
def mailer() -> FakeMailer:
    return FakeMailer()


@pytest.fixture
def service(docs: DocumentStore, users: TeamUserStore, clock: Clock) -> UserService:
    return UserService(users, FakeCompanyStore(docs), FakeInvitationStore(docs), docs.new_uow)


@pytest.fixture
def team(docs: DocumentStore, users: TeamUserStore, mailer: FakeMailer, clock: Clock) -> Team:
    return Team(FakeInvitationStore(docs), users, FakeCompanyStore(docs), mailer, docs.new_uow)


def body(role: str = "admin", **overrides: Any) -> dict[str, Any]:
    tag = overrides.pop("tag", "ada")
    data: dict[str, Any] = {
        "name": f"Person {tag}",
        "email": f"{tag}@example.com",
        "username": tag,
        "country_code": "GB",
        "phone_number": "+447700900123",
        "role": role,
    }
    if role == "admin" and "invitation" not in overrides:
        data["company"] = {
            "name": f"Events of {tag}",
            "address": "1 Engine Street, London",
            "email": f"office-{tag}@example.com",
            "country_code": "GB",
            "phone_number": "+442079460000",
            "registration_number": f"GB-{tag}",
        }
    return {**data, **overrides}


def register(service: UserService, subject: str, role: str = "admin", **overrides: Any) -> User:
    return service.register(Identity(ISSUER, subject), UserIn.model_validate(body(role, tag=subject, **overrides)))


def principal(user: User) -> Principal:
    return Principal(user.id, user.role, user.company_id)


@pytest.fixture
def boss(service: UserService) -> User:
    return register(service, "boss")


def invite(team: Team, boss: User, email: str = "colleague@example.com") -> tuple[Invitation, str]:
    invitation, code, sent = team.invite(principal(boss), str(boss.company_id), email)
    assert sent
    return invitation, code


def stored_invitation(docs: DocumentStore, invitation_id: str) -> Invitation:
    found = FakeInvitationStore(docs).get(invitation_id)
    assert found is not None
    return found[0]


# ---- inviting -----------------------------------------------------------------------------------


def test_an_invitation_stores_only_the_hash_of_its_random_code(
    team: Team, boss: User, docs: DocumentStore, clock: Clock
) -> None:
    invitation, code = invite(team, boss)
    other, other_code = invite(team, boss)

    assert re.fullmatch(r"inv_[A-Za-z0-9_-]{43}", code), code  # 256 random bits, URL-safe
    assert code != other_code
    assert invitation.id == hashlib.sha256(code.encode()).hexdigest() != other.id
    assert code not in repr(docs.docs)  # the code is nowhere in the database
    stored = stored_invitation(docs, invitation.id)
    assert stored == invitation
    assert (stored.company_id, stored.email, stored.invited_by) == (boss.company_id, "colleague@example.com", boss.id)
    assert stored.status(clock.at) == "pending"
    assert stored.expires_at == clock.at + timedelta(days=7)


def test_the_invitee_is_emailed_the_code(team: Team, boss: User, mailer: FakeMailer) -> None:
    _, code = invite(team, boss, "colleague@example.com")

    [(to, subject, text)] = mailer.sent
    assert to == "colleague@example.com"
    assert "Events of boss" in subject
    assert code in text


def test_a_failed_email_does_not_fail_the_invitation_and_the_log_has_no_code(
    docs: DocumentStore, users: TeamUserStore, boss: User, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    team = Team(FakeInvitationStore(docs), users, FakeCompanyStore(docs), FailingMailer(), docs.new_uow)

    with caplog.at_level(logging.INFO, logger="invitations"):
        invitation, code, sent = team.invite(principal(boss), str(boss.company_id), "x@example.com")

    assert sent is False
    assert stored_invitation(docs, invitation.id).status(clock.at) == "pending"
    assert "e-mail to the invitee failed" in caplog.text
    assert code not in caplog.text


def test_invitation_events_are_scoped_to_the_company_not_to_a_ticketed_event(
    team: Team, service: UserService, boss: User, docs: DocumentStore
) -> None:
    invitation, code = invite(team, boss)
    register(service, "newcomer", invitation=code)
    revoked, _ = invite(team, boss)
    team.revoke(principal(boss), str(boss.company_id), revoked.id)

    assert docs.actions(invitation.id) == ["invitation.created", "invitation.accepted"]
    assert docs.actions(revoked.id) == ["invitation.created", "invitation.revoked"]
    for event in docs.events_of(invitation.id) + docs.events_of(revoked.id):
        assert (event.event_id, event.company_id, event.topics) == ("", boss.company_id, ())
        assert code not in repr(event)
    accepted = docs.events_of(invitation.id)[1]
    assert (accepted.sequence, accepted.changes) == (2, {"status": ["pending", "accepted"]})


# ---- registering with a code --------------------------------------------------------------------


def test_a_code_registers_an_admin_of_the_inviting_company(
    team: Team, service: UserService, boss: User, docs: DocumentStore, clock: Clock
) -> None:
    invitation, code = invite(team, boss)

    user = register(service, "newcomer", invitation=code)

    assert (user.role, user.company_id) == ("admin", boss.company_id)
    assert service.users.access_for(identity_key(Identity(ISSUER, "newcomer"))) == (user.id, "admin", boss.company_id)
    accepted = stored_invitation(docs, invitation.id)
    assert (accepted.status(clock.at), accepted.accepted_by, accepted.accepted_at) == ("accepted", user.id, clock.at)
    assert len(FakeUserStore(docs).companies) == 1  # no new company
    members, _ = team.members(principal(user), str(boss.company_id), 10, None)
    assert {m.id for m in members} == {boss.id, user.id}


def test_a_code_with_surrounding_whitespace_still_works(team: Team, service: UserService, boss: User) -> None:
    _, code = invite(team, boss)

    assert register(service, "newcomer", invitation=f"  {code}\n").company_id == boss.company_id


def nothing_stored_for(docs: DocumentStore, subject: str) -> bool:
    users = FakeUserStore(docs)
    return (
        users.access_for(identity_key(Identity(ISSUER, subject))) is None and docs.get(f"usernames/{subject}") is None
    )


@pytest.mark.parametrize("code", ["inv_unknown", "x", "inv_" + "A" * 43, "a" * 200])
def test_an_unknown_code_is_invalid_and_stores_nothing(service: UserService, docs: DocumentStore, code: str) -> None:
    with pytest.raises(InvalidInvitation):
        register(service, "newcomer", invitation=code)

    assert nothing_stored_for(docs, "newcomer")


def test_a_code_is_used_once(team: Team, service: UserService, boss: User, docs: DocumentStore) -> None:
    _, code = invite(team, boss)
    register(service, "first", invitation=code)

    with pytest.raises(InvalidInvitation):
        register(service, "second", invitation=code)

    assert nothing_stored_for(docs, "second")


def test_of_two_racing_registrations_with_one_code_one_wins_and_the_other_writes_nothing(
    team: Team, service: UserService, boss: User, docs: DocumentStore, clock: Clock
) -> None:
    """Both read the invitation pending; the second commit fails on the invitation's revision."""
    invitation, code = invite(team, boss)
    docs.before_next_commit(lambda: register(service, "first", invitation=code))

    with pytest.raises(InvalidInvitation):
        register(service, "second", invitation=code)

    assert nothing_stored_for(docs, "second")
    first = FakeUserStore(docs).access_for(identity_key(Identity(ISSUER, "first")))
    assert first is not None
    assert stored_invitation(docs, invitation.id).accepted_by == first[0]
    assert docs.actions(invitation.id) == ["invitation.created", "invitation.accepted"]


def test_a_revoked_code_is_invalid(team: Team, service: UserService, boss: User, docs: DocumentStore) -> None:
    invitation, code = invite(team, boss)
    team.revoke(principal(boss), str(boss.company_id), invitation.id)

    with pytest.raises(InvalidInvitation):
        register(service, "newcomer", invitation=code)

    assert nothing_stored_for(docs, "newcomer")


def test_a_code_expires_after_seven_days(
    team: Team, service: UserService, boss: User, docs: DocumentStore, clock: Clock
) -> None:
    invitation, code = invite(team, boss)
    late, late_code = invite(team, boss)

    clock.at += timedelta(days=7, seconds=-1)
    register(service, "in_time", invitation=code)  # still valid a second before
    clock.at += timedelta(seconds=1)
    with pytest.raises(InvalidInvitation):
        register(service, "too_late", invitation=late_code)

    assert nothing_stored_for(docs, "too_late")
    listed, _ = team.invitations_of(principal(boss), str(boss.company_id), 10, None)
    assert {i.id: i.status(clock.at) for i in listed} == {invitation.id: "accepted", late.id: "expired"}
    with pytest.raises(InvalidState):
        team.revoke(principal(boss), str(boss.company_id), late.id)


def test_an_already_registered_subject_is_refused_and_the_invitation_stays_pending(
    team: Team, service: UserService, boss: User, docs: DocumentStore, clock: Clock
) -> None:
    invitation, code = invite(team, boss)
    register(service, "rival")  # an admin of a company of their own

    with pytest.raises(AlreadyRegistered):
        register(service, "rival", invitation=code, username="rival_two")

    assert stored_invitation(docs, invitation.id).status(clock.at) == "pending"
    assert register(service, "newcomer", invitation=code).company_id == boss.company_id


def test_a_subject_registering_meanwhile_is_already_registered_and_the_invitation_stays_pending(
    team: Team, service: UserService, boss: User, docs: DocumentStore, clock: Clock
) -> None:
    invitation, code = invite(team, boss)
    docs.before_next_commit(lambda: register(service, "twice", role="user", username="twice_buyer"))

    with pytest.raises(AlreadyRegistered):
        register(service, "twice", invitation=code)

    assert stored_invitation(docs, invitation.id).status(clock.at) == "pending"


def test_a_taken_username_is_a_validation_error_and_the_invitation_stays_pending(
    team: Team, service: UserService, boss: User, docs: DocumentStore, clock: Clock
) -> None:
    invitation, code = invite(team, boss)

    with pytest.raises(ValidationFailed) as raised:
        register(service, "newcomer", invitation=code, username="BOSS")

    assert [e["field"] for e in raised.value.extra["errors"]] == ["username"]
    assert stored_invitation(docs, invitation.id).status(clock.at) == "pending"
    assert nothing_stored_for(docs, "newcomer")


@pytest.mark.parametrize(
    ("role", "extra"),
    [
        ("admin", {"invitation": "inv_x", "company": body()["company"]}),  # both
        ("user", {"invitation": "inv_x"}),  # a buyer joins no company
        ("admin", {"invitation": ""}),
        ("admin", {"invitation": "x" * 201}),
    ],
)
def test_invalid_registration_bodies_with_an_invitation_are_refused(role: str, extra: dict[str, Any]) -> None:
    data = {k: v for k, v in body(role).items() if k != "company"}
    with pytest.raises(pydantic.ValidationError):  # 422 validation_error at the HTTP layer
        UserIn.model_validate({**data, **extra})


# ---- listing, revoking, members -----------------------------------------------------------------


def test_revoking_a_pending_invitation_and_then_again(
    team: Team, boss: User, docs: DocumentStore, clock: Clock
) -> None:
    invitation, _ = invite(team, boss)

    revoked = team.revoke(principal(boss), str(boss.company_id), invitation.id)

    assert (revoked.status(clock.at), revoked.revoked_by, revoked.revoked_at) == ("revoked", boss.id, clock.at)
    assert stored_invitation(docs, invitation.id) == revoked
    with pytest.raises(InvalidState):
        team.revoke(principal(boss), str(boss.company_id), invitation.id)


def test_an_accepted_invitation_cannot_be_revoked(team: Team, service: UserService, boss: User) -> None:
    invitation, code = invite(team, boss)
    register(service, "newcomer", invitation=code)

    with pytest.raises(InvalidState):
        team.revoke(principal(boss), str(boss.company_id), invitation.id)


def test_unknown_or_another_companys_invitation_is_not_found(team: Team, service: UserService, boss: User) -> None:
    rival = register(service, "rival")
    theirs, _ = invite(team, rival)

    for invitation_id in ("no-such-invitation", theirs.id):
        with pytest.raises(NotFound):
            team.revoke(principal(boss), str(boss.company_id), invitation_id)


def test_only_the_companys_admins_manage_its_team(team: Team, service: UserService, boss: User) -> None:
    invitation, _ = invite(team, boss)
    company = str(boss.company_id)
    for outsider in (register(service, "rival"), register(service, "buyer", role="user")):
        who = principal(outsider)
        with pytest.raises(Forbidden):
            team.invite(who, company, "x@example.com")
        with pytest.raises(Forbidden):
            team.invitations_of(who, company, 10, None)
        with pytest.raises(Forbidden):
            team.revoke(who, company, invitation.id)
        with pytest.raises(Forbidden):
            team.members(who, company, 10, None)


def test_invitations_and_members_come_in_pages(team: Team, service: UserService, boss: User) -> None:
    company = str(boss.company_id)
    made = {invite(team, boss)[0].id for _ in range(3)}
    for name in ("member1", "member2"):
        register(service, name, invitation=invite(team, boss)[1])

    first, token = team.invitations_of(principal(boss), company, 3, None)
    rest, end = team.invitations_of(principal(boss), company, 3, token)
    members, member_token = team.members(principal(boss), company, 2, None)
    more, member_end = team.members(principal(boss), company, 2, member_token)

    assert (len(first), len(rest), end) == (3, 2, None)
    assert made < {i.id for i in first + rest}
    assert (len(members), len(more), member_end) == (2, 1, None)
    with pytest.raises(ValidationFailed):  # a token of another list
        team.invitations_of(principal(boss), company, 3, member_token)


def test_status_is_derived_when_read() -> None:
    now = datetime(2031, 1, 1, tzinfo=UTC)
    invitation, _ = Invitation.new("co", "a@example.com", "u1", now, timedelta(days=7))

    assert invitation.status(now + timedelta(days=6)) == "pending"
    assert invitation.status(now + timedelta(days=7)) == "expired"
    assert invitation.accepted("u2", now).status(now + timedelta(days=8)) == "accepted"
    assert invitation.revoked("u1", now).status(now + timedelta(days=8)) == "revoked"
