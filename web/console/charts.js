// Small SVG charts for the console, drawn with DOM calls: no library, nothing fetched, no
// innerHTML. One function: drawChart(svg, values, options) replaces the svg's content.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const SIZE = { w: 460, h: 130, left: 44, right: 8, top: 10, bottom: 20 };

function svgElement(name, attrs, parent) {
  const el = document.createElementNS(SVG_NS, name);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, String(value));
  if (parent) parent.appendChild(el);
  return el;
}

function niceMax(value) {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) if (value <= step * power) return step * power;
  return 10 * power;
}

function shortNumber(value) {
  if (value >= 1e6) return `${+(value / 1e6).toFixed(1)}M`;
  if (value >= 1e3) return `${+(value / 1e3).toFixed(1)}k`;
  return `${+value.toFixed(2)}`;
}

// values: numbers or null (no data). options: kind "bars" | "line", color, yMax (default:
// a round number above the largest value), threshold (a dashed line), labels [left, right]
// under the x axis, titles (a tooltip per value), nullMark (draw a hollow marker on the
// axis for a null value, e.g. a quality window still collecting).
function drawChart(svg, values, options) {
  const { w, h, left, right, top, bottom } = SIZE;
  const plotW = w - left - right;
  const plotH = h - top - bottom;
  svg.replaceChildren();
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  svg.setAttribute("role", "img");
  svg.classList.add("chart");
  const known = values.filter((v) => v !== null && v !== undefined);
  const max = options.yMax ?? niceMax(Math.max(0, ...known));
  const slot = plotW / Math.max(1, values.length);
  const xOf = (i) => left + slot * (i + 0.5);
  const yOf = (v) => top + plotH * (1 - Math.min(v, max) / max);
  const text = (x, y, content, anchor) => {
    const t = svgElement("text", { x, y, "font-size": 10, fill: "#6b7686", "text-anchor": anchor }, svg);
    t.textContent = content;
  };
  svgElement("line", { x1: left, y1: top, x2: left, y2: top + plotH, stroke: "#c4ccd6" }, svg);
  svgElement("line", { x1: left, y1: top + plotH, x2: w - right, y2: top + plotH, stroke: "#c4ccd6" }, svg);
  text(left - 4, top + 8, shortNumber(max), "end");
  text(left - 4, top + plotH, "0", "end");
  const [fromLabel, toLabel] = options.labels || ["", ""];
  text(left, h - 4, fromLabel, "start");
  text(w - right, h - 4, toLabel, "end");
  if (options.threshold !== undefined) {
    svgElement("line", { x1: left, x2: w - right, y1: yOf(options.threshold), y2: yOf(options.threshold),
      stroke: "#a01818", "stroke-dasharray": "4 3", class: "threshold" }, svg);
  }
  const tip = (el, i) => {
    if (options.titles) svgElement("title", {}, el).textContent = options.titles[i];
  };
  let drawn = 0;
  if (options.kind === "bars") {
    values.forEach((v, i) => {
      if (v === null || v === undefined || v <= 0) return;
      const bar = svgElement("rect", { x: xOf(i) - slot * 0.4, width: Math.max(1, slot * 0.8), y: yOf(v),
        height: top + plotH - yOf(v), fill: options.color, class: "value" }, svg);
      tip(bar, i);
      drawn += 1;
    });
  } else {
    let path = "";
    values.forEach((v, i) => {
      if (v === null || v === undefined) {
        path += " ";
        return;
      }
      path += `${path.endsWith(" ") || !path ? "M" : "L"}${xOf(i).toFixed(1)},${yOf(v).toFixed(1)}`;
    });
    if (path.trim()) svgElement("path", { d: path.trim().replace(/ +/g, " "), fill: "none", stroke: options.color,
      "stroke-width": 1.5 }, svg);
    values.forEach((v, i) => {
      const missing = v === null || v === undefined;
      if (missing && !options.nullMark) return;
      const dot = svgElement("circle", { cx: xOf(i), cy: missing ? top + plotH : yOf(v), r: 2.5,
        fill: missing ? "#fff" : options.color, stroke: missing ? "#8a94a3" : options.color,
        class: missing ? "collecting" : "value" }, svg);
      tip(dot, i);
      if (!missing) drawn += 1;
    });
  }
  svg.dataset.values = String(drawn);
  if (!known.length) {
    text(left + plotW / 2, top + plotH / 2, options.nullMark && values.length ? "collecting" : "no data yet", "middle");
  }
}

window.HealthmateCharts = { drawChart };
