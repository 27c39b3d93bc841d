"""The WebSocket protocol against a real uvicorn server and the real database."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from smarthealth.app import create_app
from smarthealth.auth.tokens import issue_token
from smarthealth.config import to_libpq_url
from tests.conftest import insert_user, make_settings
from tests.live_server import LiveServer
from tests.paced_engine import PacedEngine


@dataclass
class Env:
    server: LiveServer
    strict: LiveServer  # idle timeout 1.5 s, 3 questions a minute
    secret: str
    db_url: str
    clinician: int
    auditor: int
    patient: dict[str, Any]

    def token(self, user_id: int, role: str = "clinician", minutes: float = 30) -> str:
        return issue_token(user_id, role, self.secret, minutes).token  # type: ignore[arg-type]

    def url(
        self,
        user_id: int | None = None,
        strict: bool = False,
        token: str | None = None,
    ) -> str:
        base = (self.strict if strict else self.server).ws + "/ws/chat"
        if token is None and user_id is not None:
            token = self.token(user_id)
        return f"{base}?token={token}" if token is not None else base

    def query(self, question: str = "¿Tiene alergias?", **extra: Any) -> str:
        return json.dumps({"type": "query", **self.patient, "question": question, **extra})


@pytest.fixture(scope="module")
def env(db_url: str, password_hash: str) -> Iterator[Env]:
    secret = "ws-test-" + "k" * 40
    settings = make_settings(secret_key=secret)
    strict_settings = make_settings(
        secret_key=secret, ws_idle_timeout=1.5, ws_questions_per_minute=3
    )
    app, strict_app = (
        create_app(settings, database_url=db_url),
        create_app(strict_settings, database_url=db_url),
    )

    async def _setup() -> tuple[int, int, int, dict[str, Any]]:
        users = [
            await insert_user(db_url, password_hash, role)
            for role in ("clinician", "auditor", "clinician")
        ]
        conn = await asyncpg.connect(to_libpq_url(db_url))
        try:
            row = await conn.fetchrow(
                "SELECT document_type_id, document_number FROM smart_health.patients p "
                "WHERE EXISTS (SELECT 1 FROM smart_health.prescriptions r "
                "WHERE r.patient_id = p.patient_id) ORDER BY patient_id LIMIT 1"
            )
        finally:
            await conn.close()
        return users[0], users[1], dict(row)

    clinician, auditor, patient = asyncio.run(_setup())
    with LiveServer(app) as server, LiveServer(strict_app) as strict:
        server.server.config.app.state.pipeline.engine = PacedEngine(0.04)  # type: ignore[union-attr]
        yield Env(server, strict, secret, db_url, clinician, auditor, patient)


async def _next(ws: ClientConnection, wait: float = 10) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), wait))  # type: ignore[no-any-return]


async def _until(ws: ClientConnection, kind: str) -> list[dict[str, Any]]:
    seen = []
    while True:
        message = await _next(ws)
        seen.append(message)
        if message["type"] in (kind, "error"):
            return seen


async def _close_reason(url: str, **kwargs: Any) -> tuple[int, str]:
    async with connect(url, **kwargs) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, closed.value.rcvd.reason


async def test_missing_token_closes_1008(env: Env) -> None:
    assert await _close_reason(env.url()) == (1008, "UNAUTHORIZED")


async def test_invalid_token_closes_1008(env: Env) -> None:
    assert await _close_reason(env.url(token="not-a-token")) == (1008, "UNAUTHORIZED")


async def test_expired_token_closes_1008(env: Env) -> None:
    expired = env.token(env.clinician, minutes=-1)
    assert await _close_reason(env.url(token=expired)) == (1008, "TOKEN_EXPIRED")


async def test_deactivated_user_closes_1008(env: Env, password_hash: str) -> None:
    gone = await insert_user(env.db_url, password_hash, active=False)
    assert await _close_reason(env.url(gone)) == (1008, "UNAUTHORIZED")


async def test_connected_then_ping_pong(env: Env) -> None:
    async with connect(env.url(env.clinician)) as ws:
        assert await _next(ws) == {
            "type": "connected",
            "user_id": env.clinician,
            "message": "Conectado al asistente clínico. Indique el paciente y su pregunta.",
        }
        await ws.send(json.dumps({"type": "ping"}))
        assert await _next(ws) == {"type": "pong"}


async def test_bearer_header_is_accepted_too(env: Env) -> None:
    headers = {"Authorization": f"Bearer {env.token(env.clinician)}"}
    async with connect(env.url(), additional_headers=headers) as ws:
        assert (await _next(ws))["type"] == "connected"


async def test_a_question_streams_events_in_order(env: Env) -> None:
    async with connect(env.url(env.clinician)) as ws:
        await _next(ws)
        await ws.send(env.query("¿Qué medicamentos tiene prescritos?"))
        events = await _until(ws, "complete")
    kinds = [e["type"] for e in events]
    assert kinds[:3] == ["status"] * 3
    assert [e["status"] for e in events[:3]] == ["searching_patient", "retrieving", "generating"]
    assert kinds[3] == "stream_start"
    assert set(kinds[4:-2]) == {"token"} and len(kinds[4:-2]) > 3
    assert kinds[-2:] == ["stream_end", "complete"]
    complete = events[-1]
    assert complete["session_id"] == events[3]["session_id"]
    assert complete["sequence_chat_id"] == events[3]["sequence_chat_id"]
    assert "".join(e["token"] for e in events[4:-2]) == complete["answer"]["text"]
    assert {"status", "patient_info", "answer", "sources", "metadata"} <= set(complete)
    assert complete["sources"]


async def test_tokens_already_queued_go_out_in_one_frame(env: Env, password_hash: str) -> None:
    """The unpaced engine writes its whole answer at once: far fewer frames than words."""
    user = await insert_user(env.db_url, password_hash)
    async with connect(env.url(user, strict=True)) as ws:
        await _next(ws)
        await ws.send(env.query("¿Qué medicamentos tiene prescritos?"))
        events = await _until(ws, "complete")
    tokens = [e["token"] for e in events if e["type"] == "token"]
    text = events[-1]["answer"]["text"]
    assert "".join(tokens) == text
    assert 1 <= len(tokens) < len(text.split()) / 4
    assert [e["type"] for e in events[-2:]] == ["stream_end", "complete"]


async def test_errors_keep_the_socket_open(env: Env) -> None:
    async with connect(env.url(env.clinician), max_size=None) as ws:
        await _next(ws)
        cases = [
            ("{not json", "INVALID_MESSAGE"),
            (json.dumps({"type": "dance"}), "UNKNOWN_MESSAGE_TYPE"),
            (json.dumps(["query"]), "UNKNOWN_MESSAGE_TYPE"),
            (json.dumps({"type": "query", "document_type_id": 1}), "INVALID_INPUT"),
            (env.query(document_type_id=12), "INVALID_INPUT"),
            (json.dumps({"type": "query", "question": "x" * 17_000}), "MESSAGE_TOO_LARGE"),
            (env.query(document_number="000000001"), "PATIENT_NOT_FOUND"),
            (json.dumps({"type": "cancel"}), "NOTHING_TO_CANCEL"),
        ]
        for frame, code in cases:
            await ws.send(frame)
            events = await _until(ws, "error")
            assert events[-1]["type"] == "error" and events[-1]["error"]["code"] == code, frame
            assert events[-1]["error"]["message"]
        await ws.send(json.dumps({"type": "ping"}))
        assert await _next(ws) == {"type": "pong"}


async def test_auditors_may_connect_but_not_ask(env: Env) -> None:
    async with connect(env.url(env.auditor)) as ws:
        await _next(ws)
        await ws.send(env.query())
        assert (await _next(ws))["error"]["code"] == "FORBIDDEN"


async def test_second_question_while_answering_is_busy(env: Env) -> None:
    async with connect(env.url(env.clinician)) as ws:
        await _next(ws)
        await ws.send(env.query("Hazme un resumen"))
        await ws.send(env.query("¿Tiene alergias?"))
        events = await _until(ws, "complete")
        busy = [e for e in events if e["type"] == "error"]
        if busy:  # the BUSY error can arrive among the first answer's events
            assert busy[0]["error"]["code"] == "BUSY"
            events += await _until(ws, "complete")
        assert next(e for e in events if e["type"] == "error")["error"]["code"] == "BUSY"
        assert events[-1]["type"] == "complete"


async def test_cancel_stops_the_answer_and_is_audited(env: Env) -> None:
    async with connect(env.url(env.clinician)) as ws:
        await _next(ws)
        await ws.send(env.query("Hazme un resumen"))
        await _until(ws, "stream_start")
        await ws.send(json.dumps({"type": "cancel"}))
        events = await _until(ws, "cancelled")
        assert events[-1]["type"] == "cancelled"
        assert "complete" not in [e["type"] for e in events]
        await ws.send(json.dumps({"type": "ping"}))
        assert (await _until(ws, "pong"))[-1]["type"] == "pong"
    conn = await asyncpg.connect(to_libpq_url(env.db_url))
    try:
        rows = await conn.fetch(
            "SELECT event_type, outcome, channel FROM smart_health.audit_logs "
            "WHERE event_type IN ('query', 'query.outcome') AND user_id = $1 "
            "ORDER BY audit_log_id DESC LIMIT 2",
            env.clinician,
        )
    finally:
        await conn.close()
    # the access was recorded before the answer started; the cancellation follows it
    assert [dict(r) for r in rows] == [
        {"event_type": "query.outcome", "outcome": "cancelled", "channel": "ws"},
        {"event_type": "query", "outcome": "disclosed", "channel": "ws"},
    ]


async def test_cancel_then_query_at_once_is_not_busy(env: Env, password_hash: str) -> None:
    """Everything of the cancelled answer arrives before anything of the next question."""
    user = await insert_user(env.db_url, password_hash)
    async with connect(env.url(user)) as ws:
        await _next(ws)
        await ws.send(env.query("Hazme un resumen", id="a"))
        await _until(ws, "stream_start")
        await ws.send(json.dumps({"type": "cancel"}))
        await ws.send(env.query("¿Tiene alergias?", id="b"))
        first = await _until(ws, "cancelled")
        second = await _until(ws, "complete")
    assert first[-1] == {"type": "cancelled", "message": "Respuesta cancelada.", "id": "a"}
    assert {e["id"] for e in first} == {"a"}
    assert [e["type"] for e in second][:4] == ["status", "status", "status", "stream_start"]
    assert second[-1]["type"] == "complete" and {e["id"] for e in second} == {"b"}


async def test_question_id_is_echoed_on_every_event_and_error(env: Env, password_hash: str) -> None:
    user = await insert_user(env.db_url, password_hash)
    async with connect(env.url(user)) as ws:
        await _next(ws)
        await ws.send(env.query("¿Tiene alergias?", id=41))
        answered = await _until(ws, "complete")
        await ws.send(env.query(document_number="000000001", id="lost"))
        missing = await _until(ws, "error")
        await ws.send(env.query(document_type_id="1", id="typed"))
        invalid = await _until(ws, "error")
        await ws.send(env.query())  # no id: none echoed
        plain = await _until(ws, "complete")
        bad_ids = []
        for bad in ("", "x" * 65, True, 1.5, {"a": 1}, 2**60):
            await ws.send(env.query(id=bad))
            bad_ids.append((await _until(ws, "error"))[-1])
    assert all(e["id"] == 41 for e in answered) and answered[-1]["type"] == "complete"
    assert missing[-1]["error"]["code"] == "PATIENT_NOT_FOUND" and missing[-1]["id"] == "lost"
    assert invalid[-1]["error"]["code"] == "INVALID_INPUT" and invalid[-1]["id"] == "typed"
    assert invalid[-1]["details"] == {"fields": ["document_type_id"]}
    assert not any("id" in e for e in plain)
    for error in bad_ids:
        assert error["error"]["code"] == "INVALID_INPUT"
        assert error["details"] == {"fields": ["id"]} and "id" not in error


async def test_question_rate_limit(env: Env, password_hash: str) -> None:
    user = await insert_user(env.db_url, password_hash)
    async with connect(env.url(user, strict=True)) as ws:
        await _next(ws)
        for _ in range(3):
            await ws.send(env.query())
            assert (await _until(ws, "complete"))[-1]["type"] == "complete"
        await ws.send(env.query())
        refused = await _until(ws, "error")
        assert refused[-1]["error"]["code"] == "RATE_LIMITED"
        assert "token" not in [e["type"] for e in refused]


async def test_idle_socket_is_closed(env: Env) -> None:
    async with connect(env.url(env.clinician, strict=True)) as ws:
        await _next(ws)
        started = time.monotonic()
        assert (await _next(ws, wait=5))["error"]["code"] == "IDLE_TIMEOUT"
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
        assert 1.2 < time.monotonic() - started < 4


async def test_token_expiring_during_the_connection_ends_it(env: Env) -> None:
    short = env.token(env.clinician, minutes=2 / 60)
    async with connect(env.url(token=short)) as ws:
        await _next(ws)
        message = await _next(ws, wait=6)
        assert message["error"]["code"] == "TOKEN_EXPIRED"
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


async def test_websocket_questions_are_audited_like_rest(env: Env) -> None:
    async with connect(env.url(env.clinician)) as ws:
        await _next(ws)
        await ws.send(env.query("¿Cuál fue la última presión arterial?"))
        complete = (await _until(ws, "complete"))[-1]
    conn = await asyncpg.connect(to_libpq_url(env.db_url))
    try:
        outcome, access = await conn.fetch(
            "SELECT event_type, channel, outcome, source_ids, session_id::text AS session, "
            "sequence_chat_id FROM smart_health.audit_logs "
            "WHERE event_type IN ('query', 'query.outcome') AND user_id = $1 "
            "ORDER BY audit_log_id DESC LIMIT 2",
            env.clinician,
        )
    finally:
        await conn.close()
    cited = [s["chunk_id"] for s in complete["sources"]]
    assert (access["event_type"], access["outcome"]) == ("query", "disclosed")
    assert (outcome["event_type"], outcome["outcome"]) == ("query.outcome", "answered")
    assert outcome["channel"] == access["channel"] == "ws"
    assert access["session"] == outcome["session"] == complete["session_id"]
    assert access["sequence_chat_id"] == outcome["sequence_chat_id"] == complete["sequence_chat_id"]
    assert set(cited) <= set(access["source_ids"]) and list(outcome["source_ids"]) == cited


async def test_the_original_pages_session_label_and_user_id_are_accepted(env: Env) -> None:
    """`{"type":"query","session_id":"session-1733400000000","user_id":"…",…}` as the original
    chat page sends it: answered, the label echoed, the same label continues the session."""
    label = "session-1733400000000"
    async with connect(env.url(env.clinician)) as ws:
        await _next(ws)
        await ws.send(
            env.query("¿Qué medicamentos tiene prescritos?", session_id=label, user_id="u1")
        )
        first = await _until(ws, "complete")
        start = next(e for e in first if e["type"] == "stream_start")
        assert start["session_id"] == label and first[-1]["session_id"] == label
        await ws.send(env.query("¿y la dosis?", session_id=label))
        second = (await _until(ws, "complete"))[-1]
    assert second["session_uuid"] == first[-1]["session_uuid"]
    assert second["sequence_chat_id"] == first[-1]["sequence_chat_id"] + 1
