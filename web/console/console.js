// HealthMate console: reads the API with the pasted (or dev) token and fills the tables.
// Only textContent is used to show data, never innerHTML. The token stays in this tab
// (sessionStorage) and is sent only to this origin's /data-pipeline/ API.
"use strict";

const API = "/data-pipeline";
const REFRESH_MS = 5000;
const $ = (id) => document.getElementById(id);

function token() {
  return sessionStorage.getItem("healthmate-token") ||
    document.querySelector('meta[name="healthmate-dev-token"]').content || "";
}

async function call(method, path, body) {
  const headers = { "Authorization": "Bearer " + token() };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(API + path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${data.message || data.error}`);
  return data;
}

function cell(row, value, cls) {
  const td = document.createElement("td");
  td.textContent = value === null || value === undefined ? "—" : String(value);
  if (cls) td.className = cls;
  row.appendChild(td);
  return td;
}

function fill(tbody, items, render, empty) {
  tbody.replaceChildren();
  if (!items.length) {
    const row = tbody.insertRow();
    const td = cell(row, empty, "muted");
    td.colSpan = tbody.parentElement.tHead.rows[0].cells.length;
    return;
  }
  for (const item of items) render(tbody.insertRow(), item);
}

function age(seconds) {
  if (seconds === null || seconds === undefined) return "never";
  return seconds < 120 ? `${seconds.toFixed(1)} s ago` : `${Math.round(seconds / 60)} min ago`;
}

async function showStatus() {
  const s = await call("GET", "/pipeline/status");
  const badge = $("pipeline-status");
  badge.textContent = s.status;
  badge.className = "badge " + s.status;
  const t = s.throughput;
  $("throughput").textContent =
    `throughput: ${t.readings_per_s} readings/s (${t.readings} readings, ${t.dead_letters} dead letters ` +
    `in the last ${t.window_s} s) · total lag ${s.consumer.total_lag}`;
  fill($("partitions"), s.consumer.partitions, (row, p) => {
    cell(row, p.topic); cell(row, p.partition); cell(row, p.committed_offset); cell(row, p.end_offset);
    cell(row, p.lag); cell(row, age(p.last_commit_age_s)); cell(row, p.stalled ? "yes" : "no", p.stalled ? "degraded" : "");
  }, "no partitions assigned yet");
  const quality = Object.entries(s.quality || {});
  fill($("quality-rows"), quality, (row, [metric, q]) => {
    const collecting = q.quality_level === "collecting";
    cell(row, metric);
    cell(row, collecting ? `collecting (${q.records} of ${q.min_records} records)` : q.quality_level, q.quality_level);
    cell(row, collecting ? "—" : q.overall_score.toFixed(3));
    cell(row, q.window_size_s); cell(row, q.sources.map((w) => w.source).join(", "));
    cell(row, collecting ? "not judged yet" : q.below_threshold ? "yes" : "no");
  }, s.quality === null ? "in-stream quality is off" : "no open quality windows yet");
}

async function showHistory() {
  const { drawChart } = window.HealthmateCharts;
  const h = await call("GET", "/pipeline/history");
  const points = h.points;
  const labels = [`${points.length} min ago`, "now"];
  const at = points.map((p) => p.at.slice(11, 16) + " UTC");
  drawChart($("chart-throughput"), points.map((p) => p.readings / h.bucket_s), {
    kind: "bars", color: "#2f6db5", labels, titles: points.map((p, i) => `${at[i]}: ${p.readings} readings`) });
  drawChart($("chart-lag"), points.map((p) => p.lag), {
    kind: "line", color: "#b5632f", labels, titles: points.map((p, i) => `${at[i]}: lag ${p.lag ?? "not sampled"}`) });
  drawChart($("chart-dead-letters"), points.map((p) => p.dead_letters), {
    kind: "bars", color: "#a01818", labels, titles: points.map((p, i) => `${at[i]}: ${p.dead_letters} dead letters`) });
  const box = $("quality-charts");
  const q = h.quality;
  const metrics = Object.entries(q.metrics || {});
  box.replaceChildren();
  if (!metrics.length) {
    const p = document.createElement("p");
    p.className = "muted";
    p.textContent = q.metrics === null ? "quality history unavailable (warehouse unreachable)" : "no closed quality windows yet";
    box.appendChild(p);
    return;
  }
  for (const [metric, windows] of metrics) {
    const figure = document.createElement("figure");
    const caption = document.createElement("figcaption");
    const collecting = windows.filter((w) => w.overall_score === null).length;
    caption.textContent = `${metric}: score of the last ${windows.length} windows of ${q.window_size_s} s` +
      (collecting ? ` (${collecting} still collecting, hollow)` : "");
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.id = `quality-chart-${metric}`;
    figure.append(caption, svg);
    box.appendChild(figure);
    drawChart(svg, windows.map((w) => w.overall_score), {
      kind: "line", color: "#2f8f5b", yMax: 1, threshold: q.threshold, nullMark: true,
      labels: [windows[0].window_start.slice(11, 19), windows[windows.length - 1].window_start.slice(11, 19)],
      titles: windows.map((w) => `${w.window_start.slice(11, 19)}: ` +
        (w.overall_score === null ? `collecting (${w.records} records)` : `${w.overall_score.toFixed(3)} (${w.records} records)`)),
    });
  }
}

async function showDeadLetters() {
  const d = await call("GET", "/dlq");
  $("dlq-total").textContent = d.total;
  fill($("dlq-rows"), Object.entries(d.by_reason), (row, [reason, count]) => {
    cell(row, reason); cell(row, count);
    const td = cell(row, "");
    for (const [label, dry] of [["dry run", true], ["redrive", false]]) {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = label;
      button.dataset.reason = reason;
      button.dataset.dryRun = String(dry);
      button.addEventListener("click", () => redrive(reason, dry));
      td.appendChild(button);
    }
  }, "no dead letters");
}

async function redrive(reason, dryRun) {
  if (!dryRun && !confirm(`Re-feed every ${reason} dead letter to the raw topic?`)) return;
  const out = $("redrive-result");
  out.textContent = `${dryRun ? "dry run" : "redrive"} of ${reason}…`;
  try {
    const r = await call("POST", "/dlq/redrive", { reason, dry_run: dryRun });
    out.textContent = dryRun
      ? `dry run ${reason}: ${r.selected} selected, would re-feed ${r.would_refeed} (nothing published)`
      : `redrive ${reason}: ${r.selected} selected, re-fed ${r.refed}`;
  } catch (err) {
    out.textContent = err.message;
  }
}

async function showJobs() {
  const { jobs } = await call("GET", "/etl-jobs");
  const details = await Promise.all(jobs.map((j) => call("GET", `/etl-jobs/${j.job_id}`)));
  fill($("job-rows"), details, (row, d) => {
    const j = d.job;
    cell(row, j.job_name); cell(row, j.pipeline_type); cell(row, j.schedule); cell(row, j.enabled ? "yes" : "no");
    const runs = cell(row, d.runs.length ? "" : "no runs");
    for (const r of d.runs.slice(0, 3)) {
      const span = document.createElement("span");
      span.className = "badge " + r.status;
      span.textContent = `${r.status} ${r.started_at ? r.started_at.slice(0, 19) : ""}`;
      span.title = r.error || "";
      runs.appendChild(span);
    }
    const running = d.running[0];
    cell(row, running ? `${running.progress ?? 0}%` : "—", running ? "running" : "");
  }, "no ETL jobs registered");
}

async function refresh() {
  if (!token()) {
    $("auth-state").textContent = "paste a token to start";
    return;
  }
  try {
    await Promise.all([showStatus(), showHistory(), showDeadLetters(), showJobs()]);
    $("error").textContent = "";
    $("auth-state").textContent = sessionStorage.getItem("healthmate-token") ? "pasted token" : "dev token";
    $("updated").textContent = "Updated " + new Date().toLocaleTimeString();
    document.body.dataset.loaded = "true";
  } catch (err) {
    $("error").textContent = err.message;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const value = $("token").value.trim();
    if (value) sessionStorage.setItem("healthmate-token", value);
    $("token").value = "";
    refresh();
  });
  refresh();
  setInterval(refresh, REFRESH_MS);
});
