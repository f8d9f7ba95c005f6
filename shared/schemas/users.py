"""Users and companies."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal, Self

from pydantic import BaseModel, Field, StringConstraints, model_validator

from shared.models import Company, User
from shared.schemas.common import CountryCode, Email, Name, Phone, Strict, Username

# Any text up to a bound: a code of another shape is just an unknown code (422 invalid_invitation).
InvitationCode = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class CompanyIn(Strict):
    name: Name
    address: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
    email: Email
    country_code: CountryCode
    phone_number: Phone
    registration_number: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


class UserIn(Strict):
    name: Name
    email: Email
    username: Username
    country_code: CountryCode
    phone_number: Phone
    role: Literal["user", "admin"]
    company: CompanyIn | None = None
    invitation: InvitationCode | None = Field(
        default=None,
        description="role admin, instead of company: the code of an invitation to join the inviting company"
        " (unknown, used, revoked or expired: 422 invalid_invitation)",
    )

    @model_validator(mode="after")
    def _company_matches_role(self) -> Self:
        if self.company is not None and self.invitation is not None:
            raise ValueError("give company or invitation, not both")
        if self.role == "admin" and self.company is None and self.invitation is None:
            raise ValueError("company (or invitation) is required when role is admin")
        if self.role == "user" and self.company is not None:
            raise ValueError("company is only for role admin")
        if self.role == "user" and self.invitation is not None:
            raise ValueError("invitation is only for role admin")
        return self


class UserPatch(Strict):
    name: Name | None = None
    username: Username | None = None
    country_code: CountryCode | None = None
    phone_number: Phone | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if not self.model_fields_set:
            raise ValueError("give at least one field to change")
        for name in self.model_fields_set:
            if getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class UserOut(BaseModel):
    id: str
    name: str
    email: str
    username: str
    country_code: str
    phone_number: str
    role: Literal["user", "admin"]
    company_id: str | None
    created_at: dt.datetime

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(
            id=user.id,
            name=user.name,
            email=user.email,
            username=user.username,
            country_code=user.country_code,
            phone_number=user.phone_number,
            role=user.role,
            company_id=user.company_id,
            created_at=user.created_at,
        )


class CompanyOut(BaseModel):
    id: str
    name: str
    address: str
    email: str
    country_code: str
    phone_number: str
    registration_number: str
    created_at: dt.datetime

    @classmethod
    def of(cls, company: Company) -> CompanyOut:
        return cls(**company.__dict__)
