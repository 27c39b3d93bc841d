"""Checks run before serving: the server answers, pgvector can be created, schema is current."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine


class DatabaseNotReadyError(RuntimeError):
    """The configured database cannot host SmartHealth; the message says why and what to do."""


async def _check_vector(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            available = await conn.scalar(
                text("SELECT count(*) FROM pg_available_extensions WHERE name = 'vector'")
            )
            if not available:
                raise DatabaseNotReadyError(
                    "The PostgreSQL server has no 'vector' extension (pgvector). Install pgvector "
                    "on the server (e.g. the pgvector/pgvector image or the postgresql-NN-pgvector "
                    "package), or unset DATABASE_URL/DB_HOST to use the embedded database."
                )
            try:
                await conn.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
                await conn.commit()
            except Exception as exc:  # permission problems and the like
                raise DatabaseNotReadyError(
                    "The 'vector' extension exists on the server but this user cannot create it "
                    f"({type(exc).__name__}). Run 'CREATE EXTENSION vector;' as a superuser in "
                    "the application database, or grant the privilege."
                ) from None
    except DatabaseNotReadyError:
        raise
    except Exception as exc:
        raise DatabaseNotReadyError(
            f"Cannot connect to the database ({type(exc).__name__}). Check DATABASE_URL or "
            "DB_HOST/DB_PORT/DB_NAME/DB_USER/DB_PASSWORD."
        ) from None
    finally:
        await engine.dispose()


def check_database(url: str) -> None:
    """Synchronous entry point for the CLI (runs its own event loop)."""
    asyncio.run(_check_vector(url))
