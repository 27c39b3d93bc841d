"""Request and response bodies for accounts."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from smarthealth.auth.passwords import MAX_PASSWORD, MIN_PASSWORD
from smarthealth.inputs import (
    BIDI,
    CONTROL,
    LINE_PATTERN,
    WHITESPACE,
    identity_text,
    secret_text,
    text_schema,
)

Role = Literal["admin", "clinician", "auditor"]


MAX_EMAIL = 254  # users.email
MAX_FULL_NAME = 160  # users.full_name


def _normalise_email(value: str) -> str:
    value = value.strip().lower()
    local, _, domain = value.partition("@")
    if not local or "." not in domain or " " in value or domain.startswith("."):
        raise ValueError("correo electrónico no válido")
    if len(value) > MAX_EMAIL:  # lower-casing can lengthen a text ("İ" is two code points)
        raise ValueError(f"el correo no puede tener más de {MAX_EMAIL} caracteres")
    return value


# Names and e-mails follow the input policy (smarthealth.inputs): no control characters, no
# bidi overrides, NFC; passwords are refused the same characters but kept as typed.
Email = Annotated[
    str,
    StringConstraints(min_length=3, max_length=MAX_EMAIL),
    AfterValidator(identity_text),
    AfterValidator(_normalise_email),
    text_schema(None, 3, MAX_EMAIL, format="email", examples=["clinico@hospital.co"]),
]
_NAME_CHAR = f"[^{CONTROL}{BIDI}]"
_NAME_EDGE = f"[^{CONTROL}{BIDI}{WHITESPACE}]"
FullName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=2, max_length=MAX_FULL_NAME),
    AfterValidator(identity_text),
    # again once normalised to NFC, which can lengthen a text (U+0958 is two code points)
    StringConstraints(max_length=MAX_FULL_NAME),
    text_schema(
        f"^{_NAME_EDGE}{_NAME_CHAR}*{_NAME_EDGE}$",
        2,
        MAX_FULL_NAME,
        examples=["Ana María Restrepo"],
    ),
]
# The current password, as typed (any length that can be one).
Password = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_PASSWORD),
    AfterValidator(secret_text),
    text_schema(LINE_PATTERN, 1, MAX_PASSWORD, format="password"),
]
# `current_password` is documented as a string: a null one counts as absent (422 when the
# password changes), so the document does not offer null.
CurrentPassword = Annotated[
    Password | None, text_schema(LINE_PATTERN, 1, MAX_PASSWORD, format="password")
]
# A new password: the policy's 8-128 characters (checked, with its Spanish reason, when set;
# it must not be the account's e-mail either).
NewPassword = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_PASSWORD),
    AfterValidator(secret_text),
    text_schema(LINE_PATTERN, MIN_PASSWORD, MAX_PASSWORD, format="password"),
]


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    user_id: int
    email: str
    full_name: str
    role: Role
    is_active: bool
    created_at: dt.datetime
    updated_at: dt.datetime
    last_login_at: dt.datetime | None


class UserPage(BaseModel):
    items: list[UserOut]
    total: int
    page: int
    page_size: int


class RegisterIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email
    password: NewPassword
    full_name: FullName


# One's own new password needs the current one (an administrator setting another account's
# does not: the document asks for it always, which the server accepts too).
_PASSWORD_NEEDS_CURRENT: dict[str, Any] = {"dependentRequired": {"password": ["current_password"]}}


class UserReplace(BaseModel):
    """PUT: the whole editable profile. `role` and `is_active` are for administrators;
    `current_password` is required to change one's own password (ignored otherwise)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_PASSWORD_NEEDS_CURRENT)

    email: Email
    full_name: FullName
    password: NewPassword | None = None
    current_password: CurrentPassword = None
    role: Role | None = None
    is_active: bool | None = None


class UserPatch(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_PASSWORD_NEEDS_CURRENT)

    email: Email | None = None
    full_name: FullName | None = None
    password: NewPassword | None = None
    current_password: CurrentPassword = None
    role: Role | None = None
    is_active: bool | None = None


class PageParams(BaseModel):
    page: int = Field(default=1, ge=1, le=100_000)
    page_size: int = Field(default=20, ge=1, le=100)
