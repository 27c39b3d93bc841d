"""Fuzzing the REST API from its own OpenAPI document (schemathesis), against a real uvicorn
server on a real database, as an administrator and as a clinician.

What it holds (schemathesis's own checks): no 5xx; every status returned is declared for the
operation; responses have the declared media type and match the declared schema; a request
valid under the document is never refused with a 4xx other than 401/403/404/409 (credentials,
permissions, things that do not exist, conflicts with what exists); an undeclared method is 405
with `Allow`. Fixed seed, bounded examples per operation: the same requests every run.

Between cases the two fuzzing accounts are put back as they were (a case may deactivate one,
change its role, e-mail or password, which would turn the rest of the run into 401s) and the
login-attempt counters are emptied (random logins would otherwise throttle the address into
429s); the throttle itself is untouched, and tested in tests/auth.
"""

from __future__ import annotations

import asyncio
import collections
import json
from collections.abc import Iterator
from dataclasses import dataclass, field

import asyncpg
import pytest
import requests
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    allow_header_conformance,
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from smarthealth.app import create_app
from smarthealth.config import to_libpq_url
from tests.conftest import PASSWORD, insert_user, make_settings
from tests.live_server import LiveServer

SEED = 20260115
MAX_EXAMPLES = 8  # per operation and role, in the fuzzing phase
# The examples in the document ask about this patient: one of the seeded ones takes its number.
EXAMPLE_DOCUMENT = "1012345678"

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    positive_data_acceptance,
    negative_data_rejection,
    unsupported_method,
    allow_header_conformance,
]

CONFIG = {
    "seed": SEED,
    # no example database: the same requests every run, wherever it runs
    "generation": {"mode": "positive", "max-examples": MAX_EXAMPLES, "database": "none"},
    "phases": {
        "examples": {"enabled": True},
        # boundary values, and (negative) what the document forbids: out-of-range numbers,
        # "0.5" for a date, missing fields, methods an operation does not have (405)
        "coverage": {"enabled": True, "generation": {"mode": "all"}},
        "fuzzing": {"enabled": True},
        "stateful": {"enabled": False},
    },
    "checks": {
        # schema-valid requests: only credentials, permissions, absent things and conflicts
        # may refuse them (not 400/422, nor 429: the counters are reset between cases)
        "positive_data_acceptance": {"expected-statuses": ["2xx", "401", "403", "404", "409"]},
        # requests the document forbids: refused as invalid, or before that by the token
        "negative_data_rejection": {
            "expected-statuses": ["400", "401", "403", "405", "413", "415", "422"]
        },
    },
}


# NDJSON bodies (`POST /fhir/import`): the document states them as text with a pattern; sent
# as that text (anything else a case holds, negative data, as one JSON line).
@schemathesis.serializer("application/x-ndjson", "application/fhir+ndjson", "application/ndjson")
def _ndjson(_: object, value: object) -> bytes:
    text = value if isinstance(value, str) else json.dumps(value)
    return text.encode("utf-8", "surrogatepass")


@dataclass
class Account:
    user_id: int
    email: str
    role: str
    token: str = ""


@dataclass
class Fuzz:
    server: LiveServer
    accounts: dict[str, Account]
    reset: asyncpg.Connection
    loop: asyncio.AbstractEventLoop
    password_hash: str
    statuses: collections.Counter[tuple[str, int]] = field(default_factory=collections.Counter)
    dirty: bool = True  # a request since the last restore could have changed the accounts

    def restore_accounts(self) -> None:
        """The fuzzing accounts as they were, and no login attempts counted (only needed after
        a request that could change them: GET changes nothing)."""
        if not self.dirty:
            return
        self.dirty = False

        async def restore() -> None:
            async with self.reset.transaction():
                for account in self.accounts.values():
                    await self.reset.execute(
                        "UPDATE smart_health.users SET email = $2, role = $3, is_active = true, "
                        "password_hash = $4, tokens_valid_from = NULL, full_name = $5 "
                        "WHERE user_id = $1",
                        account.user_id,
                        account.email,
                        account.role,
                        self.password_hash,
                        f"Fuzz {account.role}",
                    )
                await self.reset.execute("DELETE FROM smart_health.login_attempts")

        self.loop.run_until_complete(restore())


@pytest.fixture(scope="module")
def fuzz(db_url: str, password_hash: str, request: pytest.FixtureRequest) -> Iterator[Fuzz]:
    loop = asyncio.new_event_loop()
    accounts = {}
    for role in ("admin", "clinician"):
        email = f"fuzz-{role}@hospital.test"
        user_id = loop.run_until_complete(insert_user(db_url, password_hash, role, email=email))
        accounts[role] = Account(user_id, email, role)
    conn = loop.run_until_complete(asyncpg.connect(to_libpq_url(db_url)))
    loop.run_until_complete(
        conn.execute(
            "UPDATE smart_health.patients SET document_type_id = 1, document_number = $1 "
            "WHERE patient_id = (SELECT min(patient_id) FROM smart_health.patients)",
            EXAMPLE_DOCUMENT,
        )
    )
    app = create_app(make_settings(registration="open"), database_url=db_url)
    with LiveServer(app) as server:
        state = Fuzz(server, accounts, conn, loop, password_hash)
        for account in accounts.values():  # a real login, as any client
            response = requests.post(
                f"{server.http}/auth/login",
                json={"email": account.email, "password": PASSWORD},
                timeout=30,
            )
            assert response.status_code == 200, response.text
            account.token = response.json()["access_token"]
        yield state
        _report(request, state)
    loop.run_until_complete(conn.close())
    loop.close()


def _report(request: pytest.FixtureRequest, state: Fuzz) -> None:
    """One line per role on the terminal: how many requests, and which statuses came back."""
    plugins = request.config.pluginmanager
    reporter, capture = plugins.get_plugin("terminalreporter"), plugins.get_plugin("capturemanager")
    if reporter is None or capture is None:
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line("")
        for role in state.accounts:
            counts = {s: n for (r, s), n in sorted(state.statuses.items()) if r == role}
            reporter.write_line(f"fuzz as {role}: {sum(counts.values())} requests, {counts}")


# The document the app serves at /openapi.json (built from the routes, no database needed), so
# that pytest can collect one test per operation; the live server is checked to serve the same.
DOCUMENT = create_app(make_settings(registration="open")).openapi()
schema = schemathesis.openapi.from_dict(DOCUMENT, config=schemathesis.Config.from_dict(CONFIG))


def test_the_server_serves_the_fuzzed_document(fuzz: Fuzz) -> None:
    served = requests.get(f"{fuzz.server.http}/openapi.json", timeout=30)
    assert served.status_code == 200
    assert served.json() == DOCUMENT


def _call(fuzz: Fuzz, case: schemathesis.Case, role: str) -> None:
    fuzz.restore_accounts()
    headers = {"Authorization": f"Bearer {fuzz.accounts[role].token}"}
    fuzz.dirty = fuzz.dirty or case.method.upper() != "GET"
    response = case.call_and_validate(
        base_url=fuzz.server.http, headers=headers, checks=CHECKS, timeout=60
    )
    fuzz.statuses[(role, response.status_code)] += 1


@schema.parametrize()
def test_fuzz_as_admin(case: schemathesis.Case, fuzz: Fuzz) -> None:
    _call(fuzz, case, "admin")


@schema.parametrize()
def test_fuzz_as_clinician(case: schemathesis.Case, fuzz: Fuzz) -> None:
    _call(fuzz, case, "clinician")
