"""The embedded PostgreSQL: start, reuse, crash recovery, ownership of shutdown."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from smarthealth.db.embedded import EmbeddedPostgres


@pytest.fixture
def pgdata(tmp_path: Path) -> Path:
    return tmp_path / "data" / "pgdata"


def _postmaster_pid(pgdata: Path) -> int:
    return int((pgdata / "postmaster.pid").read_text().splitlines()[0])


def test_starts_with_pgvector_and_is_reused(pgdata: Path) -> None:
    first = EmbeddedPostgres(pgdata).start()
    try:
        assert first.started_here
        assert (
            first.psql(
                "CREATE EXTENSION IF NOT EXISTS vector; SELECT '[1,2]'::vector <=> '[2,4]'::vector"
            )
            == "0"
        )
        second = EmbeddedPostgres(pgdata).start()
        assert not second.started_here
        assert second.url() == first.url()
        second.stop()  # not the owner: must leave the server running
        assert first.is_running()
    finally:
        first.stop()
    assert not first.is_running()


def test_recovers_after_postmaster_was_killed(pgdata: Path) -> None:
    server = EmbeddedPostgres(pgdata).start()
    pid = _postmaster_pid(pgdata)
    os.kill(pid, signal.SIGKILL)
    psutil.Process(pid).wait(10) if psutil.pid_exists(pid) else None
    assert (pgdata / "postmaster.pid").exists()  # the crash left its lock file behind
    restarted = EmbeddedPostgres(pgdata).start()
    try:
        assert restarted.started_here
        assert _postmaster_pid(pgdata) != pid
        assert restarted.psql("SELECT 41 + 1") == "42"
    finally:
        restarted.stop()
        server.started_here = False


def test_ignores_stale_pid_file_of_an_unrelated_live_process(pgdata: Path) -> None:
    EmbeddedPostgres(pgdata).start().stop()
    sleeper = subprocess.Popen(["sleep", "60"])  # a live pid that is not postgres
    try:
        lines = ["0", str(pgdata), "0", "5432", str(pgdata), "", "0 0", "ready"]
        lines[0] = str(sleeper.pid)
        (pgdata / "postmaster.pid").write_text("\n".join(lines) + "\n")
        server = EmbeddedPostgres(pgdata).start()
        try:
            assert server.started_here
            assert server.psql("SELECT 1") == "1"
        finally:
            server.stop()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_stop_leaves_no_process_behind(pgdata: Path) -> None:
    server = EmbeddedPostgres(pgdata).start()
    pid = _postmaster_pid(pgdata)
    server.stop()
    deadline = time.monotonic() + 10
    while psutil.pid_exists(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not psutil.pid_exists(pid)
    assert not (pgdata / "postmaster.pid").exists()
