"""`smarthealth ask` from a terminal: same pipeline, answer and sources printed, audited as cli."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import asyncpg

from smarthealth.config import to_libpq_url
from tests.conftest import insert_user


def _run(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SMARTHEALTH_DATA_DIR"}
    env.update(DATABASE_URL=to_libpq_url(db_url), COLUMNS="200")
    return subprocess.run(
        [sys.executable, "-m", "smarthealth.cli", "ask", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_ask_prints_the_answer_with_sources_and_audits_it(db_url: str, password_hash: str) -> None:
    email = "cli-ask@hospital.test"
    asyncio.run(insert_user(db_url, password_hash, "clinician", email=email))

    async def _patient() -> asyncpg.Record:
        conn = await asyncpg.connect(to_libpq_url(db_url))
        try:
            return await conn.fetchrow(
                "SELECT t.code, p.document_number FROM smart_health.patients p "
                "JOIN smart_health.document_types t USING (document_type_id) WHERE EXISTS "
                "(SELECT 1 FROM smart_health.medical_records r WHERE r.patient_id = p.patient_id) "
                "ORDER BY p.patient_id LIMIT 1"
            )
        finally:
            await conn.close()

    patient = asyncio.run(_patient())
    result = _run(
        db_url,
        "--document",
        f"{patient['code']}:{patient['document_number']}",
        "--as",
        email,
        "¿Cuál fue la última presión arterial?",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "presión arterial registrada fue" in result.stdout and "mmHg" in result.stdout
    assert "Fuentes" in result.stdout and "vitals" in result.stdout

    async def _audit() -> asyncpg.Record:
        conn = await asyncpg.connect(to_libpq_url(db_url))
        try:
            return await conn.fetchrow(
                "SELECT channel, outcome FROM smart_health.audit_logs "
                "WHERE event_type = 'query.outcome' ORDER BY audit_log_id DESC LIMIT 1"
            )
        finally:
            await conn.close()

    assert dict(asyncio.run(_audit())) == {"channel": "cli", "outcome": "answered"}

    unknown = _run(db_url, "--document", "CC:000000001", "--as", email, "¿Tiene alergias?")
    assert unknown.returncode == 1 and "PATIENT_NOT_FOUND" in unknown.stdout
    malformed = _run(db_url, "--document", "1234", "¿Tiene alergias?")
    assert malformed.returncode == 2


def test_ask_says_the_database_is_unavailable_without_a_traceback() -> None:
    """The database going away under `ask` (here: nothing listens) is one line, exit 1."""
    from io import StringIO

    from rich.console import Console

    from smarthealth.cli_ask import run_ask

    out = StringIO()
    code = asyncio.run(
        run_ask(
            "postgresql+asyncpg://nobody@127.0.0.1:1/none",
            "CC:123456",
            "¿Tiene alergias?",
            "",
            Console(file=out, width=200),
        )
    )
    assert code == 1
    assert "DATABASE_UNAVAILABLE" in out.getvalue() and "Traceback" not in out.getvalue()
