"""`/auth/register`, `/auth/login` (JSON) and `/auth/token` (OAuth2 form, for Swagger)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Form, Request
from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints
from sqlalchemy import func, select

from smarthealth.audit.service import AuditEvent, ClientInfo, record_event
from smarthealth.auth import throttle
from smarthealth.auth.passwords import verify_password
from smarthealth.auth.tokens import issue_token
from smarthealth.contract import JSON_BODY, MediaTypeRoute, error_responses
from smarthealth.db.session import SessionDep
from smarthealth.errors import AppError
from smarthealth.inputs import (
    IDENTITY_PATTERN,
    LINE_PATTERN,
    identity_text,
    secret_text,
    text_schema,
)
from smarthealth.models import User
from smarthealth.users.schemas import MAX_EMAIL, RegisterIn, UserOut
from smarthealth.users.service import create_user

router = APIRouter(prefix="/auth", tags=["auth"], route_class=MediaTypeRoute)

BAD_CREDENTIALS = "Correo o contraseña incorrectos."


# Any string may be tried as a login (a wrong one is a 401), but not one that breaks the input
# policy (smarthealth.inputs): that is a 422 naming the field, before the database is asked.
LoginEmail = Annotated[
    str,
    StringConstraints(min_length=1, max_length=254),
    AfterValidator(identity_text),
    text_schema(IDENTITY_PATTERN, 1, 254, examples=["clinico@smarthealth.demo"]),
]
LoginPassword = Annotated[
    str,
    StringConstraints(min_length=1, max_length=1024),
    AfterValidator(secret_text),
    text_schema(LINE_PATTERN, 1, 1024, format="password"),
]


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: LoginEmail
    password: LoginPassword


class PasswordForm:
    """OAuth2 password form (what Swagger's "Authorize" sends), under the same input policy as
    the JSON login: `grant_type` must be "password" when given, scopes and client are ignored."""

    def __init__(
        self,
        username: Annotated[LoginEmail, Form()],
        password: Annotated[LoginPassword, Form(json_schema_extra={"format": "password"})],
        grant_type: Annotated[str | None, Form(pattern="^password$")] = None,
        scope: Annotated[str, Form(max_length=1024)] = "",
        client_id: Annotated[str | None, Form(max_length=256)] = None,
        client_secret: Annotated[
            str | None, Form(max_length=256, json_schema_extra={"format": "password"})
        ] = None,
    ) -> None:
        self.username = username
        self.password = password


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth2 token type
    expires_in: int


@router.post(
    "/register",
    status_code=201,
    response_model=UserOut,
    summary="Crear una cuenta (según la política de registro)",
    description="Who may call: anyone, while `SMARTHEALTH_REGISTRATION` is `open` (an active "
    "clinician) or `approval` (inactive until an administrator activates it); `closed` is 403 "
    "`REGISTRATION_CLOSED`. An e-mail already in use is 409 `EMAIL_TAKEN`.",
    responses=error_responses(403, 409, 503, *JSON_BODY),
)
async def register(body: RegisterIn, request: Request, session: SessionDep) -> User:
    policy = request.app.state.settings.registration_policy
    if policy == "closed":
        raise AppError(403, "REGISTRATION_CLOSED", "El registro de cuentas está cerrado.")
    async with session.begin():
        user = await create_user(
            session,
            email=body.email,
            password=body.password,
            full_name=body.full_name,
            role="clinician",
            is_active=policy == "open",
            event_type="user.registered",
            actor_id=None,
            client=ClientInfo.from_request(request),
        )
    return user


async def _login(request: Request, session: SessionDep, email: str, password: str) -> TokenOut:
    email = email.strip().lower()
    # Lower-casing can lengthen a text ("İ" is two code points): what is counted and audited
    # fits the column; the account is looked up by the whole text (and cannot match).
    key = email[:MAX_EMAIL]
    client = ClientInfo.from_request(request)
    settings = request.app.state.settings
    async with session.begin():
        await throttle.lock_account(session, key)
        wait = await throttle.retry_after(session, key, client.address)
        if wait is not None:
            await record_event(
                session,
                AuditEvent("login.failure", client, outcome="rate_limited", details={"email": key}),
            )
            error = throttle.throttled(wait)
        else:
            user = await session.scalar(select(User).where(User.email == email))
            valid = await verify_password(password, user.password_hash if user else None)
            if user is None or not valid or not user.is_active:
                await throttle.record_attempt(session, key, client.address, succeeded=False)
                outcome = "inactive" if (user is not None and valid) else "bad_credentials"
                await record_event(
                    session,
                    AuditEvent(
                        "login.failure",
                        client,
                        user_id=user.user_id if user else None,
                        outcome=outcome,
                        details={"email": key},
                    ),
                )
                error = (
                    AppError(
                        403,
                        "ACCOUNT_INACTIVE",
                        "La cuenta está inactiva o pendiente de aprobación.",
                    )
                    if outcome == "inactive"
                    else AppError(
                        401, "UNAUTHORIZED", BAD_CREDENTIALS, headers={"WWW-Authenticate": "Bearer"}
                    )
                )
            else:
                await throttle.record_attempt(session, key, client.address, succeeded=True)
                user.last_login_at = func.now()
                await record_event(
                    session, AuditEvent("login.success", client, user_id=user.user_id)
                )
                issued = issue_token(
                    user.user_id,
                    user.role,
                    request.app.state.secret_key,
                    settings.access_token_expire_minutes,
                )
                return TokenOut(access_token=issued.token, expires_in=issued.expires_in)
    # The failure was audited and committed above; now tell the client.
    raise error


@router.post(
    "/login",
    response_model=TokenOut,
    summary="Iniciar sesión (JSON)",
    description="Who may call: anyone. Wrong credentials are 401, an inactive account 403 "
    "`ACCOUNT_INACTIVE`; after 5 failures for one account (or 20 from one address) in 15 "
    "minutes, 429 `RATE_LIMITED` with `Retry-After`.",
    responses=error_responses(401, 403, 429, 503, *JSON_BODY),
)
async def login(body: LoginIn, request: Request, session: SessionDep) -> TokenOut:
    return await _login(request, session, body.email, body.password)


@router.post(
    "/token",
    response_model=TokenOut,
    summary="Iniciar sesión (formulario OAuth2)",
    description="Who may call: anyone. The same as `/auth/login`, as an OAuth2 password form "
    "(`application/x-www-form-urlencoded`, what Swagger's Authorize sends).",
    responses=error_responses(401, 403, 429, 503, *JSON_BODY),
)
async def token(
    form: Annotated[PasswordForm, Depends()], request: Request, session: SessionDep
) -> TokenOut:
    return await _login(request, session, form.username, form.password)
