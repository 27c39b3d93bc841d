"""`/ws/chat`: the question pipeline's events, streamed over a WebSocket (DESIGN §5.2).

Client → server: `query {id?, session_id?, document_type_id, document_number, question}`,
`ping`, `cancel`. Every event of a question carries its `id` when the client gave one. Server →
client: `connected`, `status`, `stream_start`, `token`, `stream_end`,
`complete` (the REST body), `pong`, `cancelled`, `error {error: {code, message}}`. Errors keep the
socket open; authentication failures close it with 1008 and a readable reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
from typing import Any

import structlog
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import ValidationError

from smarthealth.audit.service import ClientInfo
from smarthealth.auth.dependencies import user_from_token
from smarthealth.auth.tokens import TokenExpiredError, TokenInvalidError, decode_token
from smarthealth.chat.pipeline import QueryRequest, QuestionPipeline, record_refusal
from smarthealth.chat.schemas import QUERY_ROLES, QueryIn
from smarthealth.db.session import Database
from smarthealth.errors import (
    DATABASE_UNAVAILABLE_MESSAGE,
    AppError,
    field_errors,
    frames,
    is_database_unavailable,
)
from smarthealth.inputs import parse_json, storable
from smarthealth.models import User

log = structlog.get_logger(__name__)
CONNECTED_MESSAGE = "Conectado al asistente clínico. Indique el paciente y su pregunta."
router = APIRouter()

MAX_FRAME_BYTES = 16 * 1024
SEND_QUEUE = 256  # per socket: a slow reader slows only its own answer
POLICY_VIOLATION = 1008
INTERNAL_FAILURE = 1011  # "cannot continue": the close reason says why


def _error(code: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"code": code, "message": message}}


MAX_QUESTION_ID = 64
CANCEL_WAIT = 5.0  # seconds a cancelled answer gets to wind down before the next message


def _failure(exc: Exception, event: str) -> dict[str, Any]:
    """The `error` for an unexpected exception: DATABASE_UNAVAILABLE during an outage,
    INTERNAL_ERROR otherwise. Only the exception's type and frames are logged, never its text."""
    unavailable = is_database_unavailable(exc)
    log.error(
        "database_unavailable" if unavailable else event,
        error_type=type(exc).__name__,
        frames=frames(exc),
    )
    if unavailable:
        return _error("DATABASE_UNAVAILABLE", DATABASE_UNAVAILABLE_MESSAGE)
    return _error("INTERNAL_ERROR", "Error interno del servidor.")


def _invalid_input(fields: list[str]) -> dict[str, Any]:
    return {
        **_error("INVALID_INPUT", "Los datos enviados no son válidos."),
        "details": {"fields": fields},
    }


def _valid_question_id(value: Any) -> bool:
    """A client's own label for a question, echoed on its events: a short string or an int."""
    if value is None:
        return True
    if isinstance(value, str):  # echoed on every event: no control character, valid Unicode
        return 1 <= len(value) <= MAX_QUESTION_ID and storable(value) == value
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**53


def _token_from(websocket: WebSocket) -> str | None:
    token = websocket.query_params.get("token")
    if token:
        return token
    header = websocket.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


class ChatConnection:
    """One socket: a receive loop, a bounded send queue and at most one answer in flight."""

    def __init__(self, websocket: WebSocket, user: User, expires_at: dt.datetime) -> None:
        self.ws = websocket
        self.user = user
        self.expires_at = expires_at
        app = websocket.app
        self.settings = app.state.settings
        self.database: Database = app.state.database
        self.pipeline: QuestionPipeline = app.state.pipeline
        self.secret: str = app.state.secret_key
        self.token = _token_from(websocket)
        self.outbox: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(SEND_QUEUE)
        self.answer: asyncio.Task[None] | None = None
        self.sender: asyncio.Task[None] | None = None
        host = websocket.client.host if websocket.client else None
        agent = websocket.headers.get("user-agent")
        self.client = ClientInfo(
            "ws", host if host and host[0].isdigit() else None, agent[:400] if agent else None
        )

    async def send(self, message: dict[str, Any]) -> None:
        await self.outbox.put(message)

    async def _sender(self) -> None:
        """Tokens already waiting in the queue go out as one `token` message: a client that
        falls behind (or an engine faster than the network) gets fewer, larger frames."""
        waiting: list[dict[str, Any] | None] = []  # taken from the queue, not yet sent
        while True:
            message = waiting.pop() if waiting else await self.outbox.get()
            if message is None:
                return
            if message["type"] == "token":
                parts = [message["token"]]
                while not self.outbox.empty():
                    following = self.outbox.get_nowait()
                    if (
                        following is None
                        or following["type"] != "token"
                        or following.get("id") != message.get("id")
                    ):
                        waiting.append(following)
                        break
                    parts.append(following["token"])
                message = {**message, "token": "".join(parts)}
            await self.ws.send_text(json.dumps(message, ensure_ascii=False, default=str))

    async def run(self) -> None:
        sender = self.sender = asyncio.create_task(self._sender(), name="ws-sender")
        expiry = asyncio.create_task(self._expire(), name="ws-expiry")
        try:
            await self.send(
                {"type": "connected", "user_id": self.user.user_id, "message": CONNECTED_MESSAGE}
            )
            await self._receive_loop()
        finally:
            for task in (self.answer, expiry):
                if task is not None and not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
            await self.outbox.put(None)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(sender, 5)
            if not sender.done():
                sender.cancel()

    async def _expire(self) -> None:
        """End the connection when the token expires, even in the middle of an answer."""
        delay = (self.expires_at - dt.datetime.now(dt.UTC)).total_seconds()
        await asyncio.sleep(max(delay, 0))
        if self.answer is not None and not self.answer.done():
            self.answer.cancel()
        await self.send(_error("TOKEN_EXPIRED", "La sesión expiró; inicie sesión de nuevo."))
        await self._close(POLICY_VIOLATION, "TOKEN_EXPIRED")

    async def _close(self, code: int, reason: str) -> None:
        """Close once what is already queued (the error saying why) has gone out: the sender
        is told to stop and given a bounded time to drain the queue first."""
        await self.outbox.put(None)
        if self.sender is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.sender, 5)
        with contextlib.suppress(Exception):
            await self.ws.close(code, reason)

    async def _receive_loop(self) -> None:
        idle = self.settings.ws_idle_timeout
        while True:
            try:
                message = await asyncio.wait_for(self.ws.receive(), idle)
            except TimeoutError:
                await self.send(_error("IDLE_TIMEOUT", "Conexión cerrada por inactividad."))
                await self._close(1000, "IDLE_TIMEOUT")
                return
            if message["type"] == "websocket.disconnect":
                return
            raw = message.get("text")
            if raw is None and message.get("bytes") is not None:
                raw = message["bytes"].decode("utf-8", "replace")
            try:
                await self._handle(raw or "")
            except Exception as exc:  # one message failed: say so, keep the socket
                await self.send(_failure(exc, "ws_message_failed"))

    async def _handle(self, raw: str) -> None:
        if len(raw.encode("utf-8")) > MAX_FRAME_BYTES:
            await self.send(_error("MESSAGE_TOO_LARGE", "El mensaje supera 16 KiB."))
            return
        try:
            message = parse_json(raw)  # too deeply nested is invalid too (no RecursionError)
        except ValueError:
            await self.send(_error("INVALID_MESSAGE", "El mensaje no es JSON válido."))
            return
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "ping":
            await self.send({"type": "pong"})
        elif kind == "cancel":
            if self.answer is not None and not self.answer.done():
                self.answer.cancel()
                # Its `cancelled` (and audit row) come before anything the next message causes:
                # "cancel" then "query" at once must not be refused as BUSY. Bounded: a client
                # that stopped reading must not stall this loop (and its disconnect) forever.
                await asyncio.wait({self.answer}, timeout=CANCEL_WAIT)
            else:
                await self.send(_error("NOTHING_TO_CANCEL", "No hay una respuesta en curso."))
        elif kind == "query":
            try:
                await self._start_query(message)
            except Exception as exc:  # e.g. the database is down while authorising it
                question_id = message.get("id")
                valid = question_id is not None and _valid_question_id(question_id)
                await self.send(
                    {**_failure(exc, "ws_query_failed"), **({"id": question_id} if valid else {})}
                )
        else:
            await self.send(
                _error(
                    "UNKNOWN_MESSAGE_TYPE", "Tipo de mensaje desconocido; use query, ping o cancel."
                )
            )

    async def _start_query(self, message: dict[str, Any]) -> None:
        question_id = message.get("id")
        if not _valid_question_id(question_id):
            await self.send(_invalid_input(["id"]))
            return
        echo = {} if question_id is None else {"id": question_id}

        async def refuse(code: str, text: str) -> None:
            await self.send({**_error(code, text), **echo})

        if self.answer is not None and not self.answer.done():
            await refuse("BUSY", "Ya hay una pregunta en curso en esta conexión.")
            return
        try:
            body = QueryIn.model_validate(
                {k: v for k, v in message.items() if k not in ("type", "id")}
            )
        except ValidationError as exc:
            fields = [f["field"] for f in field_errors(exc.errors())]
            await self._audit_refusal("invalid_input", "INVALID_INPUT", message.get("question"))
            await self.send({**_invalid_input(fields), **echo})
            return
        try:
            user = await user_from_token(self.token, self.secret, self.database)
        except AppError as exc:  # deactivated, or its sessions ended, since the socket opened
            await refuse(exc.code, exc.message)
            await self._close(POLICY_VIOLATION, exc.code)
            return
        if user.role not in QUERY_ROLES:
            await self._audit_refusal("forbidden", "FORBIDDEN", body.question, user.user_id)
            await refuse("FORBIDDEN", "No tiene permiso para consultar pacientes.")
            return
        request = QueryRequest(
            user_id=user.user_id,
            document_type_id=body.document_type_id,
            document_number=body.document_number,
            question=body.question,
            client=self.client,
            session_id=body.session_id,
        )
        self.answer = asyncio.create_task(self._answer(request, echo), name="ws-answer")

    async def _audit_refusal(
        self, outcome: str, code: str, question: object, user_id: int | None = None
    ) -> None:
        """Refused questions are audited as over REST (one row each)."""
        await record_refusal(
            self.database, self.client, user_id or self.user.user_id, outcome, code, question
        )

    async def _answer(self, request: QueryRequest, echo: dict[str, Any]) -> None:
        """Forward the pipeline's events; each carries the question's `id` if it had one."""
        try:
            limit = self.settings.ws_questions_per_minute
            async for event in self.pipeline.run(request, rate_limit=limit):
                await self.send({"type": event.type, **event.data, **echo})
        except asyncio.CancelledError:
            await self.send({"type": "cancelled", "message": "Respuesta cancelada.", **echo})
            raise
        except AppError as exc:
            await self.send({**_error(exc.code, exc.message), **echo})
        except Exception as exc:
            await self.send({**_failure(exc, "ws_answer_failed"), **echo})


@router.websocket("/ws/chat")
async def chat(websocket: WebSocket) -> None:
    """Authenticated by `?token=` or `Authorization: Bearer`; refused with 1008 otherwise."""
    await websocket.accept()  # accept first, so the browser can read the close reason
    token = _token_from(websocket)
    secret: str = websocket.app.state.secret_key
    try:
        claims = decode_token(token or "", secret)
        user = await user_from_token(token, secret, websocket.app.state.database)
    except TokenExpiredError:
        await websocket.close(POLICY_VIOLATION, "TOKEN_EXPIRED")
        return
    except (TokenInvalidError, AppError) as exc:
        reason = exc.code if isinstance(exc, AppError) else "UNAUTHORIZED"
        await websocket.close(POLICY_VIOLATION, reason)
        return
    except Exception as exc:  # the user cannot be checked (database down): 1011 says why
        # A close, not an `error` frame: clients reconnect on 1011 and send what they hold.
        failure = _failure(exc, "ws_connect_failed")
        with contextlib.suppress(Exception):
            await websocket.close(INTERNAL_FAILURE, failure["error"]["code"])
        return
    connection = ChatConnection(websocket, user, claims.expires_at)
    with contextlib.suppress(WebSocketDisconnect):
        await connection.run()
