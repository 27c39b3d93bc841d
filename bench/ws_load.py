"""WebSocket load test: many open `/ws/chat` sockets, some of them asking questions back to back.

    .venv/bin/python bench/ws_load.py [--patients 300] [--sockets 200] [--askers 50] \
        [--seconds 60] [--questions-per-asker N]

One run, in a fresh temporary data folder:
1. embedded PostgreSQL, migrations, seed (`--patients`, `--seed`), chunks + embeddings;
2. one clinician per socket (so no asking socket shares the per-user question limit);
3. `smarthealth serve` (one uvicorn process) on a free 127.0.0.1 port, offline engine;
4. one warm-up question (not measured), then `--sockets` sockets are opened at once and kept
   open for `--seconds`: each pings every `--ping-interval` s and checks the pong; the first
   `--askers` of them ask questions, one every `--interval` s (default 60 / `--rate-limit`: each
   asker as fast as the server's per-user limit allows, spread over the minute; `--interval 0`:
   the next as soon as `complete` arrives), three turns per random patient in one chat session,
   then another patient.
Measures connection and protocol errors (any `error` message, an unexpected close, a missing or
late pong, events out of order), questions completed and per second, time to first token and
to `complete`, pong round trips (a proxy for the server's event-loop lag), and the CPU the
server and the database used. Prints one JSON document; exits 1 if any error happened.

Every loop is bounded: pings by `--seconds / --ping-interval`, questions by
`--questions-per-asker` (default: one per second of the run) and by the deadline, every wait by
a timeout, and the whole measured phase by `--seconds + --answer-timeout + 30` s.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import datetime as dt
import json
import math
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from smarthealth.auth.tokens import issue_token
from smarthealth.config import to_asyncpg_url, to_libpq_url
from smarthealth.db import migrate
from smarthealth.db.embedded import EmbeddedPostgres
from smarthealth.ingest.seed import seed_database
from smarthealth.log_config import configure_logging
from smarthealth.rag.embeddings import LocalE5Embedder
from smarthealth.rag.indexer import embed_pending, sync_queued

# What a clinician asks, a patient at a time; the short ones lean on the previous turn.
QUESTIONS = (
    "¿Qué medicamentos tiene prescritos actualmente?",
    "¿y la dosis?",
    "¿Tiene alergias registradas?",
    "¿Cuál fue la última presión arterial?",
    "¿Cuándo es su próxima cita?",
    "¿Qué diagnósticos tiene?",
    "¿Desde cuándo tiene ese diagnóstico?",
    "Hazme un resumen de la historia clínica",
    "¿Qué le encontraron en el examen físico de la última consulta?",
    "¿Ha tenido citas canceladas o a las que no asistió?",
    "¿Qué le mandaron tomar en la última consulta?",
    "¿Cuál es su frecuencia cardiaca más reciente?",
    "¿Tiene diagnóstico de hipertensión o diabetes?",
    "¿Qué especialistas lo han atendido?",
)
TURNS_PER_PATIENT = 3
SECRET = "ws-load-" + "s" * 40
HOST = "127.0.0.1"  # the only address this benchmark ever connects to
CONNECT_TIMEOUT = 15.0
PONG_TIMEOUT = 10.0
RATE_WINDOW = 61.0  # the server counts one minute of audit rows; a second of margin
MAX_SAMPLES = 20  # error messages kept for the report


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return round(ordered[index], 1)


def summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    return {
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "max": round(max(values), 1),
        "n": len(values),
    }


@dataclass
class Stats:
    connect_ms: list[float] = field(default_factory=list)
    connection_errors: int = 0
    protocol_errors: int = 0
    samples: list[str] = field(default_factory=list)
    pings: int = 0
    pong_ms: list[float] = field(default_factory=list)
    started: int = 0
    completed: int = 0
    ttft_ms: list[float] = field(default_factory=list)
    complete_ms: list[float] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    rate_limit_waits: int = 0
    rate_limit_wait_seconds: float = 0.0
    first_sent: float = math.inf
    last_done: float = -math.inf

    def connection_error(self, message: str) -> None:
        self.connection_errors += 1
        self._sample("connection: " + message)

    def protocol_error(self, message: str) -> None:
        self.protocol_errors += 1
        self._sample("protocol: " + message)

    def _sample(self, message: str) -> None:
        if len(self.samples) < MAX_SAMPLES:
            self.samples.append(message[:300])


class Client:
    """One socket. A single reader routes pongs to the pinger and answer events to the asker."""

    def __init__(self, index: int, ws: ClientConnection, stats: Stats) -> None:
        self.index = index
        self.ws = ws
        self.stats = stats
        self.pongs: collections.deque[asyncio.Future[float]] = collections.deque()
        self.events: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self.closing = False
        self.reader = asyncio.create_task(self._read(), name=f"ws-reader-{index}")

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                try:
                    message = json.loads(raw)
                    kind = message["type"]
                except (ValueError, TypeError, KeyError):
                    self.stats.protocol_error(f"socket {self.index}: unreadable frame {raw!r:.80}")
                    continue
                if kind == "pong":
                    if self.pongs:
                        future = self.pongs.popleft()
                        if not future.done():
                            future.set_result(time.perf_counter())
                    else:
                        self.stats.protocol_error(f"socket {self.index}: pong without a ping")
                    continue
                if kind == "error":
                    error = message.get("error") or {}
                    self.stats.protocol_error(
                        f"socket {self.index}: error {error.get('code')}: {error.get('message')}"
                    )
                await self.events.put(message)
            if not self.closing:
                code = self.ws.close_code
                reason = self.ws.close_reason
                self.stats.protocol_error(f"socket {self.index}: closed by server {code} {reason}")
        except ConnectionClosed as exc:
            if not self.closing:
                self.stats.protocol_error(f"socket {self.index}: connection lost: {exc}")
        finally:
            for future in self.pongs:
                future.cancel()
            await self.events.put(None)

    async def close(self) -> None:
        self.closing = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(), 10)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.reader, 10)
        if not self.reader.done():
            self.reader.cancel()


async def open_client(index: int, url: str, stats: Stats) -> Client | None:
    started = time.perf_counter()
    try:
        ws = await connect(url, open_timeout=CONNECT_TIMEOUT, close_timeout=5, ping_interval=None)
    except Exception as exc:
        stats.connection_error(f"socket {index}: {type(exc).__name__}: {exc}")
        return None
    try:
        first = json.loads(await asyncio.wait_for(ws.recv(), CONNECT_TIMEOUT))
    except Exception as exc:
        stats.connection_error(f"socket {index}: no `connected`: {type(exc).__name__}: {exc}")
        await ws.close()
        return None
    if first.get("type") != "connected":
        stats.connection_error(f"socket {index}: first message {first!r:.120}")
        await ws.close()
        return None
    stats.connect_ms.append((time.perf_counter() - started) * 1000)
    return Client(index, ws, stats)


async def pinger(client: Client, deadline: float, interval: float, rng: random.Random) -> None:
    stats = client.stats
    await asyncio.sleep(min(rng.uniform(0, interval), max(0.0, deadline - time.perf_counter())))
    for _ in range(math.ceil((deadline - time.perf_counter()) / interval) + 1):
        tick = time.perf_counter()
        if tick >= deadline or client.reader.done():
            return
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        client.pongs.append(future)
        try:
            await client.ws.send(json.dumps({"type": "ping"}))
            stats.pings += 1
            received = await asyncio.wait_for(future, PONG_TIMEOUT)
            stats.pong_ms.append((received - tick) * 1000)
        except TimeoutError:
            stats.protocol_error(f"socket {client.index}: no pong within {PONG_TIMEOUT:.0f} s")
        except (asyncio.CancelledError, ConnectionClosed):
            if client.reader.done() or client.closing:
                return  # the reader already reported why
            raise
        await asyncio.sleep(max(0.0, min(tick + interval, deadline) - time.perf_counter()))


@dataclass(frozen=True)
class Patient:
    document_type_id: int
    document_number: str


async def ask_one(
    client: Client, body: dict[str, Any], limit: float
) -> tuple[dict[str, Any] | None, bool]:
    """Send one query and follow its events. Returns (complete body or None, socket alive)."""
    stats = client.stats
    sent = time.perf_counter()
    await client.ws.send(json.dumps({"type": "query", **body}, ensure_ascii=False))
    stats.started += 1
    stats.first_sent = min(stats.first_sent, sent)
    expected = ("status", "status", "status", "stream_start")
    seen: list[str] = []
    first_token: float | None = None
    tokens = 0
    while True:
        remaining = sent + limit - time.perf_counter()
        try:
            message = await asyncio.wait_for(client.events.get(), max(remaining, 0.01))
        except TimeoutError:
            stats.protocol_error(f"socket {client.index}: no `complete` within {limit:.0f} s")
            return None, True
        if message is None:
            return None, False  # closed; the reader reported it
        kind = message["type"]
        if kind == "error":
            return None, True  # counted by the reader
        if len(seen) < len(expected):
            if kind != expected[len(seen)]:
                stats.protocol_error(f"socket {client.index}: got {kind} after {seen}")
                return None, True
        elif kind == "token" and seen[-1] in ("stream_start", "token"):
            if first_token is None:
                first_token = time.perf_counter()
            tokens += 1
        elif kind == "stream_end" and seen[-1] == "token":
            pass
        elif kind == "complete" and seen[-1] == "stream_end":
            done = time.perf_counter()
            if first_token is None or not message.get("answer", {}).get("text"):
                stats.protocol_error(f"socket {client.index}: `complete` without an answer")
                return None, True
            stats.completed += 1
            stats.last_done = max(stats.last_done, done)
            stats.ttft_ms.append((first_token - sent) * 1000)
            stats.complete_ms.append((done - sent) * 1000)
            stats.tokens.append(tokens)
            return message, True
        else:
            stats.protocol_error(f"socket {client.index}: got {kind} after {seen[-3:]}")
            return None, True
        seen.append(kind)


async def asker(
    client: Client,
    patients: list[Patient],
    deadline: float,
    max_questions: int,
    rate_limit: int,
    interval: float,
    answer_timeout: float,
    rng: random.Random,
) -> None:
    """Questions until the deadline, one every `interval` s (the first at a random moment of the
    first interval; 0 = back to back); never more than the server's per-user limit."""
    stats = client.stats
    finished: collections.deque[float] = collections.deque()  # when each answer came back
    offset = rng.randrange(len(QUESTIONS))
    patient = rng.choice(patients)
    session_id: str | None = None
    next_start = time.perf_counter() + rng.uniform(0, interval)
    for n in range(max_questions):
        await asyncio.sleep(max(0.0, min(next_start, deadline) - time.perf_counter()))
        next_start += interval
        now = time.perf_counter()
        while finished and finished[0] <= now - RATE_WINDOW:
            finished.popleft()
        if len(finished) >= rate_limit:  # only when the server answers faster than the limit
            wait = finished[0] + RATE_WINDOW - now
            if now + wait >= deadline:
                return
            stats.rate_limit_waits += 1
            stats.rate_limit_wait_seconds += wait
            await asyncio.sleep(wait)
        if time.perf_counter() >= deadline or client.reader.done():
            return
        if n and n % TURNS_PER_PATIENT == 0:
            patient, session_id = rng.choice(patients), None
        body: dict[str, Any] = {
            "document_type_id": patient.document_type_id,
            "document_number": patient.document_number,
            "question": QUESTIONS[(offset + n) % len(QUESTIONS)],
        }
        if session_id is not None:
            body["session_id"] = session_id
        try:
            complete, alive = await ask_one(client, body, answer_timeout)
        except ConnectionClosed:
            return  # the reader reports the close
        finished.append(time.perf_counter())
        if not alive:
            return
        session_id = complete.get("session_id") if complete else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            total += times.user + times.system
    return total


def postgres_processes(pgdata: Path) -> list[psutil.Process]:
    """The postmaster of this run's data folder and its backends (pid from postmaster.pid)."""
    try:
        postmaster = psutil.Process(int((pgdata / "postmaster.pid").read_text().split()[0]))
        return [postmaster, *postmaster.children()]
    except (OSError, ValueError, psutil.Error):
        return []


async def db_transactions(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        value = await conn.fetchval(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database "
            "WHERE datname = current_database()"
        )
        return int(value or 0)
    finally:
        await conn.close()


async def prepare(args: argparse.Namespace, url: str) -> tuple[dict[str, Any], list[Patient]]:
    dsn = to_libpq_url(url)
    await asyncio.to_thread(migrate.upgrade, url)
    started = time.perf_counter()
    await seed_database(url, args.patients, args.seed, today=dt.date.today())
    seeded = time.perf_counter()
    conn = await asyncpg.connect(dsn)
    try:
        synced = await sync_queued(conn)
        chunked = time.perf_counter()
        await embed_pending(conn, LocalE5Embedder())
        embedded = time.perf_counter()
        chunks = await conn.fetchval("SELECT count(*) FROM smart_health.clinical_chunks")
        rows = await conn.fetch(
            "SELECT document_type_id, document_number FROM smart_health.patients "
            "ORDER BY patient_id"
        )
        # One clinician per socket plus one for the warm-up question.
        await conn.executemany(
            "INSERT INTO smart_health.users (email, password_hash, full_name, role) "
            "VALUES ($1, 'x', $2, 'clinician')",
            [(f"ws-load-{i}@hospital.test", f"Carga {i}") for i in range(args.sockets + 1)],
        )
    finally:
        await conn.close()
    setup = {
        "seed_seconds": round(seeded - started, 1),
        "chunk_seconds": round(chunked - seeded, 1),
        "embed_seconds": round(embedded - chunked, 1),
        "patients_chunked": synced.patients,
        "chunks": chunks,
        "users": args.sockets + 1,
    }
    return setup, [Patient(r["document_type_id"], r["document_number"]) for r in rows]


async def user_ids(dsn: str) -> list[int]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT user_id FROM smart_health.users WHERE email LIKE 'ws-load-%' ORDER BY user_id"
        )
    finally:
        await conn.close()
    return [r["user_id"] for r in rows]


def start_server(
    args: argparse.Namespace, url: str, folder: Path, port: int
) -> tuple[subprocess.Popen[bytes], Any]:
    env = {
        **os.environ,
        "DATABASE_URL": to_libpq_url(url),
        "SECRET_KEY": SECRET,
        "SMARTHEALTH_DATA_DIR": str(folder / "serve"),
        "LOG_LEVEL": "WARNING",
        "LLM_PROVIDER": "extractive",
        "EMBEDDING_PROVIDER": "local",
        "WS_QUESTIONS_PER_MINUTE": str(args.rate_limit),
    }
    if args.db_pool_size:
        env["DB_POOL_SIZE"] = str(args.db_pool_size)
    log = (folder / "serve.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "smarthealth.cli", "serve", "--host", HOST, "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return server, log


async def wait_healthy(base: str, server: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=2) as http:
        for _ in range(240):
            if server.poll() is not None:
                raise RuntimeError(f"smarthealth serve exited with {server.returncode}")
            try:
                if (await http.get("/health")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.5)
    raise RuntimeError("smarthealth serve did not become healthy within 2 minutes")


def stop_server(server: subprocess.Popen[bytes]) -> int | None:
    if server.poll() is None:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)
    return server.returncode


def server_log_problems(path: Path) -> list[str]:
    """Lines the server logged at error level or above (it logs JSON at LOG_LEVEL=WARNING)."""
    problems = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            level = str(json.loads(line).get("level", "")).lower()
        except (ValueError, AttributeError):
            level = "error" if "Traceback" in line or "ERROR" in line else ""
        if level in {"error", "critical", "exception"}:
            problems.append(line[:300])
    return problems


async def warm_up(url: str, patient: Patient, stats: Stats, limit: float) -> None:
    """One question before the measurement: plans cached, pool connections opened."""
    scratch = Stats()
    client = await open_client(-1, url, scratch)
    if client is None:
        stats.connection_errors += scratch.connection_errors
        stats.samples += scratch.samples
        return
    try:
        body = {
            "document_type_id": patient.document_type_id,
            "document_number": patient.document_number,
            "question": QUESTIONS[0],
        }
        await ask_one(client, body, limit)
    finally:
        await client.close()
    stats.protocol_errors += scratch.protocol_errors
    stats.samples += ["warm-up " + s for s in scratch.samples]


async def rate_limit_query_ms(dsn: str, user_id: int) -> float:
    """What the per-question limit check costs in the database at the end of the run."""
    conn = await asyncpg.connect(dsn)
    try:
        plan = await conn.fetchval(
            "EXPLAIN (ANALYZE, FORMAT JSON) SELECT count(*) FROM smart_health.audit_logs "
            "WHERE user_id = $1 AND event_type = 'query' "
            "AND created_at > now() - interval '1 minute'",
            user_id,
        )
    finally:
        await conn.close()
    return round(float(json.loads(plan)[0]["Execution Time"]), 3)


async def measure(
    args: argparse.Namespace,
    base_url: str,
    ids: list[int],
    patients: list[Patient],
    stats: Stats,
) -> dict[str, float]:
    minutes = math.ceil((args.seconds + args.answer_timeout) / 60) + 10

    def socket_url(user_id: int) -> str:
        token = issue_token(user_id, "clinician", SECRET, minutes).token
        return f"{base_url}/ws/chat?token={token}"

    await warm_up(socket_url(ids[-1]), patients[0], stats, args.answer_timeout)
    connect_started = time.perf_counter()
    opened = await asyncio.gather(
        *(open_client(i, socket_url(ids[i]), stats) for i in range(args.sockets))
    )
    connect_seconds = time.perf_counter() - connect_started
    clients = [c for c in opened if c is not None]
    rng = random.Random(args.seed)
    max_questions = args.questions_per_asker or max(1, math.ceil(args.seconds))
    started = time.perf_counter()
    deadline = started + args.seconds
    tasks = [
        asyncio.create_task(
            pinger(c, deadline, args.ping_interval, random.Random(rng.random())),
            name=f"pinger-{c.index}",
        )
        for c in clients
    ]
    askers = [
        asyncio.create_task(
            asker(
                c,
                patients,
                deadline,
                max_questions,
                args.rate_limit,
                args.interval,
                args.answer_timeout,
                random.Random(rng.random()),
            ),
            name=f"asker-{c.index}",
        )
        for c in clients
        if c.index < args.askers
    ]
    done, pending = await asyncio.wait(
        tasks + askers, timeout=args.seconds + args.answer_timeout + 30
    )
    askers_done = max(time.perf_counter(), deadline) - started
    for task in pending:
        stats.protocol_error(f"{task.get_name()} still running after the time limit")
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    for task in done:
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            stats.protocol_error(f"{task.get_name()} failed: {type(exc).__name__}: {exc}")
    await asyncio.gather(*(c.close() for c in clients))
    return {
        "connect_all_seconds": round(connect_seconds, 2),
        "measured_seconds": round(askers_done, 1),
        "opened": len(clients),
    }


async def main_async(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    pgdata = folder / "pgdata"
    database = EmbeddedPostgres(pgdata).start()
    stats = Stats()
    server: subprocess.Popen[bytes] | None = None
    log = None
    try:
        url = to_asyncpg_url(database.url())
        dsn = to_libpq_url(url)
        setup, patients = await prepare(args, url)
        ids = await user_ids(dsn)
        port = free_port()
        server, log = start_server(args, url, folder, port)
        await wait_healthy(f"http://{HOST}:{port}", server)
        server_process = psutil.Process(server.pid)
        pg_before = postgres_processes(pgdata)
        before = (
            cpu_seconds([server_process]),
            cpu_seconds(pg_before),
            cpu_seconds([psutil.Process()]),
            await db_transactions(dsn),
            time.perf_counter(),
        )
        run = await measure(args, f"ws://{HOST}:{port}", ids, patients, stats)
        await asyncio.sleep(1.5)  # backends report their statistics at most once a second
        wall = time.perf_counter() - before[4]
        server_cpu = cpu_seconds([server_process]) - before[0]
        pg_cpu = cpu_seconds(postgres_processes(pgdata)) - before[1]
        client_cpu = cpu_seconds([psutil.Process()]) - before[2]
        transactions = await db_transactions(dsn) - before[3]
        limit_ms = await rate_limit_query_ms(dsn, ids[0])
    finally:
        exit_code = stop_server(server) if server is not None else None
        if log is not None:
            log.close()
        database.stop()
    problems = server_log_problems(folder / "serve.log")
    questions_total = stats.completed + 1  # and the warm-up question
    asking = stats.last_done - stats.first_sent if stats.completed else 0.0
    ok = stats.connection_errors == 0 and stats.protocol_errors == 0 and not problems
    return {
        "ok": ok,
        "config": {
            "patients": args.patients,
            "seed": args.seed,
            "sockets": args.sockets,
            "askers": args.askers,
            "seconds": args.seconds,
            "ping_interval": args.ping_interval,
            "questions_per_asker": args.questions_per_asker,
            "rate_limit_per_user_minute": args.rate_limit,
            "seconds_between_questions": args.interval,
            "db_pool_size": args.db_pool_size or "server default",
        },
        "setup": setup,
        "connections": {
            "opened": run["opened"],
            "errors": stats.connection_errors,
            "connect_ms": summary(stats.connect_ms),
            "connect_all_seconds": run["connect_all_seconds"],
        },
        "pings": {
            "sent": stats.pings,
            "pongs": len(stats.pong_ms),
            "rtt_ms": summary(stats.pong_ms),
        },
        "questions": {
            "started": stats.started,
            "completed": stats.completed,
            "per_second": round(stats.completed / run["measured_seconds"], 2),
            "measured_seconds": run["measured_seconds"],
            # back to back, the askers reach the per-user limit early and then wait
            "per_second_while_asking": round(stats.completed / asking, 2) if asking > 0 else 0,
            "asking_seconds": round(asking, 1),
            "ttft_ms": summary(stats.ttft_ms),
            "complete_ms": summary(stats.complete_ms),
            "tokens_per_answer_mean": round(sum(stats.tokens) / len(stats.tokens), 1)
            if stats.tokens
            else 0,
            "client_rate_limit_waits": stats.rate_limit_waits,
            "client_rate_limit_wait_seconds": round(stats.rate_limit_wait_seconds, 1),
        },
        "errors": {
            "connection": stats.connection_errors,
            "protocol": stats.protocol_errors,
            "server_log_errors": len(problems),
            "samples": stats.samples + problems[:5],
        },
        "server": {
            "exit_code": exit_code,
            "cpu_seconds": round(server_cpu, 1),
            "cpu_percent_of_one_core": round(100 * server_cpu / wall, 1),
            "cpu_ms_per_question": round(1000 * server_cpu / questions_total, 1),
            "postgres_cpu_seconds_approx": round(pg_cpu, 1),
            "db_transactions": transactions,
            # minus one user lookup per socket opened; the indexer's idle polls remain
            "db_transactions_per_question_approx": round(
                (transactions - run["opened"] - 1) / questions_total, 1
            ),
            "rate_limit_query_ms": limit_ms,
        },
        "client_cpu_percent_of_one_core": round(100 * client_cpu / wall, 1),
        "machine": f"{platform.machine()}, {psutil.cpu_count()} cores, "
        f"{round(psutil.virtual_memory().total / 2**30)} GiB, Python "
        f"{platform.python_version()}, load average {os.getloadavg()[0]:.1f}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--patients", type=int, default=300)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--sockets", type=int, default=200)
    parser.add_argument("--askers", type=int, default=50, help="sockets that ask questions")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long sockets stay open")
    parser.add_argument("--ping-interval", type=float, default=5.0)
    parser.add_argument(
        "--questions-per-asker", type=int, default=None, help="default: one per second of the run"
    )
    parser.add_argument(
        "--rate-limit",
        type=int,
        default=20,
        help="questions per user and minute, given to the server as WS_QUESTIONS_PER_MINUTE",
    )
    parser.add_argument(
        "--answer-timeout", type=float, default=60.0, help="seconds one question may take"
    )
    parser.add_argument(
        "--interval",
        type=float,
        default=None,
        help="seconds between the starts of one asker's questions; default 60 / --rate-limit "
        "(every asker at the most the server allows it), 0 = back to back",
    )
    parser.add_argument("--db-pool-size", type=int, default=None, help="server DB_POOL_SIZE")
    args = parser.parse_args()
    if not 1 <= args.askers <= args.sockets or args.seconds <= 0 or args.ping_interval <= 0:
        parser.error("need 1 <= --askers <= --sockets, --seconds > 0 and --ping-interval > 0")
    if args.interval is None:
        args.interval = 60 / args.rate_limit
    if args.interval < 0:
        parser.error("--interval must be >= 0")
    configure_logging("WARNING", json=False)  # to stderr: stdout carries only the JSON document
    with tempfile.TemporaryDirectory(prefix="sh-ws-load-") as folder:
        result = asyncio.run(main_async(args, Path(folder)))
    print(json.dumps(result, indent=2, ensure_ascii=False))
    sys.exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
