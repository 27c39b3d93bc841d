"""One error envelope for every failure: `{"status": "error", "error": {code, message, details}}`.

Codes are stable English identifiers; messages are Spanish. Exception text never reaches a client
(it may hold patient data or internals), and only the exception type is logged.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import asyncpg
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from smarthealth.inputs import storable

log = structlog.get_logger(__name__)


class AppError(Exception):
    """An expected failure with an HTTP status, a stable code and a Spanish message."""

    def __init__(
        self,
        status_code: int,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(code)
        self.status_code = status_code
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = details
    return {"status": "error", "error": error}


def error_response(
    status_code: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        error_body(code, message, details), status_code=status_code, headers=headers
    )


_HTTP_CODES: dict[int, tuple[str, str]] = {
    400: ("INVALID_INPUT", "La solicitud no es válida."),
    401: ("UNAUTHORIZED", "Se requiere autenticación."),
    403: ("FORBIDDEN", "No tiene permiso para realizar esta acción."),
    404: ("NOT_FOUND", "El recurso solicitado no existe."),
    405: ("METHOD_NOT_ALLOWED", "Método no permitido para este recurso."),
    413: ("PAYLOAD_TOO_LARGE", "La solicitud excede el tamaño máximo permitido."),
    415: ("UNSUPPORTED_MEDIA_TYPE", "Tipo de contenido no soportado."),
    429: ("RATE_LIMITED", "Demasiadas solicitudes; intente más tarde."),
}


MAX_FIELD_NAME = 100


def field_errors(errors: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Field, problem type and pydantic's message of each validation error; never the value.

    A field name can be a client's own key (an unknown one): made storable and cut short."""
    fields = []
    for err in errors:
        location = [str(part) for part in err.get("loc", ()) if part != "body"]
        fields.append(
            {
                "field": storable(".".join(location))[:MAX_FIELD_NAME] or "body",
                "type": err.get("type"),
                "issue": err.get("msg"),
            }
        )
    return fields


def frames(exc: BaseException) -> list[str]:
    """Where it failed (file:line function), without source text or the exception message."""
    return [f"{f.filename}:{f.lineno} {f.name}" for f in traceback.extract_tb(exc.__traceback__)]


# Driver errors that mean "the database cannot serve right now", whatever wraps them.
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,  # SQLSTATE class 08, ConnectionDoesNotExistError included
    asyncpg.CannotConnectNowError,  # 57P03: starting up or shutting down
    asyncpg.AdminShutdownError,  # 57P01: terminated by a shutdown
    asyncpg.CrashShutdownError,  # 57P02
    asyncpg.InsufficientResourcesError,  # 53xxx: too many connections, out of memory, disk full
    OperationalError,  # other drivers (psycopg) report connection failures as this
    PoolTimeoutError,  # no connection could be checked out in time
)
_CLOSED = ("connection is closed", "connection was closed")
_MAX_CAUSES = 16


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception, what it wraps (SQLAlchemy's `.orig`) and what caused it, once each."""
    seen: set[int] = set()
    pending = [exc]
    while pending and len(seen) < _MAX_CAUSES:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        context = None if current.__suppress_context__ else current.__context__
        for following in (getattr(current, "orig", None), current.__cause__, context):
            if isinstance(following, BaseException):
                pending.append(following)


def _from_driver(exc: BaseException) -> bool:
    return any("asyncpg" in frame.filename for frame in traceback.extract_tb(exc.__traceback__))


def _means_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True  # SQLAlchemy's own disconnect detection
    if isinstance(exc, _UNAVAILABLE):
        return True
    if isinstance(exc, asyncpg.InterfaceError):  # not a DataError on a bad argument
        return any(marker in str(exc) for marker in _CLOSED)
    # Connecting at all: refused, socket file missing (server stopped), reset, timed out.
    return isinstance(exc, OSError) and _from_driver(exc)


def is_database_unavailable(exc: BaseException) -> bool:
    """Connection-level failures (server down, socket gone, restart, overload): 503, not 500.

    Looks through SQLAlchemy's wrapper to the asyncpg or OS error beneath it: SQLAlchemy reports
    a refused connection during shutdown (CannotConnectNow), a terminated one (AdminShutdown) or
    a vanished socket as a plain DBAPIError that is not marked as a disconnect."""
    return any(_means_unavailable(cause) for cause in _causes(exc))


DATABASE_UNAVAILABLE_MESSAGE = "La base de datos no está disponible; intente más tarde."


def database_unavailable() -> JSONResponse:
    return error_response(503, "DATABASE_UNAVAILABLE", DATABASE_UNAVAILABLE_MESSAGE)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(_: Request, exc: AppError) -> JSONResponse:
        return error_response(exc.status_code, exc.code, exc.message, exc.details, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = field_errors(exc.errors())
        if any(d["type"] == "json_invalid" for d in details):
            return error_response(
                400, "INVALID_INPUT", "El cuerpo de la solicitud no es JSON válido."
            )
        return error_response(
            422, "INVALID_INPUT", "Los datos enviados no son válidos.", {"fields": details}
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code, message = _HTTP_CODES.get(exc.status_code, ("HTTP_ERROR", "Error en la solicitud."))
        headers = dict(exc.headers) if exc.headers else None
        if exc.status_code == 405:
            allowed = allowed_methods(request)
            if allowed:
                headers = {**(headers or {}), "Allow": ", ".join(allowed)}
        return error_response(exc.status_code, code, message, headers=headers)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path. Starlette names only the first matching
    route's methods, and FastAPI makes one route per method (`/users/me` would say `Allow:
    GET`): ask every route, through its public `matches`, about each method."""
    allowed = []
    for method in _METHODS:
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] is Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return allowed
