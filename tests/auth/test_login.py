"""Registration policies, password rules, login, throttling, and the signing secret."""

from __future__ import annotations

import stat
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from smarthealth.app import create_app
from smarthealth.auth.secret import ConfigurationError
from tests.conftest import PASSWORD, insert_user, lifespan_client, make_settings


def _email() -> str:
    return f"persona-{uuid.uuid4().hex[:10]}@hospital.test"


@pytest.fixture(scope="module")
async def clients(db_url: str) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    """One client per registration policy, all on the same database."""
    made: dict[str, httpx.AsyncClient] = {}
    generators = []
    for policy in ("open", "approval", "closed"):
        gen = lifespan_client(create_app(make_settings(registration=policy), database_url=db_url))
        made[policy] = await gen.__anext__()
        generators.append(gen)
    yield made
    for gen in generators:
        await gen.aclose()


def _from(client: httpx.AsyncClient, address: str) -> httpx.AsyncClient:
    """The same app seen from another client address (throttling is per address too)."""
    transport = httpx.ASGITransport(app=client._transport.app, client=(address, 40000))  # type: ignore[attr-defined]
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def test_open_registration_creates_an_active_clinician(
    clients: dict[str, httpx.AsyncClient],
) -> None:
    email = _email()
    response = await clients["open"].post(
        "/auth/register", json={"email": email.upper(), "password": PASSWORD, "full_name": "Ana"}
    )
    assert response.status_code == 201
    body = response.json()
    assert body["email"] == email and body["role"] == "clinician" and body["is_active"] is True
    assert "password" not in response.text and "argon2" not in response.text
    login = await clients["open"].post("/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200
    token = login.json()
    assert token["token_type"] == "bearer" and token["expires_in"] == 30 * 60
    me = await clients["open"].get(
        "/users/me", headers={"Authorization": f"Bearer {token['access_token']}"}
    )
    assert me.json()["email"] == email


async def test_approval_registration_is_inactive_until_activated(
    clients: dict[str, httpx.AsyncClient],
) -> None:
    email = _email()
    response = await clients["approval"].post(
        "/auth/register", json={"email": email, "password": PASSWORD, "full_name": "Beto"}
    )
    assert response.status_code == 201 and response.json()["is_active"] is False
    login = await clients["approval"].post(
        "/auth/login", json={"email": email, "password": PASSWORD}
    )
    assert login.status_code == 403
    assert login.json()["error"]["code"] == "ACCOUNT_INACTIVE"


async def test_closed_registration_is_refused(clients: dict[str, httpx.AsyncClient]) -> None:
    response = await clients["closed"].post(
        "/auth/register", json={"email": _email(), "password": PASSWORD, "full_name": "Carla"}
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "REGISTRATION_CLOSED"


def test_default_policy_depends_on_environment() -> None:
    assert make_settings().registration_policy == "open"
    assert make_settings(app_env="production", secret_key="x" * 40).registration_policy == (
        "approval"
    )


@pytest.mark.parametrize(
    ("password", "field_error"),
    [("corta", True), ("x" * 129, True), ("SAME@hospital.test", False)],
)
async def test_password_rules(
    clients: dict[str, httpx.AsyncClient], password: str, field_error: bool
) -> None:
    body = {"email": "same@hospital.test", "password": password, "full_name": "Dora"}
    response = await clients["open"].post("/auth/register", json=body)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "INVALID_INPUT"


async def test_duplicate_registration_is_409(clients: dict[str, httpx.AsyncClient]) -> None:
    email = _email()
    body = {"email": email, "password": PASSWORD, "full_name": "Elena"}
    assert (await clients["open"].post("/auth/register", json=body)).status_code == 201
    again = await clients["open"].post("/auth/register", json={**body, "email": email.upper()})
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "EMAIL_TAKEN"


async def test_unknown_email_and_wrong_password_look_the_same(
    clients: dict[str, httpx.AsyncClient], db_url: str, password_hash: str
) -> None:
    client = _from(clients["open"], "10.0.0.21")
    email = _email()
    await insert_user(db_url, password_hash, email=email)
    timings = {}
    bodies = {}
    for case, login_email in (("unknown", _email()), ("wrong", email)):
        started = time.perf_counter()
        response = await client.post(
            "/auth/login", json={"email": login_email, "password": "no-es-la-clave"}
        )
        timings[case] = time.perf_counter() - started
        assert response.status_code == 401
        bodies[case] = response.json()
    assert bodies["unknown"] == bodies["wrong"]
    # Both pay for one Argon2 verification (tens of milliseconds): neither is a shortcut.
    assert min(timings.values()) > 0.3 * max(timings.values())


async def test_sixth_attempt_is_throttled_even_with_the_right_password(
    clients: dict[str, httpx.AsyncClient], db_url: str, password_hash: str
) -> None:
    client = _from(clients["open"], "10.0.0.22")
    email = _email()
    await insert_user(db_url, password_hash, email=email)
    for _ in range(5):
        wrong = await client.post("/auth/login", json={"email": email, "password": "incorrecta1"})
        assert wrong.status_code == 401
    sixth = await client.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert sixth.status_code == 429
    assert sixth.json()["error"]["code"] == "RATE_LIMITED"
    retry_after = int(sixth.headers["retry-after"])
    assert 0 < retry_after <= 15 * 60
    form = await client.post("/auth/token", data={"username": email, "password": PASSWORD})
    assert form.status_code == 429
    # Another account is not affected by this one's lock.
    other = _email()
    await insert_user(db_url, password_hash, email=other)
    ok = await client.post("/auth/login", json={"email": other, "password": PASSWORD})
    assert ok.status_code == 200


async def test_one_address_guessing_many_accounts_is_throttled(
    clients: dict[str, httpx.AsyncClient], db_url: str, password_hash: str
) -> None:
    client = _from(clients["open"], "10.0.0.23")
    for _ in range(20):
        response = await client.post(
            "/auth/login", json={"email": _email(), "password": "adivinando1"}
        )
        assert response.status_code == 401
    email = _email()
    await insert_user(db_url, password_hash, email=email)
    blocked = await client.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert blocked.status_code == 429
    elsewhere = _from(clients["open"], "10.0.0.24")
    assert (
        await elsewhere.post("/auth/login", json={"email": email, "password": PASSWORD})
    ).status_code == 200


async def test_oauth2_form_login_for_swagger(
    clients: dict[str, httpx.AsyncClient], db_url: str, password_hash: str
) -> None:
    email = _email()
    await insert_user(db_url, password_hash, email=email)
    response = await clients["open"].post(
        "/auth/token", data={"username": email, "password": PASSWORD}
    )
    assert response.status_code == 200 and response.json()["token_type"] == "bearer"


def test_production_refuses_to_start_without_a_strong_secret(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="SECRET_KEY is required"):
        create_app(
            make_settings(app_env="production", secret_key=None, SMARTHEALTH_DATA_DIR=tmp_path)
        )
    with pytest.raises(ConfigurationError, match="at least 32"):
        create_app(make_settings(app_env="production", secret_key="short"))
    create_app(make_settings(app_env="production", secret_key="k" * 32))


def test_development_secret_is_generated_once_with_mode_0600(tmp_path: Path) -> None:
    first = create_app(make_settings(secret_key=None, SMARTHEALTH_DATA_DIR=tmp_path))
    secret_file = tmp_path / "secret_key"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    second = create_app(make_settings(secret_key=None, SMARTHEALTH_DATA_DIR=tmp_path))
    assert first.state.secret_key == second.state.secret_key
    assert len(first.state.secret_key) >= 32
