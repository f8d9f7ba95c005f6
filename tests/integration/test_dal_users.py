"""UserDAL and CompanyDAL against the Firestore emulator: what register/update store and refuse; a
registration staged with the invitation it uses (InvitationDAL), one commit."""

from __future__ import annotations

import secrets
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.dal.invitations import InvitationDAL
from shared.dal.records import ConcurrentUpdate, DocumentExists, Revision
from shared.dal.stream import DomainEventDAL
from shared.dal.unit_of_work import FirestoreUnitOfWork
from shared.dal.users import IDENTITIES, USERNAMES, CompanyDAL, IdentityTaken, UserDAL, UsernameTaken
from shared.models import Company, User
from shared.team_models import Invitation

CREATED = datetime(2030, 1, 2, 3, 4, 5, 123000, tzinfo=UTC)


def tag() -> str:
    return secrets.token_hex(5)


def make_company(**overrides: Any) -> Company:
    t = tag()
    fields: dict[str, Any] = {
        "id": f"co-{t}",
        "name": f"Company {t}",
        "address": "Hauptstrasse 1, Berlin",
        "email": f"office-{t}@example.com",
        "country_code": "DE",
        "phone_number": "+493012345678",
        "registration_number": f"HRB {t}",
        "created_at": CREATED,
    }
    fields.update(overrides)
    return Company(**fields)


def make_user(company: Company | None = None, **overrides: Any) -> User:
    t = tag()
    fields: dict[str, Any] = {
        "id": f"u-{t}",
        "identity_key": f"idk-{t}",
        "auth_subject": f"sub-{t}",
        "name": f"Person {t}",
        "email": f"{t}@example.com",
        "username": f"user_{t}",
        "country_code": "DE",
        "phone_number": "+4915112345678",
        "role": "admin" if company else "user",
        "company_id": company.id if company else None,
        "created_at": CREATED,
        "updated_at": CREATED,
    }
    fields.update(overrides)
    return User(**fields)


@pytest.fixture
def users(firestore_client: Any) -> UserDAL:
    return UserDAL(firestore_client)


@pytest.fixture
def companies(firestore_client: Any) -> CompanyDAL:
    return CompanyDAL(firestore_client)


def username_owner(client: Any, username: str) -> str | None:
    snap = client.collection(USERNAMES).document(username.casefold()).get()
    return snap.get("user_id") if snap.exists else None


# ---- register / get / access_for ------------------------------------------------------------


def test_register_buyer_then_get_returns_the_same_user(users: UserDAL, firestore_client: Any) -> None:
    user = make_user()
    users.register(user, None)

    assert users.get(user.id) == user
    assert users.access_for(user.identity_key) == (user.id, user.role, user.company_id)
    assert username_owner(firestore_client, user.username) == user.id


def test_register_admin_stores_the_company(users: UserDAL, companies: CompanyDAL) -> None:
    company = make_company()
    user = make_user(company)
    users.register(user, company)

    assert users.get(user.id) == user
    assert companies.get(company.id) == company


def test_timestamps_come_back_as_utc_datetimes(users: UserDAL) -> None:
    user = make_user()
    users.register(user, None)

    stored = users.get(user.id)
    assert stored is not None
    assert stored.created_at == CREATED
    assert stored.created_at.utcoffset() is not None
    assert stored.created_at.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


def test_get_and_lookup_of_unknown_ids_are_none(users: UserDAL, companies: CompanyDAL) -> None:
    assert users.get(f"missing-{tag()}") is None
    assert users.access_for(f"missing-{tag()}") is None
    assert companies.get(f"missing-{tag()}") is None


def test_username_is_stored_under_its_casefolded_form(users: UserDAL, firestore_client: Any) -> None:
    user = make_user(username=f"MiXeD_{tag()}")
    users.register(user, None)

    assert username_owner(firestore_client, user.username.lower()) == user.id
    stored = users.get(user.id)
    assert stored is not None
    assert stored.username == user.username  # the user's spelling is kept


def test_second_registration_of_an_identity_is_identity_taken(users: UserDAL, firestore_client: Any) -> None:
    first = make_user()
    users.register(first, None)
    second = make_user(identity_key=first.identity_key)

    with pytest.raises(IdentityTaken):
        users.register(second, None)

    assert users.get(second.id) is None
    assert (users.access_for(first.identity_key) or ("",))[0] == first.id
    assert username_owner(firestore_client, second.username) is None


def test_taken_username_is_username_taken_and_nothing_is_written(
    users: UserDAL, companies: CompanyDAL, firestore_client: Any
) -> None:
    first = make_user()
    users.register(first, None)
    company = make_company()
    second = make_user(company, username=first.username.upper())

    with pytest.raises(UsernameTaken):
        users.register(second, company)

    # all or nothing: no user, no identity claim, no company
    assert users.get(second.id) is None
    assert users.access_for(second.identity_key) is None
    assert companies.get(company.id) is None
    assert username_owner(firestore_client, first.username) == first.id


def test_identity_claim_document_holds_the_user_id_and_access(users: UserDAL, firestore_client: Any) -> None:
    user = make_user()
    users.register(user, None)

    snap = firestore_client.collection(IDENTITIES).document(user.identity_key).get()
    assert snap.to_dict() == {"user_id": user.id, "role": user.role, "company_id": user.company_id}
    assert users.access_for(user.identity_key) == (user.id, user.role, user.company_id)
    assert users.access_for(f"missing-{tag()}") is None


# ---- update ---------------------------------------------------------------------------------


def read(users: UserDAL, user: User) -> Revision:
    """The revision a caller reads before changing the user."""
    found = users.get_for_update(user.id)
    assert found is not None
    return found[1]


def test_update_from_a_stale_revision_is_a_concurrent_update_and_writes_nothing(
    users: UserDAL, firestore_client: Any
) -> None:
    user = make_user()
    users.register(user, None)
    stale = read(users, user)
    users.update(replace(user, name="First"), previous_username=user.username, since=stale)
    late_name = f"late_{tag()}"

    with pytest.raises(ConcurrentUpdate):
        users.update(replace(user, name="Second", username=late_name), previous_username=user.username, since=stale)

    assert users.get(user.id) == replace(user, name="First")
    assert not firestore_client.collection(USERNAMES).document(late_name.casefold()).get().exists


def test_update_saves_changed_fields(users: UserDAL) -> None:
    user = make_user()
    users.register(user, None)
    later = datetime(2030, 2, 1, tzinfo=UTC)
    changed = replace(user, name="New Name", phone_number="+4917000000000", country_code="FR", updated_at=later)

    users.update(changed, previous_username=user.username, since=read(users, user))

    assert users.get(user.id) == changed


def test_update_moves_the_username_claim(users: UserDAL, firestore_client: Any) -> None:
    user = make_user()
    users.register(user, None)
    new_name = f"moved_{tag()}"

    users.update(replace(user, username=new_name), previous_username=user.username, since=read(users, user))

    stored = users.get(user.id)
    assert stored is not None
    assert stored.username == new_name
    assert username_owner(firestore_client, new_name) == user.id
    assert username_owner(firestore_client, user.username) is None


def test_freed_username_can_be_registered_by_someone_else(users: UserDAL, firestore_client: Any) -> None:
    user = make_user()
    users.register(user, None)
    users.update(replace(user, username=f"other_{tag()}"), previous_username=user.username, since=read(users, user))

    newcomer = make_user(username=user.username)
    users.register(newcomer, None)

    assert username_owner(firestore_client, user.username) == newcomer.id


def test_update_changing_only_the_case_of_the_username_keeps_the_claim(users: UserDAL, firestore_client: Any) -> None:
    user = make_user(username=f"lower_{tag()}")
    users.register(user, None)
    upper = user.username.upper()

    users.update(replace(user, username=upper), previous_username=user.username, since=read(users, user))

    stored = users.get(user.id)
    assert stored is not None
    assert stored.username == upper
    assert username_owner(firestore_client, upper) == user.id


def test_update_to_a_taken_username_is_refused_and_changes_nothing(users: UserDAL, firestore_client: Any) -> None:
    holder = make_user()
    users.register(holder, None)
    user = make_user()
    users.register(user, None)

    with pytest.raises(UsernameTaken):
        users.update(
            replace(user, username=holder.username, name="Changed"),
            previous_username=user.username,
            since=read(users, user),
        )

    assert users.get(user.id) == user
    assert username_owner(firestore_client, user.username) == user.id
    assert username_owner(firestore_client, holder.username) == holder.id


# ---- registration with an invitation: one unit of work --------------------------------------


@pytest.fixture
def invitations(firestore_client: Any) -> InvitationDAL:
    return InvitationDAL(firestore_client)


def uow_of(client: Any) -> FirestoreUnitOfWork:
    return FirestoreUnitOfWork(client, DomainEventDAL(client))


def stored_invitation(invitations: InvitationDAL, company: Company) -> tuple[Invitation, Revision]:
    invitation, _code = Invitation.new(company.id, "colleague@example.com", "u-boss", CREATED, timedelta(days=7))
    uow = uow_of(invitations.client)
    invitations.stage_create(uow, invitation)
    uow.commit()
    found = invitations.get(invitation.id)
    assert found is not None
    assert found[0] == invitation
    return found


def current(invitations: InvitationDAL, invitation_id: str) -> Invitation:
    found = invitations.get(invitation_id)
    assert found is not None
    return found[0]


def accept(
    client: Any, users: UserDAL, invitations: InvitationDAL, user: User, read: tuple[Invitation, Revision]
) -> None:
    uow = uow_of(client)
    users.stage_register(uow, user, None)
    invitations.stage_update(uow, read[0].accepted(user.id, CREATED), since=read[1])
    uow.commit()


def test_a_registration_and_its_invitation_commit_together(
    users: UserDAL, companies: CompanyDAL, invitations: InvitationDAL, firestore_client: Any
) -> None:
    company = make_company()
    users.register(make_user(company), company)
    read = stored_invitation(invitations, company)
    user = make_user(company)

    accept(firestore_client, users, invitations, user, read)

    assert users.get(user.id) == user
    assert users.access_for(user.identity_key) == (user.id, "admin", company.id)
    assert username_owner(firestore_client, user.username) == user.id
    accepted = current(invitations, read[0].id)
    assert (accepted.state, accepted.accepted_by) == ("accepted", user.id)


def test_the_second_use_of_an_invitation_read_pending_writes_nothing(
    users: UserDAL, invitations: InvitationDAL, firestore_client: Any
) -> None:
    company = make_company()
    users.register(make_user(company), company)
    read = stored_invitation(invitations, company)  # both registrations read it pending
    first, second = make_user(company), make_user(company)
    accept(firestore_client, users, invitations, first, read)

    with pytest.raises(ConcurrentUpdate):
        accept(firestore_client, users, invitations, second, read)

    assert users.get(second.id) is None
    assert users.access_for(second.identity_key) is None
    assert username_owner(firestore_client, second.username) is None
    assert current(invitations, read[0].id).accepted_by == first.id


def test_a_registered_identity_using_an_invitation_leaves_it_pending(
    users: UserDAL, invitations: InvitationDAL, firestore_client: Any
) -> None:
    company = make_company()
    users.register(make_user(company), company)
    read = stored_invitation(invitations, company)
    registered = make_user()
    users.register(registered, None)

    with pytest.raises(DocumentExists):
        accept(firestore_client, users, invitations, make_user(company, identity_key=registered.identity_key), read)

    assert current(invitations, read[0].id).state == "pending"


def test_a_companys_users_and_invitations_come_in_pages(
    users: UserDAL, invitations: InvitationDAL, firestore_client: Any
) -> None:
    company = make_company()
    made = [make_user(company) for _ in range(3)]
    users.register(made[0], company)
    for user in made[1:]:
        users.register(user, None)
    users.register(make_user(make_company()), None)  # another company's
    sent = {stored_invitation(invitations, company)[0].id for _ in range(2)}

    first, cursor = users.page_of_company(company.id, 2, None)
    rest, end = users.page_of_company(company.id, 2, cursor)
    one, after = invitations.page_of_company(company.id, 1, None)
    two, last = invitations.page_of_company(company.id, 1, after)

    assert [u.id for u in first + rest] == sorted(u.id for u in made)
    assert end is None
    assert {i.id for i in one + two} == sent
    assert last is None
