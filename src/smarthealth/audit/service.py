"""Writing audit events. The database assigns ids, timestamps and the hash chain (trigger)."""

from __future__ import annotations

import ipaddress
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog
from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from smarthealth.errors import AppError, is_database_unavailable
from smarthealth.inputs import storable
from smarthealth.models import AuditLog

if TYPE_CHECKING:
    from smarthealth.db.session import Database

log = structlog.get_logger(__name__)

MAX_USER_AGENT = 400


@dataclass(frozen=True)
class ClientInfo:
    """Where a request came from, as the audit trail records it."""

    channel: str = "rest"
    address: str | None = None
    user_agent: str | None = None

    @classmethod
    def of(cls, channel: str, host: str | None, user_agent: str | None) -> ClientInfo:
        try:
            address = str(ipaddress.ip_address(host)) if host else None
        except ValueError:
            address = None  # e.g. the test client's "testclient"
        # A header recorded as evidence: made storable rather than refused.
        agent = storable(user_agent)[:MAX_USER_AGENT] if user_agent else None
        return cls(channel, address, agent)

    @classmethod
    def from_request(cls, request: Request, channel: str = "rest") -> ClientInfo:
        host = request.client.host if request.client else None
        return cls.of(channel, host, request.headers.get("user-agent"))


CLI = ClientInfo(channel="cli")


@dataclass
class AuditEvent:
    event_type: str
    client: ClientInfo
    user_id: int | None = None
    outcome: str = "success"
    patient_id: int | None = None
    session_id: uuid.UUID | None = None
    sequence_chat_id: int | None = None
    document_type_id: int | None = None
    document_number: str | None = None
    question: str | None = None
    response_json: dict[str, Any] | None = None
    latency_ms: int | None = None
    source_ids: list[int] | None = None
    details: dict[str, Any] | None = field(default=None)


async def record_event(session: AsyncSession, event: AuditEvent) -> None:
    """Add the event to the caller's transaction: it is written if and only if the change is."""
    session.add(
        AuditLog(
            event_type=event.event_type,
            user_id=event.user_id,
            outcome=event.outcome,
            channel=event.client.channel,
            client_address=event.client.address,
            user_agent=event.client.user_agent,
            patient_id=event.patient_id,
            session_id=event.session_id,
            sequence_chat_id=event.sequence_chat_id,
            document_type_id=event.document_type_id,
            document_number=event.document_number,
            question=event.question,
            response_json=event.response_json,
            latency_ms=event.latency_ms,
            source_ids=event.source_ids,
            details=event.details,
        )
    )
    await session.flush()


def audit_unavailable() -> AppError:
    """The access could not be recorded: nothing of the record may be shown."""
    return AppError(
        503,
        "AUDIT_UNAVAILABLE",
        "No se pudo registrar el acceso a la historia clínica; no se muestra información.",
    )


async def record_access(database: Database, event: AuditEvent) -> None:
    """Commit an access row before anything of the record is sent, or refuse to show anything
    (503 AUDIT_UNAVAILABLE; a database that went away stays its own error)."""
    try:
        async with database.sessions() as session, session.begin():
            await record_event(session, event)
    except Exception as exc:
        if is_database_unavailable(exc):
            raise
        log.error("audit_access_failed", error_type=type(exc).__name__)
        raise audit_unavailable() from None
