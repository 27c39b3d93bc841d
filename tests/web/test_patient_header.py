"""The patient header and the series chart in a real headless Chromium (Debian's), against a real
uvicorn server and database, with the record's "today" fixed to the day it was seeded for.

Truth comes from SQL over the clinical tables: the patient's allergies, and the blood-pressure
readings of the last year (one chart point each)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator

import asyncpg
import pytest
from playwright.async_api import Browser, Page, expect

from smarthealth.app import create_app
from smarthealth.config import to_libpq_url
from smarthealth.rag.executor import BOGOTA
from tests.conftest import TEMPLATE_TODAY, insert_user, make_settings
from tests.live_server import LiveServer
from tests.web.test_chat_page import (  # noqa: F401 (browser, chromium: fixtures)
    ANSWER_WAIT_MS,
    OUTPUT,
    Site,
    _answer_done,
    _log_in,
    _new_page,
    browser,
    chromium,
)

NOW = dt.datetime.combine(TEMPLATE_TODAY, dt.time(12, 0), BOGOTA)
BP_YEAR = "¿Cómo ha evolucionado la presión arterial en el último año?"
YEAR = (TEMPLATE_TODAY.replace(year=TEMPLATE_TODAY.year - 1), TEMPLATE_TODAY)
# an adult with an allergy, the one with most blood-pressure readings in the last year
PATIENT_SQL = """
SELECT p.patient_id, p.document_type_id, p.document_number, concat_ws(' ', p.first_name,
       p.middle_name, p.first_surname, p.second_surname) AS full_name, count(r.*) AS readings
FROM smart_health.patients p
JOIN smart_health.medical_records r ON r.patient_id = p.patient_id
  AND r.systolic_pressure IS NOT NULL
  AND (r.registration_datetime AT TIME ZONE 'America/Bogota')::date BETWEEN $1 AND $2
WHERE EXISTS (SELECT 1 FROM smart_health.patient_allergies a WHERE a.patient_id = p.patient_id)
  AND p.birth_date <= $3
GROUP BY p.patient_id ORDER BY readings DESC, p.patient_id LIMIT 1
"""
READINGS_SQL = """
SELECT systolic_pressure, diastolic_pressure,
       (registration_datetime AT TIME ZONE 'America/Bogota')::date AS day
FROM smart_health.medical_records
WHERE patient_id = $1 AND systolic_pressure IS NOT NULL
  AND (registration_datetime AT TIME ZONE 'America/Bogota')::date BETWEEN $2 AND $3
ORDER BY registration_datetime
"""
ALLERGIES_SQL = """
SELECT DISTINCT m.active_ingredient FROM smart_health.patient_allergies a
JOIN smart_health.medications m USING (medication_id) WHERE a.patient_id = $1
"""


@pytest.fixture(scope="module")
def header_site(db_url: str, password_hash: str) -> Iterator[Site]:
    app = create_app(make_settings(), database_url=db_url)
    email = "encabezado.web@hospital.test"

    async def _setup() -> dict[str, object]:
        await insert_user(db_url, password_hash, "clinician", email=email)
        conn = await asyncpg.connect(to_libpq_url(db_url))
        try:
            adult = TEMPLATE_TODAY.replace(year=TEMPLATE_TODAY.year - 18)
            row = await conn.fetchrow(PATIENT_SQL, *YEAR, adult)
            assert row is not None, "no adult with an allergy and readings in the last year"
            patient = dict(row)
            patient["allergies"] = sorted(
                r["active_ingredient"] for r in await conn.fetch(ALLERGIES_SQL, row["patient_id"])
            )
            patient["bp"] = [
                (r["systolic_pressure"], r["diastolic_pressure"], r["day"])
                for r in await conn.fetch(READINGS_SQL, row["patient_id"], *YEAR)
            ]
        finally:
            await conn.close()
        return patient

    patient = asyncio.run(_setup())
    with LiveServer(app) as server:
        server.server.config.app.state.pipeline.clock = lambda: NOW  # type: ignore[union-attr]
        yield Site(server, db_url, email, patient)


async def _open_patient(page: Page, site: Site) -> None:
    await page.get_by_label("Tipo de documento").select_option(
        str(site.patient["document_type_id"])
    )
    await page.get_by_label("Número de documento").fill(str(site.patient["document_number"]))
    await page.get_by_role("button", name="Ver paciente").click()


async def _fully_on_screen(page: Page, selector: str) -> None:
    """Visible without scrolling: the page is at its top and the element inside the viewport."""
    await expect(page.locator(selector)).to_be_in_viewport(ratio=1)
    box = await page.locator(selector).bounding_box()
    size = page.viewport_size
    assert box is not None and size is not None
    assert await page.evaluate("() => window.scrollY") == 0
    assert box["y"] >= 0 and box["y"] + box["height"] <= size["height"], (box, size)


@pytest.mark.parametrize(("width", "height", "name"), [(1280, 800, "desktop"), (390, 844, "phone")])
async def test_allergy_banner_and_blood_pressure_chart(
    browser: Browser,  # noqa: F811
    header_site: Site,
    width: int,
    height: int,
    name: str,
) -> None:
    site = header_site
    context, page, watch = await _new_page(browser, width=width, height=height)
    try:
        await _log_in(page, site)
        await _open_patient(page, site)

        # The header, before any question: the allergy banner first, impossible to miss.
        card = page.locator("#patient-card")
        await expect(card).to_contain_text(str(site.patient["full_name"]))
        banner = page.locator("#allergy-banner")
        await expect(banner).to_be_visible()
        await expect(banner).to_contain_text("Alergias:")
        for ingredient in site.patient["allergies"]:  # type: ignore[attr-defined]
            await expect(banner).to_contain_text(ingredient)
        await _fully_on_screen(page, "#allergy-banner")
        colors = await banner.evaluate(
            "b => [getComputedStyle(b).backgroundColor, getComputedStyle(b).color]"
        )
        assert colors == ["rgb(180, 35, 24)", "rgb(255, 255, 255)"], colors  # red, white text
        await expect(page.locator("#problems-count")).not_to_be_empty()
        await expect(page.locator("#medications-count")).not_to_be_empty()
        await expect(page.locator("#next-appointment")).not_to_be_empty()
        await page.screenshot(path=str(OUTPUT / f"patient-header-{name}.png"))

        # The blood-pressure trend of the last year: one point per reading, in both lines.
        await page.get_by_label("Pregunta").fill(BP_YEAR)
        await page.get_by_role("button", name="Enviar").click()
        await _answer_done(page, 0)
        readings = site.patient["bp"]
        assert isinstance(readings, list) and len(readings) >= 2
        answer = page.locator(".msg-answer").first
        chart = answer.locator("figure.series-chart")
        await expect(chart).to_have_count(1)
        await expect(chart.locator("figcaption")).to_contain_text(f"{len(readings)} tomas")
        systolic = chart.locator('.chart-point[data-line="systolic"]')
        diastolic = chart.locator('.chart-point[data-line="diastolic"]')
        await expect(systolic).to_have_count(len(readings))
        await expect(diastolic).to_have_count(len(readings))
        await expect(chart.locator(".chart-band")).to_have_count(2)  # adult reference bands
        complete = watch.of_type("complete")[-1]
        assert len(complete["series"][0]["lines"][0]["points"]) == len(readings)
        # the numbers are there as text too (a table behind "Ver los valores")
        rows = chart.locator(".chart-data tbody tr")
        await expect(rows).to_have_count(len(readings))
        await expect(rows.first).to_contain_text(f"{readings[0][0]}/{readings[0][1]} mmHg")
        if name == "phone":
            assert await page.evaluate(
                "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth"
            )
        await chart.scroll_into_view_if_needed()
        await page.screenshot(path=str(OUTPUT / f"patient-chart-{name}.png"))

        # Each point opens its source (the reading's own row) and highlights its citation.
        panel = page.get_by_role("dialog")
        for index, (high, low, day) in enumerate(readings):
            point = systolic.nth(index)
            await point.click()
            await expect(panel).to_be_visible()
            await expect(panel.locator("#source-text")).to_contain_text(f"{high}/{low} mmHg")
            await expect(panel.locator("#source-text")).to_contain_text(day.isoformat())
            number = await point.get_attribute("data-source-id")
            await expect(panel).to_contain_text(f"Fuente [{number}]")
            await expect(
                answer.locator(f'button.citation[data-source-id="{number}"]').first
            ).to_have_class("citation is-highlighted")
            await page.keyboard.press("Escape")
            await expect(panel).to_be_hidden()
            await expect(point).to_be_focused()
        # … with the keyboard as well
        await diastolic.last.focus()
        await page.keyboard.press("Enter")
        await expect(panel.locator("#source-text")).to_contain_text(
            f"{readings[-1][0]}/{readings[-1][1]} mmHg"
        )
        await page.keyboard.press("Escape")
        assert watch.problems == []
    finally:
        await context.close()


async def test_a_patient_without_allergies_says_so(
    browser: Browser,  # noqa: F811
    header_site: Site,
) -> None:
    conn = await asyncpg.connect(to_libpq_url(header_site.db_url))
    try:
        row = await conn.fetchrow(
            "SELECT document_type_id, document_number FROM smart_health.patients p "
            "WHERE NOT EXISTS (SELECT 1 FROM smart_health.patient_allergies a "
            "WHERE a.patient_id = p.patient_id) ORDER BY patient_id LIMIT 1"
        )
    finally:
        await conn.close()
    assert row is not None
    site = Site(header_site.server, header_site.db_url, header_site.email, dict(row))
    context, page, _ = await _new_page(browser, width=390, height=844)
    try:
        await _log_in(page, site)
        await _open_patient(page, site)
        banner = page.locator("#allergy-banner")
        await expect(banner).to_have_text("Sin alergias registradas", timeout=ANSWER_WAIT_MS)
        await _fully_on_screen(page, "#allergy-banner")
        # A new conversation clears the header: nothing of this patient stays on screen.
        await page.locator("#history-toggle").click()  # the sidebar is folded on a phone
        await page.get_by_role("button", name="Nueva conversación").click()
        await expect(page.locator("#patient-card")).to_be_hidden()
        await expect(banner).to_be_hidden()
        await expect(page.get_by_label("Número de documento")).to_be_editable()
    finally:
        await context.close()


async def test_an_unknown_patient_shows_the_servers_message(
    browser: Browser,  # noqa: F811
    header_site: Site,
) -> None:
    context, page, _ = await _new_page(browser)
    try:
        await _log_in(page, header_site)
        await page.get_by_label("Número de documento").fill("000000001")
        await page.get_by_role("button", name="Ver paciente").click()
        await expect(page.locator("#patient-error")).to_have_text(
            "No existe un paciente con ese tipo y número de documento."
        )
        await expect(page.locator("#patient-card")).to_be_hidden()
    finally:
        await context.close()
