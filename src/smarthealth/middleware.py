"""ASGI middleware: request id + access log, and a cap on request body size."""

from __future__ import annotations

import contextlib
import re
import time
import uuid

import structlog
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocketDisconnect

from smarthealth.errors import (
    database_unavailable,
    error_response,
    frames,
    is_database_unavailable,
)

log = structlog.get_logger("smarthealth.access")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
MAX_BODY_BYTES = 1024 * 1024
# Routes that take whole files: a FHIR Bundle of one patient's history is often several MiB.
LARGE_BODY_PATHS = {"/fhir/import": 32 * 1024 * 1024}


class RequestContextMiddleware:
    """Bind a request id to every log line of the request and echo it as `X-Request-ID`.

    Only the path is logged, never the query string (WebSocket tokens travel there).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if scope["type"] == "http":
                log.info(
                    "request",
                    method=scope["method"],
                    path=logged_path(scope),
                    status=status or 500,
                    duration_ms=round((time.perf_counter() - started) * 1000, 1),
                )
            structlog.contextvars.clear_contextvars()


def logged_path(scope: Scope) -> str:
    """The route's template ("/patients/{document_type_id}/{document_number}/summary"), never
    the values in it (a patient's document number is patient data); for a path no route
    matched, its first segment only."""
    route = scope.get("route")
    template = getattr(route, "path", None)
    if isinstance(template, str):
        return template
    first = str(scope["path"]).lstrip("/").split("/", 1)
    return "/" + first[0] + ("/…" if len(first) > 1 else "")


class BodySizeLimitMiddleware:
    """Refuse bodies over `max_bytes` with 413, whether or not Content-Length is declared."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = LARGE_BODY_PATHS.get(scope.get("path", ""), self.max_bytes)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await self._reject(send)
            return
        received = 0
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # FastAPI re-raises HTTPException from body reading: the 413 handler answers.
                    raise HTTPException(413)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except HTTPException as exc:
            if exc.status_code != 413 or response_started:
                raise
            await self._reject(send)

    async def _reject(self, send: Send) -> None:
        response = error_response(
            413, "PAYLOAD_TOO_LARGE", "La solicitud excede el tamaño máximo permitido."
        )
        await response({"type": "http"}, _nothing, send)


async def _nothing() -> Message:
    return {"type": "http.disconnect"}


def _log_failure(exc: BaseException) -> bool:
    """Log an unhandled failure by its type and place only; True when the database is down."""
    unavailable = is_database_unavailable(exc)
    log.error(
        "database_unavailable" if unavailable else "unhandled_error",
        error_type=type(exc).__name__,
        frames=frames(exc),
    )
    return unavailable


class UnhandledErrorMiddleware:
    """Last line of defence: any exception becomes a 500 envelope and is *not* re-raised, so the
    server never prints its message (which could hold patient data) in a traceback."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            invalidated = _log_failure(exc)
            if started:
                return
            response = (
                database_unavailable()
                if invalidated
                else error_response(500, "INTERNAL_ERROR", "Error interno del servidor.")
            )
            await response(scope, receive, send)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The same for sockets: a close frame with code 1011 and the error code as reason
        (never a dropped connection, never the exception's text in uvicorn's log)."""
        accepted = closed = False

        async def tracking_send(message: Message) -> None:
            nonlocal accepted, closed
            if message["type"] == "websocket.accept":
                accepted = True
            elif message["type"] in ("websocket.close", "websocket.http.response.start"):
                closed = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except WebSocketDisconnect:
            return
        except Exception as exc:
            unavailable = _log_failure(exc)
            if closed:
                return
            reason = "DATABASE_UNAVAILABLE" if unavailable else "INTERNAL_ERROR"
            with contextlib.suppress(Exception):  # the client may be gone already
                await send({"type": "websocket.close", "code": 1011, "reason": reason})
