"""gunicorn with uvicorn workers, as the README documents: any worker serves any turn."""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path

import httpx

from smarthealth.auth.tokens import issue_token
from smarthealth.config import to_libpq_url
from tests.conftest import insert_user
from tests.live_server import GunicornServer, first_patient

SECRET = "gunicorn-test-" + "g" * 40


def test_two_workers_share_sessions_through_postgresql(
    tmp_path: Path, db_url: str, password_hash: str
) -> None:
    user = asyncio.run(insert_user(db_url, password_hash))
    patient = asyncio.run(first_patient(db_url))
    env = {
        **os.environ,
        "DATABASE_URL": to_libpq_url(db_url),
        "SECRET_KEY": SECRET,
        "SMARTHEALTH_DATA_DIR": str(tmp_path),
    }
    with GunicornServer(env, tmp_path / "gunicorn.log") as server:
        headers = {"Authorization": f"Bearer {issue_token(user, 'clinician', SECRET, 10).token}"}
        body = {
            "document_type_id": patient["document_type_id"],
            "document_number": patient["document_number"],
        }
        with httpx.Client(base_url=server.http, headers=headers, timeout=30) as client:
            first = client.post("/query/", json={**body, "question": "¿Tiene alergias?"})
            assert first.status_code == 200, first.text
            session_id = first.json()["session_id"]
            sequences = [
                client.post(
                    "/query/",
                    json={
                        **body,
                        "question": "¿Cuál fue la última presión?",
                        "session_id": session_id,
                    },
                ).json()["sequence_chat_id"]
                for _ in range(6)
            ]
        assert sequences == [2, 3, 4, 5, 6, 7]
    log_text = (tmp_path / "gunicorn.log").read_text()
    assert len(set(re.findall(r"Booting worker with pid: (\d+)", log_text))) == 2
