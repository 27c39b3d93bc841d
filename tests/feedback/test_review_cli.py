"""`smarthealth eval review`: the 👎 answers of a period appended to a JSON-lines file for the
gold set's curators (a real process against the test database)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg

from smarthealth.app import create_app
from smarthealth.config import to_libpq_url
from tests.conftest import bearer, insert_user, lifespan_client, make_settings


def _run(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SMARTHEALTH_DATA_DIR"}
    env.update(DATABASE_URL=to_libpq_url(db_url), COLUMNS="200")
    return subprocess.run(
        [sys.executable, "-m", "smarthealth.cli", "eval", "review", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def _rated_turns(db_url: str, password_hash: str) -> dict[str, dict[str, Any]]:
    """Two answers by a clinician over REST: one rated 👎 (with a reason), one 👍."""
    app = create_app(make_settings(), database_url=db_url)
    headers = bearer(app, await insert_user(db_url, password_hash, "clinician"))
    conn = await asyncpg.connect(to_libpq_url(db_url))
    try:
        patient = await conn.fetchrow(
            "SELECT document_type_id, document_number FROM smart_health.patients p WHERE EXISTS "
            "(SELECT 1 FROM smart_health.prescriptions r WHERE r.patient_id = p.patient_id) "
            "ORDER BY patient_id LIMIT 1"
        )
    finally:
        await conn.close()
    answers: dict[str, dict[str, Any]] = {}
    async for client in lifespan_client(app):
        for rating, question in (
            ("down", "¿Qué medicamentos tiene prescritos?"),
            ("up", "¿Tiene alergias?"),
        ):
            asked = await client.post(
                "/query/",
                json={**dict(patient), "question": question},
                headers=headers,
            )
            assert asked.status_code == 200, asked.text
            body = asked.json()
            rated = await client.post(
                "/feedback",
                json={
                    "session_id": body["session_id"],
                    "sequence_chat_id": body["sequence_chat_id"],
                    "rating": rating,
                    "reason": "incorrect" if rating == "down" else None,
                    "comment": "Revisar" if rating == "down" else None,
                },
                headers=headers,
            )
            assert rated.status_code == 201, rated.text
            answers[rating] = body
    return answers


def test_review_appends_the_down_turns_once(
    tmp_path: Path, db_url: str, password_hash: str
) -> None:
    answers = asyncio.run(_rated_turns(db_url, password_hash))
    down = answers["down"]
    out = tmp_path / "review.jsonl"
    since = (dt.date.today() - dt.timedelta(days=1)).isoformat()

    first = _run(db_url, "--since", since, "--out", str(out))
    assert first.returncode == 0, first.stdout + first.stderr
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(records) == 1
    record = records[0]
    assert record["session_id"] == down["session_uuid"]
    assert record["sequence_chat_id"] == down["sequence_chat_id"]
    assert record["question"] == "¿Qué medicamentos tiene prescritos?"
    assert record["answer"] == down["answer"]["text"]
    assert record["reason"] == "incorrect" and record["comment"] == "Revisar"
    assert record["sources"] and [s["chunk_id"] for s in record["sources"]] == [
        s["chunk_id"] for s in down["sources"]
    ]
    assert record["sources"][0]["text"] == down["sources"][0]["text"]
    assert record["plan"]["subject"] == "medication"

    again = _run(db_url, "--since", since, "--out", str(out))
    assert again.returncode == 0, again.stderr
    assert "0 respuestas" in again.stderr and "1 ya estaban" in again.stderr
    assert len(out.read_text(encoding="utf-8").splitlines()) == 1

    empty = tmp_path / "none.jsonl"
    future = _run(db_url, "--since", "2999-01-01", "--until", "2999-01-02", "--out", str(empty))
    assert future.returncode == 0 and not empty.read_text()

    backwards = _run(db_url, "--since", "2026-02-01", "--until", "2026-01-01", "--out", str(out))
    assert backwards.returncode == 2
    bad_date = _run(db_url, "--since", "ayer", "--out", str(out))
    assert bad_date.returncode == 2

    async def _audit() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(to_libpq_url(db_url))
        try:
            return await conn.fetch(
                "SELECT channel, details FROM smart_health.audit_logs "
                "WHERE event_type = 'feedback.read' ORDER BY audit_log_id"
            )
        finally:
            await conn.close()

    audit = asyncio.run(_audit())
    assert [r["channel"] for r in audit] == ["cli", "cli", "cli"]
    assert [json.loads(r["details"])["rows"] for r in audit] == [1, 0, 0]
