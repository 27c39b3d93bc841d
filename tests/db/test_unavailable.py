"""The database-unavailable classifier looks through SQLAlchemy's wrapper to the driver's error:
an outage is 503, a bad argument or a bug is not (issue 10, item 5)."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from smarthealth.db.engine import create_engine, create_sessionmaker
from smarthealth.errors import is_database_unavailable
from smarthealth.models import User


def _wrapped(driver_error: BaseException) -> DBAPIError:
    """What SQLAlchemy raises: its DBAPIError around the driver's, not marked as a disconnect."""
    try:
        try:
            raise driver_error
        except BaseException as exc:
            raise DBAPIError("SELECT 1", None, exc) from exc  # type: ignore[arg-type]
    except DBAPIError as wrapped:
        return wrapped


@pytest.mark.parametrize(
    "driver_error",
    [
        asyncpg.CannotConnectNowError("the database system is shutting down"),
        asyncpg.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.TooManyConnectionsError("sorry, too many clients already"),
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.InterfaceError("cannot perform operation: connection is closed"),
    ],
)
def test_driver_outages_under_the_wrapper_are_unavailable(driver_error: BaseException) -> None:
    assert is_database_unavailable(_wrapped(driver_error))
    assert is_database_unavailable(driver_error)


@pytest.mark.parametrize(
    "error",
    [
        _wrapped(
            asyncpg.InterfaceError("cannot perform operation: another operation is in progress")
        ),
        _wrapped(asyncpg.UniqueViolationError("duplicate key value")),
        _wrapped(asyncpg.QueryCanceledError("canceling statement due to user request")),
        IntegrityError("INSERT", None, Exception("duplicate")),
        ValueError("a bug"),
        FileNotFoundError("a missing file that is not a database socket"),
    ],
)
def test_other_errors_are_not(error: BaseException) -> None:
    assert not is_database_unavailable(error)


def test_pool_timeout_is_unavailable() -> None:
    assert is_database_unavailable(PoolTimeoutError("QueuePool limit reached"))


async def test_a_server_that_is_not_there_is_unavailable(tmp_path: object) -> None:
    engine = create_engine(f"postgresql+asyncpg://postgres@/none?host={tmp_path}", pool_size=1)
    try:
        with pytest.raises(Exception) as raised:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        assert is_database_unavailable(raised.value)
    finally:
        await engine.dispose()


async def test_an_out_of_range_argument_is_not_an_outage(db_url: str) -> None:
    """The probe's GET /users/2147483648 reached asyncpg: that is a bug to fix (422), not a 503."""
    engine = create_engine(db_url, pool_size=1)
    try:
        async with create_sessionmaker(engine)() as session:
            with pytest.raises(Exception) as raised:
                await session.get(User, 2**31)
        assert not is_database_unavailable(raised.value)
    finally:
        await engine.dispose()
