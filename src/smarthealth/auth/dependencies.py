"""Who is calling: the bearer token → the user, loaded from the database on every request."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from smarthealth.auth.tokens import TokenExpiredError, TokenInvalidError, decode_token
from smarthealth.db.session import Database, DatabaseDep
from smarthealth.errors import AppError
from smarthealth.models import User

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/auth/token", auto_error=False)


def unauthorized() -> AppError:
    return AppError(
        401,
        "UNAUTHORIZED",
        "Se requiere un token de acceso válido.",
        headers={"WWW-Authenticate": "Bearer"},
    )


def session_ended() -> AppError:
    """The token predates a change of the account's password, role or active flag."""
    return AppError(
        401,
        "UNAUTHORIZED",
        "La sesión terminó porque cambió la contraseña, el rol o el estado de la cuenta; "
        "inicie sesión de nuevo.",
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


def forbidden() -> AppError:
    return AppError(403, "FORBIDDEN", "No tiene permiso para realizar esta acción.")


async def user_from_token(token: str | None, secret: str, database: Database) -> User:
    """Shared by REST and WebSocket: deactivated users and changed roles apply immediately, and
    a token issued before the account's password, role or active flag last changed is refused.

    Uses its own short session, so the route's session starts clean (routes open their own
    transactions)."""
    if not token:
        raise unauthorized()
    try:
        claims = decode_token(token, secret)
    except TokenExpiredError:
        raise AppError(
            401,
            "TOKEN_EXPIRED",
            "La sesión expiró; inicie sesión de nuevo.",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        ) from None
    except TokenInvalidError:
        raise unauthorized() from None
    async with database.sessions() as session:
        user = await session.get(User, claims.user_id)
    if user is None or not user.is_active:
        raise unauthorized()
    if user.tokens_valid_from is not None and claims.issued_at < user.tokens_valid_from:
        raise session_ended()
    return user


async def current_user(
    request: Request,
    database: DatabaseDep,
    token: Annotated[str | None, Depends(oauth2_scheme)],
) -> User:
    secret: str = request.app.state.secret_key
    return await user_from_token(token, secret, database)


CurrentUser = Annotated[User, Depends(current_user)]


def require_roles(*roles: str) -> Callable[[User], Awaitable[User]]:
    async def _check(user: CurrentUser) -> User:
        if user.role not in roles:
            raise forbidden()
        return user

    return _check
