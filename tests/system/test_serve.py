"""`smarthealth serve` as a real process: embedded database, external URL, JSON logs."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil
import pytest

from smarthealth.auth.tokens import issue_token
from smarthealth.config import to_libpq_url
from tests.conftest import insert_user
from tests.live_server import free_port, wait_healthy


@contextmanager
def serve(
    env: dict[str, str], cwd: Path, *args: str, stop: signal.Signals = signal.SIGINT
) -> Iterator[tuple[str, Path]]:
    port = free_port()
    log_path = cwd / "server.log"
    full_env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "DB_HOST", "SMARTHEALTH_DATA_DIR")
    }
    full_env.update(env)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "smarthealth.cli", "serve", "--port", str(port), *args],
            cwd=cwd,
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_healthy(process, base, log_path, 120)
            yield base, log_path
        finally:
            process.send_signal(stop)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def _open_websocket(url: str) -> None:
    """A handshake with a (bad) token in the query string, as browsers send it."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    async with connect(url) as ws:
        with contextlib.suppress(ConnectionClosed):
            await ws.recv()


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_serve_with_embedded_database_starts_and_stops_it(
    tmp_path: Path, stop: signal.Signals
) -> None:
    data_dir = tmp_path / "data"
    with serve({"SMARTHEALTH_DATA_DIR": str(data_dir)}, tmp_path, stop=stop) as (base, log_path):
        assert httpx.get(f"{base}/health").json()["database"]["status"] == "up"
        pid = int((data_dir / "pgdata" / "postmaster.pid").read_text().splitlines()[0])
        assert psutil.pid_exists(pid)
        httpx.get(f"{base}/", headers={"X-Request-ID": "trace-0001"}, params={"token": "s3cr3t"})
        asyncio.run(_open_websocket(base.replace("http", "ws") + "/ws/chat?token=s3cr3t-ws"))
    deadline = time.monotonic() + 15
    while psutil.pid_exists(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not psutil.pid_exists(pid), "serve started the embedded server and must stop it"

    request_lines = []
    for line in log_path.read_text().splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            if entry.get("event") == "request":
                request_lines.append(entry)
    traced = [e for e in request_lines if e.get("request_id") == "trace-0001"]
    assert traced and traced[0]["path"] == "/" and traced[0]["status"] == 200
    assert "s3cr3t" not in log_path.read_text()
    assert "/ws/chat" in log_path.read_text()  # the handshake was logged, without its token


def test_serve_with_external_database_url(tmp_path: Path, db_url: str, password_hash: str) -> None:
    secret = "serve-test-" + "s" * 40
    env = {
        "DATABASE_URL": to_libpq_url(db_url),
        "SMARTHEALTH_DATA_DIR": str(tmp_path / "none"),
        "SECRET_KEY": secret,
    }
    user = asyncio.run(insert_user(db_url, password_hash))
    token = issue_token(user, "clinician", secret, 5).token
    with serve(env, tmp_path) as (base, _):
        body = httpx.get(f"{base}/health").json()
        assert body["database"]["status"] == "up"
        types = httpx.get(
            f"{base}/catalog/document-types", headers={"Authorization": f"Bearer {token}"}
        ).json()
        assert len(types) == 8
    assert not (tmp_path / "none" / "pgdata").exists(), "no embedded server with DATABASE_URL"


def test_serve_fails_clearly_when_the_database_is_unreachable(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "SMARTHEALTH_DATA_DIR"}
    env["DATABASE_URL"] = "postgresql://nobody@127.0.0.1:1/none"
    result = subprocess.run(
        [sys.executable, "-m", "smarthealth.cli", "serve"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "Cannot connect to the database" in result.stderr
