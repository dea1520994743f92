// HealthMate console, CGM report: for one person, the ambulatory glucose profile (AGP) and the
// stacked time-in-ranges bar of the 14 days ending on their latest CGM day, drawn as SVG in
// the page (nothing is fetched but this origin's API). Uses call() and $() of console.js.
// The user id typed in goes only into the API path, which pseudonymises it; the page shows
// the pseudonym the API answers, never the id, and does not keep it.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const AGP = { width: 640, height: 280, left: 40, right: 24, top: 10, bottom: 28, max: 400 };
// Consensus colours and bands, top to bottom, as the report draws them.
const BANDS = [
  ["very_high_pct", "Very high  >250", "#e8742c"], ["high_pct", "High  181–250", "#f6c244"],
  ["in_range_pct", "In range  70–180", "#3aa657"], ["low_pct", "Low  54–69", "#e0443e"],
  ["very_low_pct", "Very low  <54", "#8c1d18"],
];

function svg(tag, attrs, parent) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (parent) parent.appendChild(el);
  return el;
}

function label(parent, x, y, text, anchor) {
  const t = svg("text", { x, y, "text-anchor": anchor || "start" }, parent);
  t.textContent = text;
  return t;
}

function drawAgp(bins, binMinutes) {
  const a = AGP;
  const plotW = a.width - a.left - a.right, plotH = a.height - a.top - a.bottom;
  const x = (minute) => a.left + (minute / 1440) * plotW;
  const y = (mg) => a.top + plotH - (Math.min(mg, a.max) / a.max) * plotH;
  const root = svg("svg", { width: a.width, height: a.height, viewBox: `0 0 ${a.width} ${a.height}`, role: "img",
    "aria-label": "ambulatory glucose profile" });
  svg("rect", { x: a.left, y: y(180), width: plotW, height: y(70) - y(180), fill: "#dff3e4" }, root);
  for (const mg of [54, 70, 180, 250, 350]) {
    svg("line", { x1: a.left, x2: a.left + plotW, y1: y(mg), y2: y(mg), stroke: mg === 70 || mg === 180 ? "#3aa657" : "#c9d1dc",
      "stroke-dasharray": mg === 70 || mg === 180 ? "" : "3 3" }, root);
    label(root, a.left - 4, y(mg) + 4, String(mg), "end");
  }
  for (let h = 0; h <= 24; h += 3) {
    svg("line", { x1: x(h * 60), x2: x(h * 60), y1: a.top + plotH, y2: a.top + plotH + 4, stroke: "#6b7686" }, root);
    label(root, x(h * 60), a.height - 10, `${String(h).padStart(2, "0")}:00`, "middle");
  }
  // Each bin drawn at its middle; the profile joins neighbouring bins and breaks where no
  // reading fell in a bin on any of the 14 days (a gap is not drawn over).
  const mid = (b) => x(b.minute + binMinutes / 2);
  const runs = [];
  for (const b of bins) {
    const run = runs[runs.length - 1];
    if (run && b.minute - run[run.length - 1].minute === binMinutes) run.push(b); else runs.push([b]);
  }
  for (const run of runs) {
    for (const [lo, hi, fill, cls] of [["p5", "p95", "#b9d3ef", "agp-outer"], ["p25", "p75", "#6d9fd8", "agp-inner"]]) {
      const upper = run.map((b) => `${mid(b)},${y(b[hi])}`);
      const lower = run.slice().reverse().map((b) => `${mid(b)},${y(b[lo])}`);
      svg("polygon", { points: [...upper, ...lower].join(" "), fill, class: cls }, root);
    }
  }
  for (const run of runs) {
    svg("polyline", { points: run.map((b) => `${mid(b)},${y(b.p50)}`).join(" "), fill: "none", stroke: "#13355e",
      "stroke-width": 2.5, class: "agp-median" }, root);
  }
  svg("rect", { x: a.left, y: a.top, width: plotW, height: plotH, fill: "none", stroke: "#6b7686" }, root);
  return root;
}

function drawTir(w) {
  const width = 300, height = 280, barX = 20, barW = 44, top = 14, barH = 250;
  const root = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "time in ranges" });
  let at = top;
  const labels = [];
  for (const [key, name, colour] of BANDS) {
    const h = Math.max((w[key] / 100) * barH, 0);
    svg("rect", { x: barX, y: at, width: barW, height: h, fill: colour, "data-band": key }, root);
    labels.push([at + h / 2 + 4, `${name}: ${w[key].toFixed(1)} %`]);
    at += h;
  }
  // Labels at their segment's middle, pushed apart so that thin segments stay readable.
  const gap = 15;
  labels[0][0] = Math.max(labels[0][0], top + 4);
  for (let i = 1; i < labels.length; i++) labels[i][0] = Math.max(labels[i][0], labels[i - 1][0] + gap);
  const over = labels[labels.length - 1][0] - (top + barH + 4);
  if (over > 0) for (let i = labels.length - 1; i >= 0; i--) labels[i][0] = Math.min(labels[i][0] - over, i < labels.length - 1 ? labels[i + 1][0] - gap : Infinity);
  for (const [ly, text] of labels) label(root, barX + barW + 10, ly, text);
  svg("rect", { x: barX, y: top, width: barW, height: barH, fill: "none", stroke: "#6b7686" }, root);
  return root;
}

function figures(w) {
  const pct = (v) => (v === null || v === undefined ? "—" : `${v.toFixed(1)} %`);
  return `${w.first_day} – ${w.local_day} (${w.timezone}): ${w.readings} readings, sensor active ${pct(w.active_pct)}` +
    ` (${w.sufficient ? "sufficient" : "insufficient: the consensus asks ≥ 70 % over 14 days"}) · mean ` +
    `${w.mean_mg_dl.toFixed(0)} mg/dL · GMI ${pct(w.gmi_pct)} · CV ${pct(w.cv_pct)} · TIR ${pct(w.in_range_pct)}` +
    ` · below 70 ${pct(w.very_low_pct + w.low_pct)} · above 180 ${pct(w.high_pct + w.very_high_pct)}`;
}

async function showCgm(userId) {
  const out = $("cgm-figures");
  out.textContent = "loading…";
  $("cgm-agp").replaceChildren();
  $("cgm-tir").replaceChildren();
  $("cgm").dataset.drawn = "false";
  try {
    const agp = await call("GET", `/cgm/${encodeURIComponent(userId)}/agp?bin_minutes=15`);
    $("cgm-person").textContent = `pseudonym ${agp.user_key.slice(0, 16)}…`;
    out.textContent = figures(agp.window);
    $("cgm-agp").appendChild(drawAgp(agp.bins, agp.bin_minutes));
    $("cgm-tir").appendChild(drawTir(agp.window));
    $("cgm").dataset.drawn = "true";
  } catch (err) {
    out.textContent = err.message.replace(encodeURIComponent(userId), "…");  // never the id
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("cgm-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const value = $("cgm-user").value.trim();
    $("cgm-user").value = "";
    if (value) showCgm(value);
  });
});
