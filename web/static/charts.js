// Two small SVG charts for the dashboard, drawn with DOM calls (no chart
// library, no inline style: colours come from portal.css classes). Each
// draws into an <svg> whose viewBox it sets to the element's own width, so
// one unit is one pixel and labels keep their size on a phone.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const CHART = { height: 170, left: 72, right: 8, top: 10, bottom: 24 };

function chartWidth(svg) {
  const width = Math.max(240, Math.round(svg.getBoundingClientRect().width || 480));
  svg.setAttribute("viewBox", `0 0 ${width} ${CHART.height}`);
  return width;
}

function svgEl(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

// The smallest steps[i] x 10^n at or above v (at least `floor`).
function niceCeiling(v, floor, steps = [1, 2, 5, 10]) {
  if (!(v > floor)) return floor;
  const magnitude = 10 ** Math.floor(Math.log10(v));
  for (const step of steps) if (step * magnitude >= v) return step * magnitude;
  return 10 * magnitude;
}

// Horizontal grid lines at 0, 1/2 and 1 of `max`, labelled with format().
function chartFrame(svg, width, max, format) {
  const { height, left, right, top, bottom } = CHART;
  const plotHeight = height - top - bottom;
  const nodes = [];
  for (const f of [0, 0.5, 1]) {
    const y = top + plotHeight * (1 - f);
    nodes.push(svgEl("line", { class: "grid-line", x1: left, x2: width - right, y1: y, y2: y }));
    nodes.push(svgEl("text", { class: "axis-label", x: left - 6, y: y + 4, "text-anchor": "end" }, format(max * f)));
  }
  svg.replaceChildren(...nodes);
}

// points: [[ms, value]...] over the last windowMs, oldest first; the y axis
// reaches at least `floor`.
function drawLineChart(svg, points, { windowMs, format, floor = 1, now = Date.now() }) {
  const { height, left, right, top, bottom } = CHART;
  const width = chartWidth(svg);
  const plotWidth = width - left - right;
  const plotHeight = height - top - bottom;
  const max = niceCeiling(Math.max(0, ...points.map((p) => p[1])), floor);
  chartFrame(svg, width, max, format);
  const x = (t) => left + plotWidth * (1 - (now - t) / windowMs);
  const y = (v) => top + plotHeight * (1 - v / max);
  const visible = points.filter((p) => now - p[0] <= windowMs);
  if (visible.length >= 2) {
    const line = visible.map((p, i) => `${i ? "L" : "M"}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(" ");
    const first = x(visible[0][0]).toFixed(1);
    const last = x(visible[visible.length - 1][0]).toFixed(1);
    const base = y(0).toFixed(1);
    svg.append(svgEl("path", { class: "area", d: `${line} L${last},${base} L${first},${base} Z` }));
    svg.append(svgEl("path", { class: "line", d: line }));
  }
  svg.append(svgEl("text", { class: "axis-label", x: left, y: height - 6 }, `${Math.round(windowMs / 60000)} min ago`));
  svg.append(svgEl("text", { class: "axis-label", x: width - right, y: height - 6, "text-anchor": "end" }, "now"));
}

// bars: [{label, ok, bad}...], oldest first; ok and bad stacked.
function drawBarChart(svg, bars) {
  const { height, left, right, top, bottom } = CHART;
  const width = chartWidth(svg);
  const plotWidth = width - left - right;
  const plotHeight = height - top - bottom;
  // Even maxima, so that the middle grid line is a whole count.
  const max = niceCeiling(Math.max(0, ...bars.map((b) => b.ok + b.bad)), 4, [1, 2, 4, 10]);
  chartFrame(svg, width, max, (v) => String(Math.round(v)));
  const slot = plotWidth / Math.max(bars.length, 1);
  const barWidth = Math.max(2, slot * 0.7);
  bars.forEach((b, i) => {
    const x = left + slot * i + (slot - barWidth) / 2;
    const okHeight = (plotHeight * b.ok) / max;
    const badHeight = (plotHeight * b.bad) / max;
    const base = top + plotHeight;
    if (b.ok) svg.append(svgEl("rect", { class: "bar-ok", x, width: barWidth, y: base - okHeight, height: okHeight }));
    if (b.bad) svg.append(svgEl("rect", { class: "bar-bad", x, width: barWidth, y: base - okHeight - badHeight, height: badHeight }));
    if (b.ok + b.bad) svg.append(svgEl("text", { class: "bar-label", x: x + barWidth / 2, y: base - okHeight - badHeight - 3 }, String(b.ok + b.bad)));
    if (b.label) svg.append(svgEl("text", { class: "axis-label", x: x + barWidth / 2, y: height - 6, "text-anchor": "middle" }, b.label));
  });
}
