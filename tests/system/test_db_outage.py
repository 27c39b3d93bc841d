"""The real embedded PostgreSQL is stopped while REST requests and WebSocket questions are in
flight, then started again (issue 10, item 5). Every REST answer is 200 or 503 (never 500); every
socket either gets `error DATABASE_UNAVAILABLE` and stays usable or, when it cannot even be
authorised, is closed with 1011 and that reason: never dropped without a close frame (1006).
Loopback only, every loop bounded by a deadline."""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from smarthealth.app import create_app
from smarthealth.auth.tokens import issue_token
from smarthealth.config import to_asyncpg_url, to_libpq_url
from smarthealth.db import migrate
from smarthealth.db.embedded import EmbeddedPostgres
from smarthealth.ingest.seed import seed_database
from tests.conftest import TEMPLATE_TODAY, index_everything, insert_user, make_settings
from tests.live_server import LiveServer

SECRET = "outage-" + "k" * 40
BEFORE_STOP = 1.5  # seconds of load with the database up
DOWN = 2.5  # seconds with it stopped
AFTER_START = 3.0  # seconds of load once it is back
QUESTION = "¿Qué medicamentos tiene prescritos?"


@dataclass
class Tally:
    rest: collections.Counter[tuple[str, int | str]] = field(default_factory=collections.Counter)
    ws_events: collections.Counter[str] = field(default_factory=collections.Counter)
    closes: collections.Counter[tuple[int, str]] = field(default_factory=collections.Counter)
    silent_drops: int = 0
    stuck: int = 0
    last_answer: dict[int, str] = field(default_factory=dict)  # asker → last outcome


async def _rest_worker(
    base: str, token: str, body: dict[str, Any], deadline: float, t: Tally
) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    calls = [
        ("GET", "/users/me", None),
        ("GET", "/catalog/document-types", None),
        ("POST", "/query/", body),
        ("GET", "/history/", None),
        ("GET", "/audit/", None),
    ]
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as client:
        i = 0
        while time.monotonic() < deadline:
            method, path, payload = calls[i % len(calls)]
            i += 1
            try:
                response = await client.request(method, path, json=payload)
            except httpx.HTTPError as exc:
                t.rest[(path, type(exc).__name__)] += 1
                continue
            t.rest[(path, response.status_code)] += 1
            if response.status_code >= 500:
                body_text = response.text
                assert "Traceback" not in body_text and "asyncpg" not in body_text
            await asyncio.sleep(0.01)


async def _outcome(ws: ClientConnection) -> str:
    """Events of one question until `complete` or `error`; the last one's name."""
    while True:
        event = json.loads(await asyncio.wait_for(ws.recv(), 30))
        if event["type"] == "complete":
            return "complete"
        if event["type"] == "error":
            return str(event["error"]["code"])


def _closed(exc: ConnectionClosed, t: Tally) -> None:
    if exc.rcvd is None:
        t.silent_drops += 1  # no close frame: what the probe saw (1006)
    else:
        t.closes[(exc.rcvd.code, exc.rcvd.reason)] += 1


async def _asker(url: str, body: dict[str, Any], n: int, deadline: float, t: Tally) -> None:
    """One socket opened while the database is up, asking again and again through the outage."""
    while time.monotonic() < deadline:
        try:
            async with connect(url) as ws:
                assert json.loads(await asyncio.wait_for(ws.recv(), 30))["type"] == "connected"
                while time.monotonic() < deadline:
                    await ws.send(json.dumps({"type": "query", "id": n, **body}))
                    outcome = await _outcome(ws)
                    t.ws_events[outcome] += 1
                    t.last_answer[n] = outcome
                    await asyncio.sleep(0.05)
                return
        except ConnectionClosed as exc:
            _closed(exc, t)
            t.last_answer[n] = "closed"
        except TimeoutError:
            t.stuck += 1
            return
        await asyncio.sleep(0.1)


async def _connector(url: str, deadline: float, t: Tally) -> None:
    """New sockets, one after another, whatever the database is doing."""
    while time.monotonic() < deadline:
        try:
            async with connect(url) as ws:
                first = json.loads(await asyncio.wait_for(ws.recv(), 30))
                assert first["type"] == "connected", first
                t.ws_events["connected"] += 1
        except ConnectionClosed as exc:
            _closed(exc, t)
        except TimeoutError:
            t.stuck += 1
            return
        await asyncio.sleep(0.05)


@pytest.mark.slow
async def test_stopping_postgres_under_load_gives_errors_never_500s_or_drops(
    tmp_path: Path, password_hash: str, caplog: pytest.LogCaptureFixture
) -> None:
    server = EmbeddedPostgres(tmp_path / "pgdata").start()
    url = to_asyncpg_url(server.url())
    live: LiveServer | None = None
    try:
        await asyncio.to_thread(migrate.upgrade, url)
        await seed_database(url, 2, 11, today=TEMPLATE_TODAY)
        await index_everything(url)
        clinician = await insert_user(url, password_hash, "clinician")
        admin = await insert_user(url, password_hash, "admin")
        conn = await asyncpg.connect(to_libpq_url(url))
        try:
            patient = dict(
                await conn.fetchrow(
                    "SELECT document_type_id, document_number FROM smart_health.patients "
                    "ORDER BY patient_id LIMIT 1"
                )
            )
        finally:
            await conn.close()
        settings = make_settings(secret_key=SECRET, ws_questions_per_minute=100_000)
        live = LiveServer(create_app(settings, database_url=url))
        await asyncio.to_thread(live.__enter__)

        body = {**patient, "question": QUESTION}
        ws_url = f"{live.ws}/ws/chat?token={issue_token(clinician, 'clinician', SECRET, 30).token}"
        admin_token = issue_token(admin, "admin", SECRET, 30).token
        tally = Tally()
        deadline = time.monotonic() + BEFORE_STOP + DOWN + AFTER_START + 5
        caplog.set_level(logging.INFO)
        workers = [
            *(_rest_worker(live.http, admin_token, body, deadline, tally) for _ in range(3)),
            *(_asker(ws_url, body, n, deadline, tally) for n in range(3)),
            *(_connector(ws_url, deadline, tally) for _ in range(2)),
        ]

        async def outage() -> None:
            await asyncio.sleep(BEFORE_STOP)
            await asyncio.to_thread(server.stop)
            await asyncio.sleep(DOWN)
            await asyncio.to_thread(server.start)

        await asyncio.wait_for(asyncio.gather(outage(), *workers), 120)
    finally:
        if live is not None:
            await asyncio.to_thread(live.__exit__)
        server.stop()

    summary = f"rest={dict(tally.rest)} ws={dict(tally.ws_events)} closes={dict(tally.closes)}"
    statuses = {status for (_, status) in tally.rest}
    assert statuses <= {200, 503}, summary  # never 500, never a broken connection
    assert any(s == 503 for (_, s) in tally.rest), summary  # the outage was seen…
    assert tally.rest[("/query/", 200)] > 0, summary  # …and questions were answered around it
    assert tally.silent_drops == 0 and tally.stuck == 0, summary
    assert set(tally.ws_events) <= {"complete", "connected", "DATABASE_UNAVAILABLE"}, summary
    assert tally.ws_events["DATABASE_UNAVAILABLE"] > 0, summary  # an asking socket was told
    # a new socket that cannot be authorised is closed with the reason (the page reconnects)
    assert set(tally.closes) == {(1011, "DATABASE_UNAVAILABLE")}, summary
    # the sockets opened before the outage are still there and answer once it is over
    assert tally.last_answer == dict.fromkeys(range(3), "complete"), summary
    # nothing reached uvicorn's own error log (it prints exception messages)
    assert not [r for r in caplog.records if r.name.startswith("uvicorn") and r.levelno >= 40]
