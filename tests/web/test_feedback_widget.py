"""The 👍 / 👎 widget under each answer, in real headless Chromium against a real server: a
clinician rates an answer 👎 with a reason; an auditor then finds it in `GET /feedback`, while
another clinician can neither list ratings nor rate that turn."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import asyncpg
import httpx
import pytest
from playwright.async_api import Browser, expect

from smarthealth.app import create_app
from smarthealth.auth.tokens import issue_token
from smarthealth.config import to_libpq_url
from tests.conftest import insert_user, make_settings
from tests.live_server import LiveServer
from tests.web import test_chat_page as chat_page
from tests.web.test_chat_page import Site, _answer_done, _log_in, _new_page, _pick_patient

# the chat page's browser fixtures, shared (the system Chromium, one per module)
chromium = chat_page.chromium
browser = chat_page.browser


@pytest.fixture(scope="module")
def site(db_url: str, password_hash: str) -> Iterator[Site]:
    app = create_app(make_settings(), database_url=db_url)
    email = "clinica.valora@hospital.test"

    async def _setup() -> dict[str, object]:
        await insert_user(db_url, password_hash, "clinician", email=email)
        conn = await asyncpg.connect(to_libpq_url(db_url))
        try:
            row = await conn.fetchrow(
                "SELECT p.document_type_id, p.document_number FROM smart_health.patients p "
                "WHERE EXISTS (SELECT 1 FROM smart_health.prescriptions r "
                "WHERE r.patient_id = p.patient_id) ORDER BY p.patient_id LIMIT 1"
            )
        finally:
            await conn.close()
        return dict(row)

    patient = asyncio.run(_setup())
    with LiveServer(app) as server:
        yield Site(server, db_url, email, patient)


def _bearer(site: Site, user_id: int, role: str) -> dict[str, str]:
    secret = site.server.server.config.app.state.secret_key  # type: ignore[union-attr]
    return {"Authorization": f"Bearer {issue_token(user_id, role, secret, 10).token}"}


async def test_rate_an_answer_down_with_a_reason(
    browser: Browser, site: Site, password_hash: str
) -> None:
    context, page, watch = await _new_page(browser)
    try:
        await _log_in(page, site)
        await _pick_patient(page, site)
        await page.get_by_label("Pregunta").fill("¿Qué medicamentos tiene prescritos?")
        await page.get_by_role("button", name="Enviar", exact=True).click()
        await _answer_done(page, 0)
        complete = watch.of_type("complete")[0]
        answer = page.locator(".msg-answer").first

        widget = answer.get_by_role("group", name="Valorar esta respuesta")
        await expect(widget.get_by_label("Motivo")).to_be_hidden()
        await widget.get_by_role("button", name="Respuesta con problemas").click()
        await widget.get_by_label("Motivo").select_option(label="Incompleta")
        await widget.get_by_label("Comentario").fill("Falta la dosis de la metformina.")
        await widget.get_by_role("button", name="Enviar valoración").click()
        await expect(widget.get_by_role("status")).to_have_text("Gracias por su valoración.")
        await expect(
            widget.get_by_role("button", name="Respuesta con problemas")
        ).to_have_attribute("aria-pressed", "true")
        await expect(widget.get_by_role("button", name="Respuesta útil")).to_have_attribute(
            "aria-pressed", "false"
        )
        await expect(widget.get_by_label("Motivo")).to_be_hidden()

        # Replayed from the history, the answer shows the rating it was given.
        await page.get_by_role("button", name="Nueva conversación").click()
        await page.locator(".history-item").first.click()
        replayed = page.locator(".msg-answer").first.get_by_role("group")
        await expect(
            replayed.get_by_role("button", name="Respuesta con problemas")
        ).to_have_attribute("aria-pressed", "true")
        assert not watch.problems, watch.problems
    finally:
        await context.close()

    auditor = await insert_user(site.db_url, password_hash, "auditor")
    other = await insert_user(site.db_url, password_hash, "clinician")
    turn = {
        "session_id": complete["session_id"],
        "sequence_chat_id": complete["sequence_chat_id"],
    }
    async with httpx.AsyncClient(base_url=site.server.http) as client:
        listed = await client.get("/feedback", headers=_bearer(site, auditor, "auditor"))
        assert listed.status_code == 200, listed.text
        mine = [
            i
            for i in listed.json()["items"]
            if i["session_id"] == complete["session_uuid"]
            and i["sequence_chat_id"] == complete["sequence_chat_id"]
        ]
        assert len(mine) == 1
        assert mine[0]["rating"] == "down" and mine[0]["reason"] == "incomplete"
        assert mine[0]["comment"] == "Falta la dosis de la metformina."
        assert mine[0]["question"] == "¿Qué medicamentos tiene prescritos?"

        as_other = _bearer(site, other, "clinician")
        refused = await client.get("/feedback", headers=as_other)
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "FORBIDDEN"
        hijack = await client.post("/feedback", json={**turn, "rating": "up"}, headers=as_other)
        assert hijack.status_code == 404
        assert hijack.json()["error"]["code"] == "TURN_NOT_FOUND"
        again = await client.get("/feedback", headers=_bearer(site, auditor, "auditor"))
        still = [i for i in again.json()["items"] if i["session_id"] == complete["session_uuid"]]
        assert [i["rating"] for i in still] == ["down"]  # the other clinician changed nothing
