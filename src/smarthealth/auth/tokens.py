"""JWT access tokens: HS256 only, claims sub, role, iat, exp, jti, type.

`iat` carries microseconds (RFC 7519 allows a non-integer NumericDate): a token is compared
with the instant its account's password, role or active flag last changed, and whole seconds
could not tell a token issued just before a change from one issued just after it in the same
second."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass
from typing import Any

import jwt

from smarthealth.inputs import INT4_MAX

ALGORITHM = "HS256"
TOKEN_TYPE = "access"  # noqa: S105 - a claim value, not a secret
_SUBJECT = re.compile(r"[1-9][0-9]{0,9}")  # ASCII digits only ("²".isdigit() is True)


class TokenExpiredError(Exception):
    pass


class TokenInvalidError(Exception):
    pass


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_in: int
    jti: str


@dataclass(frozen=True)
class TokenClaims:
    user_id: int
    jti: str
    issued_at: dt.datetime
    expires_at: dt.datetime


def issue_token(user_id: int, role: str, secret: str, minutes: int) -> IssuedToken:
    now = dt.datetime.now(dt.UTC)
    jti = uuid.uuid4().hex
    claims: dict[str, Any] = {
        "sub": str(user_id),
        "role": role,  # informational only: the role is read from the database per request
        "iat": now.timestamp(),  # microseconds kept: see the module's docstring
        "exp": now + dt.timedelta(minutes=minutes),
        "jti": jti,
        "type": TOKEN_TYPE,
    }
    return IssuedToken(jwt.encode(claims, secret, algorithm=ALGORITHM), minutes * 60, jti)


def decode_token(token: str, secret: str) -> TokenClaims:
    """Verify signature, algorithm (HS256 only: `none` and others are refused) and claims."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            options={"require": ["sub", "iat", "exp", "jti", "type"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise TokenExpiredError from exc
    except jwt.PyJWTError as exc:
        raise TokenInvalidError from exc
    subject = claims.get("sub")
    if (
        claims.get("type") != TOKEN_TYPE
        or not isinstance(subject, str)
        or not _SUBJECT.fullmatch(subject)
        or int(subject) > INT4_MAX  # users.user_id is an int4: no such account can exist
    ):
        raise TokenInvalidError
    issued = claims["iat"]
    if isinstance(issued, bool) or not isinstance(issued, int | float):
        raise TokenInvalidError  # PyJWT lets a numeric string through
    try:
        issued_at = dt.datetime.fromtimestamp(issued, dt.UTC)
        expires_at = dt.datetime.fromtimestamp(int(claims["exp"]), dt.UTC)
    except (OverflowError, ValueError, OSError):  # a date outside years 1…9999
        raise TokenInvalidError from None
    return TokenClaims(
        user_id=int(subject),
        jti=str(claims["jti"]),
        issued_at=issued_at,
        expires_at=expires_at,
    )
