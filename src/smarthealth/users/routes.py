"""`/users/…`: own profile for everyone; listing and other accounts for administrators."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from sqlalchemy import func, select
from starlette.convertors import Convertor, register_url_convertor

from smarthealth.audit.service import ClientInfo
from smarthealth.auth.dependencies import CurrentUser, forbidden, require_roles
from smarthealth.contract import AUTHENTICATED, JSON_BODY, MediaTypeRoute, error_responses
from smarthealth.db.session import SessionDep
from smarthealth.errors import AppError
from smarthealth.inputs import INT4_MAX
from smarthealth.models import User
from smarthealth.users.schemas import Role, UserOut, UserPage, UserPatch, UserReplace
from smarthealth.users.service import (
    check_current_password,
    current_password_missing,
    update_user,
)

router = APIRouter(prefix="/users", tags=["users"], route_class=MediaTypeRoute)

AdminUser = Annotated[User, Depends(require_roles("admin"))]
# users.user_id is an int4: anything outside 1..2^31-1 cannot name an account (422, not a 500
# from the driver).
UserId = Annotated[int, Path(ge=1, le=INT4_MAX)]


class _AccountIdConvertor(Convertor[str]):
    """Any path segment but `me`, so `/users/me` with a method it lacks (DELETE) is 405 rather
    than a 422 for "me" not being a number; the value is validated (and bounded) as `UserId`."""

    regex = "(?!me/?$)[^/]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("account", _AccountIdConvertor())


_CHANGE = error_responses(*AUTHENTICATED, *JSON_BODY, 403, 409, 429)
_CHANGE_DOC = (
    " Changing one's own password needs `current_password` (a wrong one is 403 "
    "`INVALID_CURRENT_PASSWORD` and counts as a failed login: 429 after 5); only an "
    "administrator may change a role or the active flag (403 otherwise); an e-mail in use is "
    "409 `EMAIL_TAKEN`."
)


@router.get(
    "/me",
    response_model=UserOut,
    summary="Mi perfil",
    description="Who may call: any signed-in user (their own account).",
    responses=error_responses(*AUTHENTICATED),
)
async def me(user: CurrentUser) -> User:
    return user


# Before `/{user_id}`: routes match in order, and "me" is not an id.
@router.put(
    "/me",
    response_model=UserOut,
    summary="Reemplazar mi perfil",
    description="Who may call: any signed-in user (their own account)." + _CHANGE_DOC,
    responses=_CHANGE,
)
async def replace_me(
    body: UserReplace, caller: CurrentUser, session: SessionDep, request: Request
) -> User:
    return await replace_user(caller.user_id, body, caller, session, request)


@router.patch(
    "/me",
    response_model=UserOut,
    summary="Modificar mi perfil",
    description="Who may call: any signed-in user (their own account)." + _CHANGE_DOC,
    responses=_CHANGE,
)
async def patch_me(
    body: UserPatch, caller: CurrentUser, session: SessionDep, request: Request
) -> User:
    return await patch_user(caller.user_id, body, caller, session, request)


@router.get(
    "/",
    response_model=UserPage,
    summary="Listar cuentas (administrador)",
    description="Who may call: administrators.",
    responses=error_responses(*AUTHENTICATED, 403, 422),
)
async def list_users(
    _: AdminUser,
    session: SessionDep,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 20,
    role: Role | None = None,
    is_active: bool | None = None,
) -> UserPage:
    filters = []
    if role is not None:
        filters.append(User.role == role)
    if is_active is not None:
        filters.append(User.is_active == is_active)
    total = await session.scalar(select(func.count()).select_from(User).where(*filters)) or 0
    rows = await session.scalars(
        select(User)
        .where(*filters)
        .order_by(User.user_id)
        .offset((page - 1) * page_size)
        .limit(page_size)
    )
    return UserPage(
        items=[UserOut.model_validate(u) for u in rows],
        total=total,
        page=page,
        page_size=page_size,
    )


async def _target(session: SessionDep, caller: User, user_id: int) -> User:
    """Administrators reach any account; everyone else only their own (403 otherwise)."""
    if caller.role != "admin" and caller.user_id != user_id:
        raise forbidden()
    user = await session.get(User, user_id)
    if user is None:
        raise AppError(404, "USER_NOT_FOUND", "La cuenta no existe.")
    return user


def _authorise_changes(caller: User, target: User, changes: dict[str, Any]) -> None:
    if caller.role == "admin":
        return
    if ("role" in changes and changes["role"] != target.role) or (
        "is_active" in changes and changes["is_active"] != target.is_active
    ):
        raise AppError(403, "FORBIDDEN", "No puede cambiar su propio rol ni su estado.")


@router.get(
    "/{user_id:account}",
    response_model=UserOut,
    summary="Ver una cuenta",
    description="Who may call: administrators (any account), or the account's owner.",
    responses=error_responses(*AUTHENTICATED, 403, 404, 422),
)
async def get_user(user_id: UserId, caller: CurrentUser, session: SessionDep) -> User:
    return await _target(session, caller, user_id)


async def _change(
    user_id: int, changes: dict[str, Any], caller: User, session: SessionDep, request: Request
) -> User:
    """Apply a PUT/PATCH body. Changing one's own password (administrators included) needs the
    current one; an administrator setting another account's password does not."""
    current_password = changes.pop("current_password", None)
    own_password = "password" in changes and user_id == caller.user_id
    if own_password and current_password is None:
        raise current_password_missing()
    client = ClientInfo.from_request(request)
    async with session.begin():
        target = await _target(session, caller, user_id)
        _authorise_changes(caller, target, changes)
        refusal = (
            await check_current_password(session, target, current_password, client)
            if own_password
            else None
        )
        if refusal is None:
            return await update_user(session, target, changes, actor=caller, client=client)
    raise refusal  # the failed attempt was recorded and committed above


@router.put(
    "/{user_id:account}",
    response_model=UserOut,
    summary="Reemplazar el perfil de una cuenta",
    description="Who may call: administrators (any account), or the account's owner." + _CHANGE_DOC,
    responses=error_responses(*AUTHENTICATED, *JSON_BODY, 403, 404, 409, 429),
)
async def replace_user(
    user_id: UserId, body: UserReplace, caller: CurrentUser, session: SessionDep, request: Request
) -> User:
    return await _change(user_id, body.model_dump(exclude_none=True), caller, session, request)


@router.patch(
    "/{user_id:account}",
    response_model=UserOut,
    summary="Modificar una cuenta",
    description="Who may call: administrators (any account), or the account's owner." + _CHANGE_DOC,
    responses=error_responses(*AUTHENTICATED, *JSON_BODY, 403, 404, 409, 429),
)
async def patch_user(
    user_id: UserId, body: UserPatch, caller: CurrentUser, session: SessionDep, request: Request
) -> User:
    return await _change(
        user_id, body.model_dump(exclude_unset=True, exclude_none=True), caller, session, request
    )


@router.delete(
    "/{user_id:account}",
    response_model=UserOut,
    summary="Desactivar una cuenta",
    description="Who may call: administrators (any account), or the account's owner. The "
    "account stays; its access ends at once.",
    responses=error_responses(*AUTHENTICATED, 403, 404, 422),
)
async def deactivate_user(
    user_id: UserId, caller: CurrentUser, session: SessionDep, request: Request
) -> User:
    async with session.begin():
        target = await _target(session, caller, user_id)
        return await update_user(
            session,
            target,
            {"is_active": False},
            actor=caller,
            client=ClientInfo.from_request(request),
        )
