/* The patient header: fills #patient-card from GET /patients/{type}/{number}/summary.
 *
 * The allergy banner comes first and is always shown once the summary is in: red, "Alergias: …"
 * or "Sin alergias registradas". Problems and medications are counts that expand to their list.
 * Text is only ever inserted with textContent.
 */
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const dateOnly = new Intl.DateTimeFormat("es-CO", { dateStyle: "medium" });
  const dateTime = new Intl.DateTimeFormat("es-CO", {
    dateStyle: "medium",
    timeStyle: "short",
    timeZone: "America/Bogota",
  });
  const STATUS = { Scheduled: "programada", Confirmed: "confirmada" };

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function day(iso) {
    const match = /^(\d{4})-(\d{2})-(\d{2})/.exec(iso || "");
    if (!match) return "";
    return dateOnly.format(new Date(Number(match[1]), Number(match[2]) - 1, Number(match[3])));
  }

  function allergyText(a) {
    const details = [a.reaction, String(a.severity || "").toLowerCase()]
      .filter(Boolean)
      .join(", ");
    return details ? `${a.ingredient} (${details})` : a.ingredient;
  }

  function fillList(id, countId, items, describe) {
    $(countId).textContent = String(items.length);
    $(id).replaceChildren(...items.map((item) => el("li", "", describe(item))));
    $(id).closest("details").classList.toggle("is-empty", items.length === 0);
  }

  function medicationText(m) {
    const what = [m.ingredient, m.strength].filter(Boolean).join(" ");
    const how = [m.dosage, m.frequency].filter(Boolean).join(" ");
    const until = m.end ? `hasta el ${day(m.end)}` : "";
    return [what, how, until].filter(Boolean).join(" · ");
  }

  function problemText(p) {
    return `${p.description} (CIE-10 ${p.icd_code}) · último registro ${day(p.date)}`;
  }

  /** Fill the header with a summary body; `null` clears it back to the name line only. */
  function render(summary) {
    const banner = $("allergy-banner");
    const details = $("patient-details");
    if (!summary) {
      banner.hidden = true;
      details.hidden = true;
      $("patient-facts").textContent = "";
      return;
    }
    const p = summary.patient;
    $("patient-name").textContent = p.full_name;
    $("patient-doc").textContent = `${p.document_type} ${p.document_number}`;
    $("patient-facts").textContent = [
      p.age,
      p.sex_label,
      p.blood_type ? `Grupo sanguíneo ${p.blood_type}` : "Grupo sanguíneo no registrado",
    ].join(" · ");

    const allergies = summary.allergies || [];
    banner.classList.toggle("has-allergies", allergies.length > 0);
    if (allergies.length) {
      banner.textContent = `Alergias: ${allergies.map(allergyText).join("; ")}`;
    } else if (summary.updating) {
      banner.textContent =
        "Alergias: la historia se está actualizando; consulte de nuevo en unos segundos.";
    } else {
      banner.textContent = "Sin alergias registradas";
    }
    banner.hidden = false;

    fillList("problems-list", "problems-count", summary.problems.items, problemText);
    fillList("medications-list", "medications-count", summary.medications.items, medicationText);
    const next = summary.next_appointment;
    $("next-appointment").textContent = next
      ? `Próxima cita: ${dateTime.format(new Date(next.start))} · ${next.specialty || ""}` +
        `${next.doctor ? " con " + next.doctor : ""} (${STATUS[next.status] || next.status})`
      : "Sin citas próximas";
    details.hidden = false;
  }

  window.SmartHealthHeader = { render };
})();
