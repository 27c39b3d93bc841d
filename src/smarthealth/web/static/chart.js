/* A small line chart of a series answer (`complete.series`), drawn as plain SVG by the page.
 *
 * One chart per vital sign, one line per value (systolic and diastolic), the adult reference
 * band where the server gives one, and each point a focusable control carrying the answer's
 * source number (`data-source-id`): app.js opens that source when it is clicked. The numbers are
 * also given as a table, so they stay readable as text (screen readers, small screens).
 * Everything is built with createElement/createElementNS and textContent: nothing is parsed.
 */
"use strict";

(() => {
  const SVG = "http://www.w3.org/2000/svg";
  // Drawn for the screen it is shown on: on a phone, a narrower canvas keeps labels readable
  // and points large enough to tap.
  const NARROW = window.matchMedia("(max-width: 760px)").matches;
  const WIDTH = NARROW ? 360 : 600;
  const HEIGHT = NARROW ? 220 : 240;
  const RADIUS = NARROW ? 7 : 6;
  const PAD = { top: 14, right: 18, bottom: 34, left: 46 };
  const DAY_MS = 86_400_000;
  const shortDate = new Intl.DateTimeFormat("es-CO", {
    day: "numeric",
    month: "short",
    year: "2-digit",
  });
  const longDate = new Intl.DateTimeFormat("es-CO", { dateStyle: "long" });

  function svg(tag, attributes = {}) {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
    return node;
  }

  function html(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  /** "2026-03-14" as a local calendar day (never UTC midnight, the day before in Colombia). */
  function day(iso) {
    const [y, m, d] = String(iso).split("-").map(Number);
    return new Date(y, m - 1, d);
  }

  function number(value) {
    return Number(value).toLocaleString("es-CO", { maximumFractionDigits: 1 });
  }

  function withUnit(value, unit) {
    return unit ? `${number(value)} ${unit}` : number(value);
  }

  /** Round steps for the value axis: 4–6 ticks covering [low, high]. */
  function ticks(low, high) {
    const span = Math.max(high - low, 1);
    const raw = span / 4;
    const magnitude = 10 ** Math.floor(Math.log10(raw));
    const step = [1, 2, 2.5, 5, 10].map((f) => f * magnitude).find((s) => span / s <= 5);
    const values = [];
    for (let v = Math.ceil(low / step) * step; v <= high + 1e-9; v += step) values.push(v);
    return values;
  }

  /** The readings by day: [{date, chunk, source, values: {key: value}}], oldest first. */
  function readings(chart) {
    const byChunk = new Map();
    for (const line of chart.lines) {
      for (const point of line.points) {
        const reading = byChunk.get(point.chunk_id) || {
          date: point.date,
          source: point.source_id,
          values: {},
        };
        reading.values[line.key] = point.value;
        byChunk.set(point.chunk_id, reading);
      }
    }
    return [...byChunk.values()].sort((a, b) => day(a.date) - day(b.date));
  }

  function describe(chart, reading) {
    const values = chart.lines
      .filter((line) => line.key in reading.values)
      .map((line) => reading.values[line.key]);
    const joined = chart.vital === "bp" ? values.map(number).join("/") : values.map(number)[0];
    return `${joined}${chart.unit ? " " + chart.unit : ""}`;
  }

  function drawSvg(chart) {
    const points = chart.lines.flatMap((line) => line.points);
    const bands = chart.lines.map((line) => line.reference).filter(Boolean);
    const values = points.map((p) => Number(p.value));
    const low = Math.min(...values, ...bands.map((b) => b.low));
    const high = Math.max(...values, ...bands.map((b) => b.high));
    const margin = Math.max((high - low) * 0.08, 1);
    const yTicks = ticks(low - margin, high + margin);
    const yMin = Math.min(yTicks[0], low - margin);
    const yMax = Math.max(yTicks[yTicks.length - 1], high + margin);
    const times = points.map((p) => day(p.date).getTime());
    let tMin = Math.min(...times);
    let tMax = Math.max(...times);
    if (tMax - tMin < DAY_MS) {
      tMin -= 15 * DAY_MS; // a single day: centred
      tMax += 15 * DAY_MS;
    }
    const plotW = WIDTH - PAD.left - PAD.right;
    const plotH = HEIGHT - PAD.top - PAD.bottom;
    const x = (iso) => PAD.left + ((day(iso).getTime() - tMin) / (tMax - tMin)) * plotW;
    const y = (v) => PAD.top + (1 - (Number(v) - yMin) / (yMax - yMin)) * plotH;

    const root = svg("svg", {
      viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
      class: "chart-svg",
      role: "group",
      "aria-label": `Gráfica de ${chart.title}`,
    });
    chart.lines.forEach((line, index) => {
      if (!line.reference) return;
      const top = y(Math.min(line.reference.high, yMax));
      const bottom = y(Math.max(line.reference.low, yMin));
      const band = svg("rect", {
        x: PAD.left,
        y: top,
        width: plotW,
        height: Math.max(bottom - top, 0),
        class: `chart-band chart-band-${index}`,
      });
      band.append(svg("title"));
      band.firstChild.textContent =
        `Rango de referencia (${line.name}): ` +
        `${number(line.reference.low)}–${withUnit(line.reference.high, chart.unit)}`;
      root.append(band);
    });
    for (const value of yTicks) {
      root.append(
        svg("line", {
          x1: PAD.left,
          x2: WIDTH - PAD.right,
          y1: y(value),
          y2: y(value),
          class: "chart-grid",
        }),
      );
      const label = svg("text", { x: PAD.left - 6, y: y(value) + 4, class: "chart-tick-y" });
      label.textContent = number(value);
      root.append(label);
    }
    const dates = [...new Set(points.map((p) => p.date))].sort();
    const shown = dates.length <= 3 ? dates : [dates[0], dates[dates.length - 1]];
    shown.forEach((iso, index) => {
      // the first and last dates sit inside the canvas: anchored at their start and end
      let anchor = "middle";
      if (shown.length > 1 && index === 0) anchor = "start";
      else if (shown.length > 1 && index === shown.length - 1) anchor = "end";
      const label = svg("text", {
        x: x(iso),
        y: HEIGHT - 10,
        class: "chart-tick-x",
        "text-anchor": anchor,
      });
      label.textContent = shortDate.format(day(iso));
      root.append(label);
    });
    chart.lines.forEach((line, index) => {
      const ordered = [...line.points].sort((a, b) => day(a.date) - day(b.date));
      root.append(
        svg("polyline", {
          points: ordered.map((p) => `${x(p.date)},${y(p.value)}`).join(" "),
          class: `chart-line chart-line-${index}`,
        }),
      );
      for (const p of ordered) {
        const label =
          `${line.name[0].toUpperCase()}${line.name.slice(1)} ${withUnit(p.value, p.unit)}, ` +
          `${longDate.format(day(p.date))}` +
          (p.source_id ? `; ver fuente ${p.source_id}` : "");
        const point = svg("circle", {
          cx: x(p.date),
          cy: y(p.value),
          r: RADIUS,
          class: `chart-point chart-point-${index}`,
          "data-line": line.key,
          "data-chunk-id": p.chunk_id,
          "aria-label": label,
        });
        if (p.source_id) {
          point.setAttribute("data-source-id", String(p.source_id));
          point.setAttribute("role", "button");
          point.setAttribute("tabindex", "0");
          point.setAttribute("aria-haspopup", "dialog");
        }
        point.append(svg("title"));
        point.firstChild.textContent = label;
        root.append(point);
      }
    });
    return root;
  }

  function legend(chart) {
    const list = html("ul", "chart-legend");
    chart.lines.forEach((line, index) => {
      const item = html("li", `chart-key chart-key-${index}`, line.name);
      list.append(item);
    });
    if (chart.lines.some((line) => line.reference)) {
      list.append(html("li", "chart-key chart-key-band", "rango de referencia (adultos)"));
    }
    return list;
  }

  function table(chart) {
    const details = html("details", "chart-data");
    details.append(html("summary", "", "Ver los valores"));
    const grid = html("table");
    grid.append(html("caption", "visually-hidden", `Valores de ${chart.title}`));
    const head = html("tr");
    head.append(html("th", "", "Fecha"), html("th", "", "Valor"), html("th", "", "Fuente"));
    grid.append(html("thead"));
    grid.tHead.append(head);
    const body = html("tbody");
    for (const reading of readings(chart)) {
      const row = html("tr");
      const source = html("td");
      if (reading.source) {
        const button = html("button", "citation", `[${reading.source}]`);
        button.type = "button";
        button.dataset.sourceId = String(reading.source);
        button.setAttribute("aria-label", `Ver fuente ${reading.source}`);
        button.setAttribute("aria-haspopup", "dialog");
        source.append(button);
      }
      row.append(
        html("td", "", longDate.format(day(reading.date))),
        html("td", "", describe(chart, reading)),
        source,
      );
      body.append(row);
    }
    grid.append(body);
    details.append(grid);
    return details;
  }

  /** A <figure> per chart of the series (an empty list draws nothing). */
  function render(series) {
    return (series || [])
      .filter((chart) => chart.lines.some((line) => line.points.length))
      .map((chart) => {
        const figure = html("figure", "series-chart");
        const count = readings(chart).length;
        const window = chart.window && chart.window.label ? ` · ${chart.window.label}` : "";
        const title = `${chart.title[0].toUpperCase()}${chart.title.slice(1)}`;
        figure.append(
          html(
            "figcaption",
            "chart-title",
            `${title}${chart.unit ? " (" + chart.unit + ")" : ""}${window} · ` +
              `${count} ${count === 1 ? "toma" : "tomas"}`,
          ),
          drawSvg(chart),
          legend(chart),
          table(chart),
        );
        return figure;
      });
  }

  window.SmartHealthChart = { render };
})();
