"""Request and response bodies for accounts."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from smarthealth.auth.passwords import MAX_PASSWORD
from smarthealth.inputs import identity_text, secret_text

Role = Literal["admin", "clinician", "auditor"]


def _normalise_email(value: str) -> str:
    value = value.strip().lower()
    local, _, domain = value.partition("@")
    if not local or "." not in domain or " " in value or domain.startswith("."):
        raise ValueError("correo electrónico no válido")
    return value


# Names and e-mails follow the input policy (smarthealth.inputs): no control characters, no
# bidi overrides, NFC; passwords are refused the same characters but kept as typed.
Email = Annotated[
    str,
    StringConstraints(min_length=3, max_length=254),
    AfterValidator(identity_text),
    AfterValidator(_normalise_email),
]
FullName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=2, max_length=160),
    AfterValidator(identity_text),
]
Password = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_PASSWORD), AfterValidator(secret_text)
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
    password: Password
    full_name: FullName


class UserReplace(BaseModel):
    """PUT: the whole editable profile. `role` and `is_active` are for administrators;
    `current_password` is required to change one's own password (ignored otherwise)."""

    model_config = ConfigDict(extra="forbid")

    email: Email
    full_name: FullName
    password: Password | None = None
    current_password: Password | None = None
    role: Role | None = None
    is_active: bool | None = None


class UserPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email | None = None
    full_name: FullName | None = None
    password: Password | None = None
    current_password: Password | None = None
    role: Role | None = None
    is_active: bool | None = None


class PageParams(BaseModel):
    page: int = Field(default=1, ge=1, le=100_000)
    page_size: int = Field(default=20, ge=1, le=100)
