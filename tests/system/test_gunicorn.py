"""gunicorn with uvicorn workers, as the README documents: any worker serves any turn."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import httpx

from smarthealth.auth.tokens import issue_token
from smarthealth.config import to_libpq_url
from tests.conftest import insert_user
from tests.live_server import free_port

SECRET = "gunicorn-test-" + "g" * 40


def test_two_workers_share_sessions_through_postgresql(
    tmp_path: Path, db_url: str, password_hash: str
) -> None:
    user = asyncio.run(insert_user(db_url, password_hash))

    async def _patient() -> asyncpg.Record:
        conn = await asyncpg.connect(to_libpq_url(db_url))
        try:
            return await conn.fetchrow(
                "SELECT document_type_id, document_number FROM smart_health.patients "
                "ORDER BY patient_id LIMIT 1"
            )
        finally:
            await conn.close()

    patient = asyncio.run(_patient())
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": to_libpq_url(db_url),
        "SECRET_KEY": SECRET,
        "SMARTHEALTH_DATA_DIR": str(tmp_path),
    }
    gunicorn = Path(sys.executable).with_name("gunicorn")
    log = (tmp_path / "gunicorn.log").open("wb")
    process = subprocess.Popen(
        [
            str(gunicorn),
            "smarthealth.app:create_app()",
            "-k",
            "uvicorn_worker.UvicornWorker",
            "-w",
            "2",
            "-b",
            f"127.0.0.1:{port}",
            "--timeout",
            "60",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert process.poll() is None, (tmp_path / "gunicorn.log").read_text()
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        headers = {"Authorization": f"Bearer {issue_token(user, 'clinician', SECRET, 10).token}"}
        body = {
            "document_type_id": patient["document_type_id"],
            "document_number": patient["document_number"],
        }
        with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
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
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
        log.close()
    log_text = (tmp_path / "gunicorn.log").read_text()
    assert len(set(re.findall(r"Booting worker with pid: (\d+)", log_text))) == 2
