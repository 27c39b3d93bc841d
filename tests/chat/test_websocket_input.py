"""Bad input over the WebSocket: an `error` frame naming the problem, and the socket stays usable
(issue 10, items 2 and 3). Real uvicorn, real PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import jwt
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from smarthealth.app import create_app
from smarthealth.auth.tokens import issue_token
from smarthealth.config import to_libpq_url
from tests.conftest import insert_user, make_settings
from tests.live_server import LiveServer

SECRET = "ws-input-" + "k" * 40


@dataclass
class Env:
    server: LiveServer
    db_url: str
    clinician: int
    patient: dict[str, Any]

    def url(self, token: str | None = None) -> str:
        token = token or issue_token(self.clinician, "clinician", SECRET, 30).token
        return f"{self.server.ws}/ws/chat?token={token}"

    def query(self, **fields: Any) -> str:
        return json.dumps(
            {"type": "query", **self.patient, "question": "¿Tiene alergias?", **fields}
        )


@pytest.fixture(scope="module")
def env(db_url: str, password_hash: str) -> Iterator[Env]:
    app = create_app(
        make_settings(secret_key=SECRET, ws_questions_per_minute=1000), database_url=db_url
    )

    async def _setup() -> tuple[int, dict[str, Any]]:
        clinician = await insert_user(db_url, password_hash, "clinician")
        conn = await asyncpg.connect(to_libpq_url(db_url))
        try:
            row = await conn.fetchrow(
                "SELECT document_type_id, document_number FROM smart_health.patients p WHERE "
                "EXISTS (SELECT 1 FROM smart_health.prescriptions r "
                "WHERE r.patient_id = p.patient_id) ORDER BY patient_id LIMIT 1"
            )
        finally:
            await conn.close()
        return clinician, dict(row)

    clinician, patient = asyncio.run(_setup())
    with LiveServer(app) as server:
        yield Env(server, db_url, clinician, patient)


async def _next(ws: ClientConnection, wait: float = 10) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), wait))  # type: ignore[no-any-return]


async def _still_usable(ws: ClientConnection) -> None:
    await ws.send(json.dumps({"type": "ping"}))
    assert await _next(ws) == {"type": "pong"}


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"question": "¿Qué medicamentos\u0000 tiene prescritos?"}, "question"),
        ({"question": "¿Tiene alergias?\x1b[0m"}, "question"),
        ({"question": "¿Tiene alergias?\ud800"}, "question"),
        ({"document_number": "12\u000034"}, "document_number"),
        ({"id": "q\u00001"}, "id"),
        ({"id": "q\ud800"}, "id"),
    ],
)
async def test_control_characters_are_invalid_input_and_nothing_is_disclosed(
    env: Env, fields: dict[str, Any], named: str
) -> None:
    """The probe's case: a NUL in the question streamed the whole answer before failing."""
    async with connect(env.url()) as ws:
        await _next(ws)
        await ws.send(env.query(**fields))
        error = await _next(ws)
        assert error["type"] == "error", error
        assert error["error"]["code"] == "INVALID_INPUT"
        assert named in error["details"]["fields"]
        await _still_usable(ws)


async def test_a_refused_question_is_audited_like_over_rest(env: Env) -> None:
    async with connect(env.url()) as ws:
        await _next(ws)
        await ws.send(env.query(question="¿Qué medicamentos\u0000 tiene prescritos?", id="n"))
        assert (await _next(ws))["error"]["code"] == "INVALID_INPUT"
        await _still_usable(ws)
    conn = await asyncpg.connect(to_libpq_url(env.db_url))
    try:
        row = await conn.fetchrow(
            "SELECT outcome, channel, question, details FROM smart_health.audit_logs "
            "WHERE user_id = $1 AND event_type = 'query' ORDER BY audit_log_id DESC LIMIT 1",
            env.clinician,
        )
    finally:
        await conn.close()
    assert (row["outcome"], row["channel"]) == ("invalid_input", "ws")
    assert row["question"] == "¿Qué medicamentos\ufffd tiene prescritos?"
    assert json.loads(row["details"]) == {"error": "INVALID_INPUT"}


async def test_an_unknown_key_that_is_not_unicode_is_invalid_input(env: Env) -> None:
    async with connect(env.url()) as ws:
        await _next(ws)
        await ws.send(env.query()[:-1] + ', "\\ud800": 1}')
        error = await _next(ws)
        assert error["error"]["code"] == "INVALID_INPUT"
        await _still_usable(ws)


async def test_a_clean_question_after_refusals_is_answered(env: Env) -> None:
    async with connect(env.url()) as ws:
        await _next(ws)
        await ws.send(env.query(question="¿Qué medicamentos\u0000 tiene prescritos?", id="a"))
        assert (await _next(ws))["error"]["code"] == "INVALID_INPUT"
        await ws.send(env.query(question="¿Qué medicamentos\ttiene\nprescritos?", id="b"))
        while (event := await _next(ws, 30))["type"] not in ("complete", "error"):
            assert event["id"] == "b"
        assert event["type"] == "complete" and event["id"] == "b", event
        assert event["answer"]["text"]


@pytest.mark.parametrize(
    "frame",
    [
        "[" * 7000 + "]" * 7000,  # 14 KB of nesting: under the frame limit
        '{"type": "query", "x": ' + "[" * 40 + "]" * 40 + "}",  # past the nesting limit only
        '{"type": "ping", "x": ' + '{"a": ' * 2000 + "1" + "}" * 2000 + "}",
    ],
)
async def test_deeply_nested_frames_are_invalid_messages(env: Env, frame: str) -> None:
    async with connect(env.url()) as ws:
        await _next(ws)
        await ws.send(frame)
        error = await _next(ws)
        assert error["type"] == "error" and error["error"]["code"] == "INVALID_MESSAGE"
        await _still_usable(ws)


def _token(sub: str) -> str:
    now = dt.datetime.now(dt.UTC)
    claims = {
        "sub": sub,
        "role": "clinician",
        "iat": now,
        "exp": now + dt.timedelta(minutes=5),
        "jti": uuid.uuid4().hex,
        "type": "access",
    }
    return jwt.encode(claims, SECRET, algorithm="HS256")


@pytest.mark.parametrize("sub", ["2147483648", "99999999999999999999", "-1", "²"])
async def test_a_signed_token_with_an_impossible_subject_closes_1008(env: Env, sub: str) -> None:
    async with connect(env.url(_token(sub))) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1008, "UNAUTHORIZED")
