"""A real uvicorn server in a background thread, serving an app built by the test."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import asyncpg
import httpx
import uvicorn
from fastapi import FastAPI

from tests.conftest import fetch


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(
    process: subprocess.Popen[bytes], base: str, log_path: Path, seconds: float
) -> None:
    """Until `base`/health answers 200; fails with the server's log if it exits or never does."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, log_path.read_text()
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError("server did not become healthy:\n" + log_path.read_text())


class LiveServer:
    def __init__(self, app: FastAPI) -> None:
        self.port = free_port()
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_config=None,
            access_log=False,
            lifespan="on",  # ws: "auto", the sans-I/O websockets protocol, as `smarthealth serve`
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)


class GunicornServer:
    """`gunicorn smarthealth.app:create_app()` with two uvicorn workers, as the README runs it.

    `env` is the whole environment of the master; its output goes to `log`.
    """

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log_path = log
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def __enter__(self) -> GunicornServer:
        gunicorn = Path(sys.executable).with_name("gunicorn")
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    str(gunicorn),
                    "smarthealth.app:create_app()",
                    "-k",
                    "uvicorn_worker.UvicornWorker",
                    "-w",
                    "2",
                    "-b",
                    f"127.0.0.1:{self.port}",
                    "--timeout",
                    "60",
                ],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_healthy(self.process, self.http, self.log_path, 90)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(30)


async def first_patient(db_url: str) -> asyncpg.Record:
    """The document of the seeded patient with the lowest id."""
    rows = await fetch(
        db_url,
        "SELECT document_type_id, document_number FROM smart_health.patients "
        "ORDER BY patient_id LIMIT 1",
    )
    assert rows
    return rows[0]
