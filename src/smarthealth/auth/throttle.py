"""Login throttling kept in PostgreSQL, so every worker and host sees the same counts."""

from __future__ import annotations

import math

from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncSession

from smarthealth.errors import AppError

WINDOW_MINUTES = 15
ACCOUNT_FAILURES = 5
ADDRESS_FAILURES = 20


def _retry_query(column: str) -> TextClause:
    """Seconds until the oldest of the last `limit` failures leaves the window."""
    return text(
        f"""
        SELECT extract(epoch FROM (attempted_at + interval '{WINDOW_MINUTES} minutes' - now()))
        FROM smart_health.login_attempts
        WHERE {column} = :value AND NOT succeeded
          AND attempted_at > now() - interval '{WINDOW_MINUTES} minutes'
        ORDER BY attempted_at DESC
        OFFSET :offset LIMIT 1
        """
    )


_RETRY_BY = {column: _retry_query(column) for column in ("email", "client_address")}


async def lock_account(session: AsyncSession, email: str) -> None:
    """Serialise attempts on one account so parallel guesses cannot slip past the count."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtext('login:' || :email))"), {"email": email}
    )


async def _retry_after(session: AsyncSession, column: str, value: str, limit: int) -> int | None:
    seconds = await session.scalar(_RETRY_BY[column], {"value": value, "offset": limit - 1})
    return max(1, math.ceil(float(seconds))) if seconds is not None else None


async def retry_after(session: AsyncSession, email: str, address: str | None) -> int | None:
    """Seconds until another attempt is allowed, or None when not throttled."""
    wait = await _retry_after(session, "email", email, ACCOUNT_FAILURES)
    if wait is None and address is not None:
        wait = await _retry_after(session, "client_address", address, ADDRESS_FAILURES)
    return wait


def throttled(wait: int) -> AppError:
    return AppError(
        429,
        "RATE_LIMITED",
        "Demasiados intentos fallidos; intente de nuevo más tarde.",
        {"retry_after_seconds": wait},
        headers={"Retry-After": str(wait)},
    )


async def record_attempt(
    session: AsyncSession, email: str, address: str | None, succeeded: bool
) -> None:
    await session.execute(
        text(
            "INSERT INTO smart_health.login_attempts (email, client_address, succeeded) "
            "VALUES (:email, CAST(:address AS inet), :ok)"
        ),
        {"email": email, "address": address, "ok": succeeded},
    )
    if succeeded:
        await session.execute(
            text(
                "DELETE FROM smart_health.login_attempts WHERE attempted_at < now() - "
                "interval '1 day'"
            )
        )
