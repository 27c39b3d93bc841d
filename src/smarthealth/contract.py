"""What the OpenAPI document promises about failures and request bodies.

- One schema component for every error (`ErrorEnvelope`), and `error_responses(401, 404, …)`
  to declare, per route, the statuses that route can really return with that envelope.
- Bodies must come in the media type the route reads: JSON routes take `application/json`
  (or `application/*+json`), the OAuth2 form route takes a form; anything else is 415
  `UNSUPPORTED_MEDIA_TYPE` before the body is read.
"""

from __future__ import annotations

import email.message
from collections.abc import Callable, Collection, Coroutine, Mapping
from typing import Any, Literal

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.params import Form
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from smarthealth.errors import AppError


class FieldProblem(BaseModel):
    field: str = Field(description="Where the problem is (`email`, `query.page`, `path.user_id`)")
    type: str | None = Field(default=None, description="Machine-readable kind of problem")
    issue: str | None = Field(default=None, description="What is wrong (never the value sent)")


class ErrorBody(BaseModel):
    code: str = Field(description="Stable English code", examples=["PATIENT_NOT_FOUND"])
    message: str = Field(
        description="Human message in Spanish",
        examples=["No existe un paciente con ese tipo y número de documento."],
    )
    details: dict[str, Any] | None = Field(
        default=None,
        description="Optional: `fields` (list of problems) for INVALID_INPUT, "
        "`retry_after_seconds` for RATE_LIMITED",
    )


class ErrorEnvelope(BaseModel):
    """Every failure, on every route: a stable code and a Spanish message."""

    model_config = ConfigDict(title="ErrorEnvelope")

    status: Literal["error"]
    error: ErrorBody


# status → (what it means on this API, the codes it carries, one example)
_STATUSES: dict[int, tuple[str, str, str]] = {
    400: (
        "Malformed JSON (or nested deeper than 32 levels): INVALID_INPUT",
        "INVALID_INPUT",
        "El cuerpo de la solicitud no es JSON válido.",
    ),
    401: (
        "Missing, invalid or expired token, or wrong credentials: UNAUTHORIZED, TOKEN_EXPIRED",
        "UNAUTHORIZED",
        "Se requiere un token de acceso válido.",
    ),
    403: (
        "The caller may not do this: FORBIDDEN, REGISTRATION_CLOSED, ACCOUNT_INACTIVE, "
        "INVALID_CURRENT_PASSWORD",
        "FORBIDDEN",
        "No tiene permiso para realizar esta acción.",
    ),
    404: (
        "Nothing by that name: USER_NOT_FOUND, PATIENT_NOT_FOUND, SESSION_NOT_FOUND",
        "PATIENT_NOT_FOUND",
        "No existe un paciente con ese tipo y número de documento.",
    ),
    409: (
        "Conflicts with what exists: EMAIL_TAKEN, SESSION_PATIENT_MISMATCH",
        "SESSION_PATIENT_MISMATCH",
        "Esta sesión pertenece a otro paciente; abra una sesión nueva.",
    ),
    413: (
        "Body over 1 MiB: PAYLOAD_TOO_LARGE",
        "PAYLOAD_TOO_LARGE",
        "La solicitud excede el tamaño máximo permitido.",
    ),
    415: (
        "Body not in the media type this route reads: UNSUPPORTED_MEDIA_TYPE",
        "UNSUPPORTED_MEDIA_TYPE",
        "Tipo de contenido no soportado; envíe application/json.",
    ),
    422: (
        "Well-formed but invalid values (wrong fields, out-of-range numbers, text the input "
        "policy refuses): INVALID_INPUT with `details.fields`",
        "INVALID_INPUT",
        "Los datos enviados no son válidos.",
    ),
    429: (
        "Too many attempts: RATE_LIMITED (with `Retry-After`)",
        "RATE_LIMITED",
        "Demasiados intentos fallidos; intente de nuevo más tarde.",
    ),
    503: (
        "The database is down, or the access could not be audited: DATABASE_UNAVAILABLE, "
        "AUDIT_UNAVAILABLE",
        "DATABASE_UNAVAILABLE",
        "La base de datos no está disponible; intente más tarde.",
    ),
}

# Statuses shared by families of routes (each route adds its own).
AUTHENTICATED = (401, 503)  # a bearer token checked against the database
JSON_BODY = (400, 413, 415, 422)  # a JSON body: malformed, too big, wrong media type, invalid
PARAMETERS = (422,)  # query or path parameters that can be out of range


def error_responses(
    *statuses: int, specific: Mapping[int, tuple[str, str, str]] | None = None
) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route: each status with the shared error envelope.

    `specific` replaces, for this route, what a status means (description, code, example
    message) where the shared wording would not be true of it (`/metrics`'s 404)."""
    responses: dict[int | str, dict[str, Any]] = {}
    for status in sorted({*statuses, *(specific or {})}):
        description, code, message = (specific or {}).get(status) or _STATUSES[status]
        example = {"status": "error", "error": {"code": code, "message": message}}
        responses[status] = {
            "model": ErrorEnvelope,
            "description": description,
            "content": {"application/json": {"example": example}},
        }
    return responses


# -- request media types --------------------------------------------------------------------

JSON_MEDIA = "application/json"
FORM_MEDIA = ("application/x-www-form-urlencoded", "multipart/form-data")


def _media_type(request: Request) -> str | None:
    raw = request.headers.get("content-type")
    if raw is None:
        return None
    message = email.message.Message()
    message["content-type"] = raw
    return message.get_content_type()


def _has_body(request: Request) -> bool:
    length = request.headers.get("content-length")
    return (length is not None and length.strip() not in ("", "0")) or (
        "transfer-encoding" in request.headers
    )


def is_json(media_type: str | None) -> bool:
    return media_type == JSON_MEDIA or (
        media_type is not None
        and media_type.startswith("application/")
        and media_type.endswith("+json")
    )


def unsupported_media_type(expected: str = JSON_MEDIA) -> AppError:
    return AppError(
        415,
        "UNSUPPORTED_MEDIA_TYPE",
        f"Tipo de contenido no soportado; envíe {expected}.",
        {"expected": expected},
    )


def require_media_type(request: Request, accepted: Collection[str], expected: str) -> None:
    """415 unless the body (if any) is declared as one of the `accepted` media types; for
    routes that read their body themselves (`/fhir/import`). `expected` names them, in Spanish
    text, for the message."""
    media_type = _media_type(request)
    if media_type is None and not _has_body(request):
        return
    if media_type not in accepted:
        raise unsupported_media_type(expected)


def require_json(request: Request) -> None:
    """415 unless the body (if any) is declared JSON. No body and no Content-Type is left to
    validation (a required body is then 422, as a missing field)."""
    media_type = _media_type(request)
    if media_type is None and not _has_body(request):
        return
    if not is_json(media_type):
        raise unsupported_media_type()


def _require_form(request: Request) -> None:
    media_type = _media_type(request)
    if media_type is None and not _has_body(request):
        return
    if media_type not in FORM_MEDIA:
        raise unsupported_media_type(FORM_MEDIA[0])


def _reads_form(dependant: Dependant) -> bool:
    if any(isinstance(param.field_info, Form) for param in dependant.body_params):
        return True
    return any(_reads_form(sub) for sub in dependant.dependencies)


class MediaTypeRoute(APIRoute):
    """An APIRoute that refuses a body in a media type it does not read (415), before any
    dependency or validation runs, so a form sent to a JSON route is not a confusing 422."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if _reads_form(self.dependant):
            check: Callable[[Request], None] = _require_form
        elif self.body_field is not None:  # (`/query/` reads its body itself, and checks it)
            check = require_json
        else:
            return handler

        async def checked(request: Request) -> Response:
            check(request)
            return await handler(request)

        return checked
