"""The chat page in a real headless Chromium against a real uvicorn server and database.

Chromium comes from the system (`/usr/bin/chromium`, installed by `make test`); Playwright only
drives it, so no browser download is ever needed.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Dialog,
    Page,
    WebSocket,
    WebSocketRoute,
    async_playwright,
    expect,
)

from smarthealth.app import create_app
from smarthealth.config import to_libpq_url
from tests.conftest import PASSWORD, insert_user, make_settings
from tests.live_server import LiveServer
from tests.paced_engine import PacedEngine

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
OUTPUT = Path(__file__).resolve().parents[2] / "test-output"
XSS = "<img src=x onerror=alert(1)>"
ANSWER_WAIT_MS = 20_000


@dataclass
class Site:
    server: LiveServer
    db_url: str
    email: str
    patient: dict[str, Any]  # document_type_id, code, document_number, full_name

    @property
    def chat(self) -> str:
        return self.server.http + "/chat"


@pytest.fixture(scope="module")
def site(db_url: str, password_hash: str) -> Iterator[Site]:
    app = create_app(make_settings(), database_url=db_url)
    email = "clinica.web@hospital.test"

    async def _setup() -> dict[str, Any]:
        await insert_user(db_url, password_hash, "clinician", email=email)
        conn = await asyncpg.connect(to_libpq_url(db_url))
        try:
            row = await conn.fetchrow(
                "SELECT p.document_type_id, t.code, p.document_number, concat_ws(' ', "
                "p.first_name, p.middle_name, p.first_surname, p.second_surname) AS full_name "
                "FROM smart_health.patients p JOIN smart_health.document_types t "
                "USING (document_type_id) WHERE EXISTS (SELECT 1 FROM "
                "smart_health.prescriptions r WHERE r.patient_id = p.patient_id) "
                "ORDER BY p.patient_id LIMIT 1"
            )
        finally:
            await conn.close()
        return dict(row)

    patient = asyncio.run(_setup())
    with LiveServer(app) as server:
        server.server.config.app.state.pipeline.engine = PacedEngine(0.025)  # type: ignore[union-attr]
        yield Site(server, db_url, email, patient)


@pytest.fixture(scope="module")
def chromium() -> str:
    """The system Chromium; missing is a failure (not a skip): `make test` installs it."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: install it with `apt-get install -y chromium` "
            "(`make test` does it for you).",
            pytrace=False,
        )
    OUTPUT.mkdir(exist_ok=True)  # screenshots land here (git-ignored)
    return str(CHROMIUM)


@pytest.fixture(scope="module")
async def browser(chromium: str) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=chromium, args=CHROMIUM_ARGS, headless=True
        )
        yield launched
        await launched.close()


@dataclass
class Watch:
    """Everything the page did that a test may want to assert on."""

    received: list[dict[str, Any]] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # uncaught errors, CSP violations

    def attach(self, page: Page) -> None:
        page.on("websocket", self._on_socket)
        page.on("dialog", self._on_dialog)
        page.on("pageerror", lambda error: self.problems.append(f"pageerror: {error}"))
        page.on("console", self._on_console)

    def _on_socket(self, socket: WebSocket) -> None:
        socket.on("framereceived", lambda payload: self.received.append(_frame(payload)))
        socket.on("framesent", lambda payload: self.sent.append(_frame(payload)))

    async def _on_dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(dialog.message)
        await dialog.dismiss()

    def _on_console(self, message: ConsoleMessage) -> None:
        text = message.text
        if "Content Security Policy" in text or "Refused to" in text:
            self.problems.append(f"console: {text}")

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [f for f in self.received if f.get("type") == kind]

    def queries(self) -> list[dict[str, Any]]:
        return [f for f in self.sent if f.get("type") == "query"]


def _frame(payload: str | bytes) -> dict[str, Any]:
    try:
        value = json.loads(payload)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


async def _new_page(
    browser: Browser, width: int = 1280, height: int = 800
) -> tuple[BrowserContext, Page, Watch]:
    context = await browser.new_context(viewport={"width": width, "height": height}, locale="es-CO")
    page = await context.new_page()
    watch = Watch()
    watch.attach(page)
    return context, page, watch


async def _log_in(page: Page, site: Site, email: str | None = None) -> None:
    await page.goto(site.chat)
    await page.get_by_label("Correo electrónico").fill(email or site.email)
    await page.get_by_label("Contraseña").fill(PASSWORD)
    await page.get_by_role("button", name="Entrar").click()
    await expect(page.locator("#app-view")).to_be_visible()
    await expect(page.locator("#connection")).to_have_attribute("data-state", "up")
    await expect(page.locator("#document-type option")).to_have_count(8)


async def _pick_patient(page: Page, site: Site) -> None:
    await page.get_by_label("Tipo de documento").select_option(
        str(site.patient["document_type_id"])
    )
    await page.get_by_label("Número de documento").fill(site.patient["document_number"])


async def _answer_done(page: Page, index: int) -> None:
    answer = page.locator(".msg-answer").nth(index)
    await expect(answer.locator(".msg-meta")).not_to_be_empty(timeout=ANSWER_WAIT_MS)
    await expect(answer).not_to_have_class(re.compile(r"\bstreaming\b"))


async def test_page_is_served_with_a_strict_policy(site: Site) -> None:
    async with httpx.AsyncClient(base_url=site.server.http) as client:
        page = await client.get("/chat")
        script = await client.get("/chat/static/app.js")
        links = (await client.get("/")).json()["links"]
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    for directive in (
        "default-src 'self'",
        "connect-src 'self' ws: wss:",
        "img-src 'self' data:",
        "frame-ancestors 'none'",
    ):
        assert directive in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert script.headers["x-content-type-options"] == "nosniff"
    for sink in (
        ".innerHTML",
        ".outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "localStorage.",
    ):
        assert sink not in script.text, sink
    assert links["chat"] == "/chat"


async def test_a_clinicians_conversation(browser: Browser, site: Site) -> None:
    started = time.monotonic()
    context, page, watch = await _new_page(browser)
    try:
        # A wrong password shows the envelope's Spanish message.
        await page.goto(site.chat)
        await page.get_by_label("Correo electrónico").fill(site.email)
        await page.get_by_label("Contraseña").fill("no-es-la-clave")
        await page.keyboard.press("Enter")
        await expect(page.get_by_role("alert")).to_have_text("Correo o contraseña incorrectos.")

        await _log_in(page, site)
        await _pick_patient(page, site)

        # 1. The first question: tokens stream into the bubble before `complete`.
        await page.get_by_label("Pregunta").fill("¿Qué medicamentos tiene prescritos?")
        await page.get_by_role("button", name="Enviar").click()
        await expect(page.get_by_role("button", name="Cancelar")).to_be_visible()
        answer = page.locator(".msg-answer").first
        seen: list[int] = []
        while not await answer.locator(".msg-meta").text_content():
            sample = await answer.evaluate(
                "a => [a.classList.contains('streaming'),"
                " a.querySelector('.msg-text').textContent.length]"
            )
            if sample[0]:
                seen.append(sample[1])
            await asyncio.sleep(0.02)
        await _answer_done(page, 0)
        complete = watch.of_type("complete")[0]
        final_text = complete["answer"]["text"]
        await expect(answer.locator(".msg-text")).to_have_text(final_text)
        streamed = sorted({n for n in seen if 0 < n < len(final_text)})
        assert len(streamed) >= 2, f"no streaming observed: {seen}"
        kinds = [f["type"] for f in watch.received]
        assert kinds.count("token") > 3 and kinds.index("token") < kinds.index("complete")
        await expect(page.get_by_role("button", name="Cancelar")).to_be_hidden()

        # The patient card comes from the answer's patient_info.
        card = page.locator("#patient-card")
        await expect(card).to_contain_text(site.patient["full_name"])
        await expect(card).to_contain_text(
            f"{site.patient['code']} {site.patient['document_number']}"
        )
        await expect(page.locator("#patient-form")).to_be_hidden()  # the card replaces it

        # 2. A citation opens the cited source; Escape closes it and focus returns.
        citation = answer.locator("button.citation").first
        await expect(citation).to_be_visible()
        number = int((await citation.text_content() or "").strip("[]"))
        source = next(s for s in complete["sources"] if s["source_id"] == number)
        await citation.click()
        panel = page.get_by_role("dialog")
        await expect(panel).to_be_visible()
        await expect(panel.locator("#source-text")).to_have_text(source["text"])
        await expect(panel).to_contain_text(f"Fuente [{number}]")
        await page.screenshot(path=str(OUTPUT / "chat-source.png"))
        await page.keyboard.press("Escape")
        await expect(panel).to_be_hidden()
        await expect(citation).to_be_focused()

        # 3. A follow-up, sent with Enter, continues the same session.
        question = page.get_by_label("Pregunta")
        await question.fill("¿y la dosis?")
        await question.press("Enter")
        await _answer_done(page, 1)
        first_session = complete["session_id"]
        assert watch.queries()[1]["session_id"] == first_session
        assert watch.of_type("complete")[1]["session_id"] == first_session
        await expect(page.locator(".msg-answer").nth(1).locator(".msg-text")).to_have_text(
            watch.of_type("complete")[1]["answer"]["text"]
        )

        # 4. The history sidebar lists the session; opening it replays and continues it.
        item = page.locator(f'.history-item[data-session-id="{first_session}"]')
        await expect(item).to_contain_text(site.patient["full_name"])
        await expect(item).to_contain_text("¿Qué medicamentos tiene prescritos?")
        await expect(item).to_have_attribute("aria-current", "true")
        await page.get_by_role("button", name="Nueva conversación").click()
        await expect(page.locator(".msg")).to_have_count(0)
        await expect(card).to_be_hidden()
        await expect(page.get_by_label("Número de documento")).to_be_editable()
        await item.click()
        await expect(page.locator(".msg-answer")).to_have_count(2)
        await expect(page.locator(".msg-question .msg-text").first).to_have_text(
            "¿Qué medicamentos tiene prescritos?"
        )
        await expect(card).to_contain_text(site.patient["full_name"])
        await expect(
            page.locator(".msg-answer").first.locator("button.citation")
        ).not_to_have_count(0)

        # 5. Markup in a question is shown as text, never run or rendered.
        await question.fill(f"{XSS} ¿Tiene alergias?")
        await question.press("Enter")
        await _answer_done(page, 2)
        assert watch.queries()[-1]["session_id"] == first_session
        await expect(page.locator(".msg-question").last).to_contain_text(XSS)
        await expect(page.get_by_text(XSS, exact=False)).to_be_visible()
        assert await page.locator("#messages img").count() == 0
        assert await page.locator("img").count() == 0

        # The token is in sessionStorage only: no localStorage, no cookies.
        assert await page.evaluate("() => localStorage.length") == 0
        assert await context.cookies() == []
        saved = await page.evaluate("() => sessionStorage.getItem('smarthealth.token')")
        assert saved and json.loads(saved)["token"]

        await page.screenshot(path=str(OUTPUT / "chat.png"))

        # A reload keeps the login (sessionStorage) but not the conversation on screen.
        await page.reload()
        await expect(page.locator("#app-view")).to_be_visible()
        await expect(item).to_be_visible()

        # Logging out forgets the token and shows the login form.
        await page.get_by_role("button", name="Cerrar sesión").click()
        await expect(page.locator("#login-form")).to_be_visible()
        assert await page.evaluate("() => sessionStorage.length") == 0
        await expect(page.locator("#messages .msg")).to_have_count(0)

        await asyncio.sleep(0.2)  # let a late alert() surface, if one were ever scheduled
        assert watch.dialogs == []
        assert watch.problems == []
    finally:
        await context.close()
    print(f"browser conversation took {time.monotonic() - started:.1f} s")


async def test_cancel_and_unknown_patient(browser: Browser, site: Site) -> None:
    context, page, watch = await _new_page(browser)
    try:
        await _log_in(page, site)
        await page.get_by_label("Número de documento").fill("000000001")
        await page.get_by_label("Pregunta").fill("¿Tiene alergias?")
        await page.keyboard.press("Enter")
        await expect(page.locator("#patient-error")).to_have_text(
            "No existe un paciente con ese tipo y número de documento."
        )
        await expect(page.locator(".msg-answer.is-error")).to_be_visible()
        await expect(page.get_by_label("Número de documento")).to_be_enabled()

        # Cancel while streaming; the next question gets its own answer.
        await _pick_patient(page, site)
        await page.get_by_label("Pregunta").fill("Resumen de la historia clínica")
        await page.keyboard.press("Enter")
        await expect(page.locator(".msg-answer.streaming")).to_be_visible(timeout=ANSWER_WAIT_MS)
        await page.get_by_role("button", name="Cancelar").click()
        await expect(page.locator(".msg-answer").nth(1)).to_contain_text("Respuesta cancelada.")
        assert {"type": "cancel"} in watch.sent
        await page.get_by_label("Pregunta").fill("¿Tiene alergias?")
        await page.keyboard.press("Enter")
        await _answer_done(page, 2)
        final = watch.of_type("complete")[-1]["answer"]["text"]
        await expect(page.locator(".msg-answer").nth(2).locator(".msg-text")).to_have_text(final)
        # Each question has its own id: the cancelled answer's late frames are told apart.
        ids = [m["id"] for m in watch.sent if m["type"] == "query"]
        assert len(ids) == 3 and ids == sorted(set(ids))
        assert watch.of_type("complete")[-1]["id"] == ids[-1]
        assert watch.problems == []
    finally:
        await context.close()


async def test_a_refused_socket_goes_back_to_login(
    browser: Browser, site: Site, password_hash: str
) -> None:
    email = "desactivada.web@hospital.test"
    user_id = await insert_user(site.db_url, password_hash, "clinician", email=email)
    context, page, _ = await _new_page(browser)
    try:
        await _log_in(page, site, email)
        conn = await asyncpg.connect(to_libpq_url(site.db_url))
        try:
            await conn.execute(
                "UPDATE smart_health.users SET is_active = false WHERE user_id = $1", user_id
            )
        finally:
            await conn.close()
        await _pick_patient(page, site)
        await page.get_by_label("Pregunta").fill("¿Tiene alergias?")
        await page.keyboard.press("Enter")
        # The server answers UNAUTHORIZED and closes with 1008: no reconnect loop, a login form.
        await expect(page.locator("#login-form")).to_be_visible(timeout=ANSWER_WAIT_MS)
        await expect(page.locator("#login-notice")).to_have_text(
            "Su sesión ya no es válida. Inicie sesión de nuevo."
        )
        assert await page.evaluate("() => sessionStorage.length") == 0
    finally:
        await context.close()


async def test_a_dropped_socket_reconnects_and_expiry_logs_out(
    browser: Browser, site: Site
) -> None:
    context, page, _ = await _new_page(browser)
    sockets: list[WebSocketRoute] = []

    def through(route: WebSocketRoute) -> None:
        route.connect_to_server()  # a transparent proxy we can cut
        sockets.append(route)

    await page.route_web_socket(re.compile(r"/ws/chat"), through)
    try:
        await _log_in(page, site)
        assert len(sockets) == 1
        await sockets[0].close(code=1006, reason="")  # dropped, e.g. a restarting proxy
        await expect(page.locator("#connection")).to_have_attribute("data-state", "down")
        await expect(page.locator("#connection")).to_have_attribute("data-state", "up")
        assert len(sockets) == 2

        # The new socket answers.
        await _pick_patient(page, site)
        await page.get_by_label("Pregunta").fill("¿Tiene alergias?")
        await page.keyboard.press("Enter")
        await _answer_done(page, 0)

        # An expired token closes with 1008: back to the login form, no reconnection.
        await sockets[1].close(code=1008, reason="TOKEN_EXPIRED")
        await expect(page.locator("#login-notice")).to_have_text(
            "Su sesión expiró. Inicie sesión de nuevo."
        )
        await expect(page.get_by_label("Correo electrónico")).to_be_focused()
        await asyncio.sleep(1.5)  # longer than the first backoff steps
        assert len(sockets) == 2
        assert await page.evaluate("() => sessionStorage.length") == 0
    finally:
        await context.close()


async def test_an_idle_socket_reconnects_when_asked(
    browser: Browser, site: Site, db_url: str
) -> None:
    app = create_app(make_settings(ws_idle_timeout=1.0), database_url=db_url)
    context, page, watch = await _new_page(browser)
    try:
        with LiveServer(app) as idle_server:
            await _log_in(page, Site(idle_server, db_url, site.email, site.patient))
            # The server sheds the idle socket; the page waits instead of reconnecting in a loop.
            await expect(page.locator("#connection")).to_have_text("En espera", timeout=5000)
            assert len(watch.of_type("connected")) == 1
            await expect(page.locator("#status-line")).to_be_empty()
            await _pick_patient(page, site)
            await page.get_by_label("Pregunta").fill("¿Tiene alergias?")
            await page.keyboard.press("Enter")
            await _answer_done(page, 0)
            assert len(watch.of_type("connected")) == 2
            assert watch.of_type("complete")
    finally:
        await context.close()


async def test_narrow_screen(browser: Browser, site: Site) -> None:
    context, page, _ = await _new_page(browser, width=375, height=800)
    no_horizontal_scroll = (
        "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )
    try:
        await page.goto(site.chat)
        await expect(page.get_by_label("Correo electrónico")).to_be_in_viewport()
        await expect(page.get_by_role("button", name="Entrar")).to_be_in_viewport()
        assert await page.evaluate(no_horizontal_scroll)

        await _log_in(page, site)
        await expect(page.get_by_label("Pregunta")).to_be_in_viewport()
        await expect(page.get_by_role("button", name="Enviar")).to_be_in_viewport()
        await expect(page.locator("#history")).to_be_hidden()  # collapsed behind a button
        assert await page.evaluate(no_horizontal_scroll)

        toggle = page.locator("#history-toggle")
        await toggle.click()
        await expect(page.locator("#history")).to_be_visible()
        await expect(toggle).to_have_attribute("aria-expanded", "true")
        await page.keyboard.press("Escape")
        await expect(page.locator("#history")).to_be_hidden()
        await expect(toggle).to_be_focused()

        # A cited answer wraps inside the screen too.
        await _pick_patient(page, site)
        await page.get_by_label("Pregunta").fill("¿Qué medicamentos tiene prescritos?")
        await page.keyboard.press("Enter")
        await _answer_done(page, 0)
        await expect(page.locator("#patient-card")).to_be_in_viewport()
        await expect(page.get_by_label("Pregunta")).to_be_in_viewport()
        assert await page.evaluate(no_horizontal_scroll)
        await page.screenshot(path=str(OUTPUT / "chat-narrow.png"))
    finally:
        await context.close()
