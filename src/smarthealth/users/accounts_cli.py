"""Account operations for the command line (no HTTP request, channel `cli`)."""

from __future__ import annotations

import secrets

from sqlalchemy import func, select

from smarthealth.audit.service import CLI
from smarthealth.db.engine import create_engine, create_sessionmaker
from smarthealth.models import User
from smarthealth.users.service import create_user

DEMO_ACCOUNTS = (
    ("admin@smarthealth.demo", "Administración Demo", "admin"),
    ("clinico@smarthealth.demo", "Dra. Clínica Demo", "clinician"),
    ("auditor@smarthealth.demo", "Auditoría Demo", "auditor"),
)


async def create_account(url: str, email: str, password: str, full_name: str, role: str) -> int:
    engine = create_engine(url, pool_size=1)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            user = await create_user(
                session,
                email=email.strip().lower(),
                password=password,
                full_name=full_name,
                role=role,
                is_active=True,
                event_type="user.created",
                actor_id=None,
                client=CLI,
            )
            return user.user_id
    finally:
        await engine.dispose()


async def create_demo_accounts(url: str) -> list[tuple[str, str, str]]:
    """Create the three demo accounts when the database has no users; return (email, role,
    password) for each one created, so the caller can show the passwords once."""
    engine = create_engine(url, pool_size=1)
    created: list[tuple[str, str, str]] = []
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            if await session.scalar(select(func.count()).select_from(User)):
                return []
            for email, name, role in DEMO_ACCOUNTS:
                password = secrets.token_urlsafe(12)
                await create_user(
                    session,
                    email=email,
                    password=password,
                    full_name=name,
                    role=role,
                    is_active=True,
                    event_type="user.created",
                    actor_id=None,
                    client=CLI,
                )
                created.append((email, role, password))
    finally:
        await engine.dispose()
    return created
