"""Creating and changing accounts; each change writes exactly one audit event."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from smarthealth.audit.service import AuditEvent, ClientInfo, record_event
from smarthealth.auth import throttle
from smarthealth.auth.passwords import hash_password, password_problem, verify_password
from smarthealth.errors import AppError
from smarthealth.models import User

# Changes that end the account's sessions: every token issued before them is refused.
REVOKING_CHANGES = frozenset({"password", "role", "is_active"})


def email_taken() -> AppError:
    return AppError(409, "EMAIL_TAKEN", "Ya existe una cuenta con ese correo.")


def invalid_password(reason: str) -> AppError:
    return AppError(422, "INVALID_INPUT", reason, {"fields": [{"field": "password"}]})


def current_password_missing() -> AppError:
    return AppError(
        422,
        "INVALID_INPUT",
        "Para cambiar su contraseña indique también la contraseña actual.",
        {"fields": [{"field": "current_password", "type": "missing"}]},
    )


def current_password_wrong() -> AppError:
    return AppError(403, "INVALID_CURRENT_PASSWORD", "La contraseña actual no es correcta.")


async def check_current_password(
    session: AsyncSession, user: User, current_password: str, client: ClientInfo
) -> AppError | None:
    """Before a change of one's own password: None when `current_password` is right, else the
    refusal to raise once the caller has committed what was recorded here.

    A guess is a login attempt: throttled with the same counts (per account and per client
    address, `auth.throttle`), and a wrong one counts against them and is audited
    (`user.password_change_failed`), so a stolen token cannot be used to find the password."""
    await throttle.lock_account(session, user.email)
    wait = await throttle.retry_after(session, user.email, client.address)
    if wait is not None:
        outcome, refusal = "rate_limited", throttle.throttled(wait)
    elif await verify_password(current_password, user.password_hash):
        return None
    else:
        await throttle.record_attempt(session, user.email, client.address, succeeded=False)
        outcome, refusal = "bad_credentials", current_password_wrong()
    await record_event(
        session,
        AuditEvent(
            "user.password_change_failed",
            client,
            user_id=user.user_id,
            outcome=outcome,
            details={"target_user_id": user.user_id},
        ),
    )
    return refusal


async def create_user(
    session: AsyncSession,
    *,
    email: str,
    password: str,
    full_name: str,
    role: str,
    is_active: bool,
    event_type: str,
    actor_id: int | None,
    client: ClientInfo,
) -> User:
    problem = password_problem(password, email)
    if problem:
        raise invalid_password(problem)
    if await session.scalar(select(User.user_id).where(User.email == email)) is not None:
        raise email_taken()
    user = User(
        email=email,
        password_hash=await hash_password(password),
        full_name=full_name,
        role=role,
        is_active=is_active,
    )
    session.add(user)
    try:
        await session.flush()
    except IntegrityError:  # a concurrent registration won the race
        raise email_taken() from None
    await record_event(
        session,
        AuditEvent(
            event_type,
            client,
            user_id=actor_id if actor_id is not None else user.user_id,
            details={"target_user_id": user.user_id, "role": role, "is_active": is_active},
        ),
    )
    return user


async def update_user(
    session: AsyncSession,
    user: User,
    changes: dict[str, Any],
    *,
    actor: User,
    client: ClientInfo,
) -> User:
    """Apply `changes` (already authorised). The audit event names what kind of change it was."""
    changed: list[str] = []
    new_email = changes.get("email")
    if new_email is not None and new_email != user.email:
        clash = await session.scalar(
            select(User.user_id).where(User.email == new_email, User.user_id != user.user_id)
        )
        if clash is not None:
            raise email_taken()
        user.email = new_email
        changed.append("email")
    if changes.get("full_name") is not None and changes["full_name"] != user.full_name:
        user.full_name = changes["full_name"]
        changed.append("full_name")
    if changes.get("password") is not None:
        problem = password_problem(changes["password"], user.email)
        if problem:
            raise invalid_password(problem)
        user.password_hash = await hash_password(changes["password"])
        changed.append("password")
    previous_role = user.role
    if changes.get("role") is not None and changes["role"] != user.role:
        user.role = changes["role"]
        changed.append("role")
    if changes.get("is_active") is not None and changes["is_active"] != user.is_active:
        user.is_active = changes["is_active"]
        changed.append("is_active")
    if not changed:
        return user
    user.updated_at = func.now()
    if REVOKING_CHANGES.intersection(changed):
        # Tokens issued before now stop working (auth.dependencies compares their `iat`). The
        # application's clock, with microseconds, as `iat` is written.
        user.tokens_valid_from = dt.datetime.now(dt.UTC)
    if "is_active" in changed and not user.is_active:
        event_type = "user.deactivated"
    elif "role" in changed:
        event_type = "user.role_changed"
    elif "password" in changed:
        event_type = "user.password_changed"  # the row names the field, never the value
    else:
        event_type = "user.updated"
    details: dict[str, Any] = {"target_user_id": user.user_id, "fields": changed}
    if "role" in changed:
        details.update(previous_role=previous_role, role=user.role)
    try:
        await session.flush()
    except IntegrityError:
        raise email_taken() from None
    await record_event(
        session, AuditEvent(event_type, client, user_id=actor.user_id, details=details)
    )
    await session.refresh(user)
    return user
