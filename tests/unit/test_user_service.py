"""Registration, the caller's profile and company access (UserService, Authenticator) against fakes."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest

from shared.core.auth import Identity
from shared.core.errors import AlreadyRegistered, Forbidden, NotFound, NotRegistered, Unauthenticated, ValidationFailed
from shared.schemas import UserIn, UserPatch
from shared.services.identity import Authenticator, Principal, identity_key
from shared.services.users import UserService
from tests.unit.fakes import DocumentStore, FakeCompanyStore, FakeUserStore, FakeVerifier
from tests.unit.test_invitations import FakeInvitationStore  # registration with a code: there

ISSUER = "https://issuer.example"


def user_body(role: str = "user") -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "username": "ada",
        "country_code": "GB",
        "phone_number": "+447700900123",
        "role": role,
    }
    if role == "admin":
        body["company"] = {
            "name": "Analytical Events Ltd",
            "address": "1 Engine Street, London",
            "email": "office@example.com",
            "country_code": "GB",
            "phone_number": "+442079460000",
            "registration_number": "GB-123",
        }
    return body


def user_in(role: str = "user", **overrides: Any) -> UserIn:
    return UserIn.model_validate({**user_body(role), **overrides})


def identity(subject: str = "sub-1", issuer: str = ISSUER) -> Identity:
    return Identity(issuer=issuer, subject=subject)


@pytest.fixture
def docs() -> DocumentStore:
    return DocumentStore()


@pytest.fixture
def store(docs: DocumentStore) -> FakeUserStore:
    return FakeUserStore(docs)


def user_service(docs: DocumentStore, store: FakeUserStore) -> UserService:
    return UserService(store, FakeCompanyStore(docs), FakeInvitationStore(docs), docs.new_uow)


@pytest.fixture
def service(docs: DocumentStore, store: FakeUserStore) -> UserService:
    return user_service(docs, store)


def principal_of(user: Any) -> Principal:
    return Principal(user.id, user.role, user.company_id)


# ---- registration -------------------------------------------------------------------------


def test_buyer_registers_without_a_company(service: UserService, store: FakeUserStore) -> None:
    user = service.register(identity("buyer-1"), user_in())
    assert user.role == "user"
    assert user.company_id is None
    assert user.auth_subject == "buyer-1"
    assert store.get(user.id) == user
    assert store.companies == {}


def test_admin_registers_with_a_new_company(service: UserService, store: FakeUserStore) -> None:
    user = service.register(identity("admin-1"), user_in("admin"))
    assert user.role == "admin"
    assert user.company_id is not None
    company = store.companies[user.company_id]
    assert company.name == "Analytical Events Ltd"
    assert company.registration_number == "GB-123"


def test_registration_is_keyed_by_issuer_and_subject(service: UserService, store: FakeUserStore) -> None:
    user = service.register(identity("sub-1"), user_in())
    assert store.access_for(identity_key(identity("sub-1"))) == (user.id, user.role, user.company_id)
    assert store.access_for(identity_key(identity("sub-1", issuer="https://other.example"))) is None


def test_second_registration_of_a_subject_is_already_registered(service: UserService) -> None:
    service.register(identity("sub-1"), user_in(username="first"))
    with pytest.raises(AlreadyRegistered):
        service.register(identity("sub-1"), user_in(username="second"))


def test_registration_racing_another_for_the_same_subject_is_already_registered(
    service: UserService, store: FakeUserStore, docs: DocumentStore
) -> None:
    """Both checked the identity before either wrote it: the commit that comes second loses."""
    first = user_service(docs, store)
    docs.before_next_commit(lambda: first.register(identity("sub-1"), user_in(username="first")))
    with pytest.raises(AlreadyRegistered):
        service.register(identity("sub-1"), user_in(username="second"))
    registered = store.access_for(identity_key(identity("sub-1")))
    assert registered is not None
    assert store.get(registered[0]).username == "first"  # type: ignore[union-attr]
    assert [u.username for u in store.users.values()] == ["first"]


@pytest.mark.parametrize("taken", ["ada", "ADA"])
def test_username_taken_is_a_validation_error_on_username(service: UserService, taken: str) -> None:
    service.register(identity("sub-1"), user_in(username="ada"))
    with pytest.raises(ValidationFailed) as raised:
        service.register(identity("sub-2"), user_in(username=taken))
    assert raised.value.status == 422
    assert [e["field"] for e in raised.value.extra["errors"]] == ["username"]


def test_ids_are_random_not_sequential(service: UserService) -> None:
    a = service.register(identity("a"), user_in(username="aaa"))
    b = service.register(identity("b"), user_in(username="bbb"))
    assert a.id != b.id
    assert len(a.id) >= 16


@pytest.mark.parametrize(
    "body",
    [
        {"role": "admin", "company": None},  # an admin needs a company
        {"role": "user", "company": user_body("admin")["company"]},
        {"role": "superuser"},
        {"country_code": "gb"},
        {"phone_number": "07700900123"},
        {"email": "not-an-email"},
        {"username": "a b"},
    ],
)
def test_invalid_registration_bodies_are_refused(body: dict[str, Any]) -> None:
    with pytest.raises(pydantic.ValidationError):  # a 422 at the HTTP layer
        UserIn.model_validate({**user_body(), **body})


# ---- profile ------------------------------------------------------------------------------


def test_me_returns_the_callers_user(service: UserService) -> None:
    user = service.register(identity(), user_in())
    assert service.me(principal_of(user)) == user


def test_me_for_a_vanished_user_is_not_found(service: UserService) -> None:
    with pytest.raises(NotFound):
        service.me(Principal("gone", "user", None))


def test_update_me_changes_only_the_given_fields(service: UserService, store: FakeUserStore) -> None:
    user = service.register(identity(), user_in())
    changed = service.update_me(principal_of(user), UserPatch(name="Ada King", phone_number="+447700900999"))
    assert (changed.name, changed.phone_number) == ("Ada King", "+447700900999")
    assert (changed.email, changed.username, changed.role) == (user.email, user.username, user.role)
    assert changed.updated_at >= user.updated_at
    assert store.get(user.id) == changed


def test_update_me_moves_the_username(service: UserService, store: FakeUserStore) -> None:
    user = service.register(identity("a"), user_in(username="ada"))
    service.update_me(principal_of(user), UserPatch(username="countess"))
    other = service.register(identity("b"), user_in(username="ada"))  # the old name is free again
    assert other.username == "ada"
    assert store.get(user.id).username == "countess"  # type: ignore[union-attr]


def test_update_me_to_a_taken_username_is_a_validation_error(service: UserService, store: FakeUserStore) -> None:
    service.register(identity("a"), user_in(username="ada"))
    bob = service.register(identity("b"), user_in(username="bob"))
    with pytest.raises(ValidationFailed) as raised:
        service.update_me(principal_of(bob), UserPatch(username="Ada"))
    assert raised.value.extra["errors"][0]["field"] == "username"
    assert store.get(bob.id) == bob


def test_update_me_racing_another_change_of_the_same_user_keeps_both(
    service: UserService, store: FakeUserStore, docs: DocumentStore
) -> None:
    """Compare and set: the patch is applied again on top of what the other writer saved."""
    user = service.register(identity(), user_in())
    docs.before_next_commit(lambda: service.update_me(principal_of(user), UserPatch(phone_number="+447700900999")))
    changed = service.update_me(principal_of(user), UserPatch(name="Ada King"))
    assert (changed.name, changed.phone_number) == ("Ada King", "+447700900999")
    assert store.get(user.id) == changed


def test_renames_racing_for_one_username_leave_one_owner(
    service: UserService, store: FakeUserStore, docs: DocumentStore
) -> None:
    ada = service.register(identity("a"), user_in(username="ada"))
    bob = service.register(identity("b"), user_in(username="bob"))
    docs.before_next_commit(lambda: service.update_me(principal_of(ada), UserPatch(username="countess")))
    with pytest.raises(ValidationFailed):
        service.update_me(principal_of(bob), UserPatch(username="Countess"))
    assert store.get(ada.id).username == "countess"  # type: ignore[union-attr]
    assert store.get(bob.id).username == "bob"  # type: ignore[union-attr]
    other = service.register(identity("c"), user_in(username="ada"))  # ada's old name was given back
    assert other.username == "ada"


@pytest.mark.parametrize("body", [{}, {"name": None}, {"role": "admin"}, {"email": "x@example.com"}])
def test_profile_patch_must_change_an_allowed_field(body: dict[str, Any]) -> None:
    with pytest.raises(pydantic.ValidationError):
        UserPatch.model_validate(body)


# ---- companies ----------------------------------------------------------------------------


def test_admin_reads_own_company(service: UserService) -> None:
    admin = service.register(identity("admin"), user_in("admin"))
    company = service.company(principal_of(admin), admin.company_id)  # type: ignore[arg-type]
    assert company.id == admin.company_id


def test_admin_of_another_company_is_forbidden(service: UserService) -> None:
    first = service.register(identity("a1"), user_in("admin", username="first"))
    second = service.register(identity("a2"), user_in("admin", username="second"))
    with pytest.raises(Forbidden):
        service.company(principal_of(second), first.company_id)  # type: ignore[arg-type]


def test_buyer_cannot_read_a_company(service: UserService) -> None:
    admin = service.register(identity("admin"), user_in("admin", username="boss"))
    buyer = service.register(identity("buyer"), user_in())
    with pytest.raises(Forbidden):
        service.company(principal_of(buyer), admin.company_id)  # type: ignore[arg-type]


def test_unknown_company_is_not_found(service: UserService) -> None:
    with pytest.raises(NotFound):
        service.company(Principal("u1", "admin", "no-such-company"), "no-such-company")


# ---- from token to principal --------------------------------------------------------------


@pytest.fixture
def verifier() -> FakeVerifier:
    return FakeVerifier()


@pytest.fixture
def authenticator(verifier: FakeVerifier, store: FakeUserStore) -> Authenticator:
    return Authenticator(verifier, store)


def test_registered_callers_token_gives_their_principal(
    authenticator: Authenticator, verifier: FakeVerifier, service: UserService
) -> None:
    token = verifier.issue("admin-1")
    admin = service.register(Identity(FakeVerifier.ISSUER, "admin-1"), user_in("admin"))
    principal = authenticator.principal(f"Bearer {token}")
    assert principal == Principal(admin.id, "admin", admin.company_id)
    assert principal.manages(admin.company_id)  # type: ignore[arg-type]


def test_unregistered_caller_is_not_registered(authenticator: Authenticator, verifier: FakeVerifier) -> None:
    with pytest.raises(NotRegistered):
        authenticator.principal(f"Bearer {verifier.issue('newcomer')}")


def test_bad_token_is_unauthenticated(authenticator: Authenticator) -> None:
    with pytest.raises(Unauthenticated):
        authenticator.principal("Bearer forged")
    with pytest.raises(Unauthenticated):
        authenticator.principal(None)


def test_principal_is_cached_but_the_token_is_verified_every_time(
    authenticator: Authenticator, verifier: FakeVerifier, service: UserService, store: FakeUserStore
) -> None:
    token = verifier.issue("buyer-1")
    service.register(Identity(FakeVerifier.ISSUER, "buyer-1"), user_in())
    authenticator.principal(f"Bearer {token}")
    store.access_for = lambda key: pytest.fail("looked up again")  # type: ignore[method-assign,assignment]
    authenticator.principal(f"Bearer {token}")
    assert verifier.calls == 2


def test_optional_principal_is_anonymous_without_token_or_registration(
    authenticator: Authenticator, verifier: FakeVerifier
) -> None:
    assert authenticator.optional_principal(None) is None
    assert authenticator.optional_principal(f"Bearer {verifier.issue('newcomer')}") is None
    with pytest.raises(Unauthenticated):
        authenticator.optional_principal("Bearer forged")
