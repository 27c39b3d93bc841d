"""Run Alembic programmatically (the CLI and the server both call this)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)


def current_revision(url: str) -> str | None:
    """The revision the database is at (None when it was never migrated)."""
    import asyncio

    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    async def _read() -> str | None:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                exists = await conn.scalar(
                    text("SELECT to_regclass('smart_health.alembic_version') IS NOT NULL")
                )
                if not exists:
                    return None
                version = await conn.scalar(
                    text("SELECT version_num FROM smart_health.alembic_version")
                )
                return str(version) if version is not None else None
        finally:
            await engine.dispose()

    return asyncio.run(_read())
