"""Request and response bodies of the HTTP API (pydantic), one module per resource. The OpenAPI
document is built from these; this package exports every body under one name space."""

from shared.schemas.audit import ActorOut, AuditEntryOut, ObjectRef
from shared.schemas.bookings import BookingIn, BookingOut
from shared.schemas.common import (
    MAX_CAPACITY,
    DevTokenIn,
    DevTokenOut,
    Health,
    ListQuery,
    Page,
    Problem,
    Strict,
)
from shared.schemas.events import BookingCounts, EventFields, EventIn, EventOut, EventPatch, EventSearch, EventStatsOut
from shared.schemas.payments import PaymentIn, PaymentOut
from shared.schemas.promo import PromoCodeIn, PromoCodeOut, PromoCodePatch
from shared.schemas.team import InvitationCreated, InvitationIn, InvitationOut
from shared.schemas.tickets import (
    AttendeeOut,
    BatchIn,
    BatchOut,
    CheckinIn,
    CheckinOut,
    DeviceCreated,
    DeviceIn,
    DeviceList,
    DeviceOut,
    RevocationsOut,
    ScanIn,
    ScanResultOut,
    TicketKeyOut,
    TicketKeysOut,
    TicketList,
    TicketOut,
)
from shared.schemas.users import CompanyIn, CompanyOut, UserIn, UserOut, UserPatch
from shared.schemas.waitlist import WaitlistEntryOut, WaitlistJoinIn

__all__ = [
    "MAX_CAPACITY",
    "ActorOut",
    "AttendeeOut",
    "AuditEntryOut",
    "BatchIn",
    "BatchOut",
    "BookingCounts",
    "BookingIn",
    "BookingOut",
    "CheckinIn",
    "CheckinOut",
    "CompanyIn",
    "CompanyOut",
    "DevTokenIn",
    "DevTokenOut",
    "DeviceCreated",
    "DeviceIn",
    "DeviceList",
    "DeviceOut",
    "EventFields",
    "EventIn",
    "EventOut",
    "EventPatch",
    "EventSearch",
    "EventStatsOut",
    "Health",
    "InvitationCreated",
    "InvitationIn",
    "InvitationOut",
    "ListQuery",
    "ObjectRef",
    "Page",
    "PaymentIn",
    "PaymentOut",
    "Problem",
    "PromoCodeIn",
    "PromoCodeOut",
    "PromoCodePatch",
    "RevocationsOut",
    "ScanIn",
    "ScanResultOut",
    "Strict",
    "TicketKeyOut",
    "TicketKeysOut",
    "TicketList",
    "TicketOut",
    "UserIn",
    "UserOut",
    "UserPatch",
    "WaitlistEntryOut",
    "WaitlistJoinIn",
]
