"""JWT access tokens: HS256 only, claims sub, role, iat, exp, jti, type."""

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
    expires_at: dt.datetime


def issue_token(user_id: int, role: str, secret: str, minutes: int) -> IssuedToken:
    now = dt.datetime.now(dt.UTC)
    jti = uuid.uuid4().hex
    claims: dict[str, Any] = {
        "sub": str(user_id),
        "role": role,  # informational only: the role is read from the database per request
        "iat": now,
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
    try:
        expires_at = dt.datetime.fromtimestamp(int(claims["exp"]), dt.UTC)
    except (OverflowError, ValueError, OSError):  # an `exp` past year 9999
        raise TokenInvalidError from None
    return TokenClaims(user_id=int(subject), jti=str(claims["jti"]), expires_at=expires_at)
