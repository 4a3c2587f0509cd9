// The live dashboard: one self-contained document (no CDN, no web fonts, no external files). It
// polls /dashboard/data once a second and draws its own canvas charts; rates and latency
// percentiles come from the differences between samples, so they show the last seconds, not
// the whole uptime.
#include "ringcast/app/metrics_service.h"

namespace ringcast::app {

const char* const kDashboardHtml = R"RCDASH(<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>ringcast dashboard</title>
<style>
:root { --bg:#0f1419; --panel:#182029; --fg:#d8dee6; --dim:#8595a6; --grid:#2a3541;
        --a:#4fb3ff; --b:#ffb347; --c:#7bd88f; --d:#ff6b81; --e:#c39bff; }
* { box-sizing:border-box; }
body { margin:0; background:var(--bg); color:var(--fg);
       font:14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
header { display:flex; align-items:baseline; gap:16px; padding:12px 20px;
         border-bottom:1px solid var(--grid); }
header h1 { font-size:18px; margin:0; }
#status { color:var(--dim); }
#status.bad { color:var(--d); }
main { padding:16px 20px; display:grid; gap:16px;
       grid-template-columns:repeat(auto-fill, minmax(420px, 1fr)); }
.tiles { grid-column:1/-1; display:grid; gap:12px;
         grid-template-columns:repeat(auto-fill, minmax(150px, 1fr)); }
.tile, .panel { background:var(--panel); border-radius:6px; padding:10px 14px; }
.tile .v { font-size:24px; font-variant-numeric:tabular-nums; }
.tile .k, .panel h2 { color:var(--dim); font-size:12px; text-transform:uppercase;
                      letter-spacing:.04em; margin:0 0 6px; font-weight:600; }
canvas { width:100%; height:180px; display:block; }
table { width:100%; border-collapse:collapse; font-variant-numeric:tabular-nums; }
th, td { text-align:right; padding:3px 6px; border-bottom:1px solid var(--grid); }
th:first-child, td:first-child { text-align:left; max-width:260px; overflow:hidden;
                                 text-overflow:ellipsis; white-space:nowrap; }
th { color:var(--dim); font-weight:600; font-size:12px; }
#login { position:fixed; inset:0; background:rgba(0,0,0,.7); display:none;
         align-items:center; justify-content:center; }
#login form { background:var(--panel); padding:20px; border-radius:8px; min-width:320px; }
#login input { width:100%; padding:8px; margin:8px 0; background:var(--bg); color:var(--fg);
               border:1px solid var(--grid); border-radius:4px; }
#login button { padding:6px 14px; }
.legend span { margin-right:12px; font-size:12px; }
.legend i { display:inline-block; width:10px; height:10px; margin-right:4px; border-radius:2px; }
</style></head>
<body>
<header><h1>ringcast</h1><span id="version"></span><span id="status">connecting…</span></header>
<main>
  <section class="tiles">
    <div class="tile"><div class="k">WebSocket connections</div><div class="v" id="stat-connections">–</div></div>
    <div class="tile"><div class="k">Messages in /s</div><div class="v" id="stat-msgs-in">–</div></div>
    <div class="tile"><div class="k">Messages out /s</div><div class="v" id="stat-msgs-out">–</div></div>
    <div class="tile"><div class="k">Rooms</div><div class="v" id="stat-rooms">–</div></div>
    <div class="tile"><div class="k">Slow-consumer closes</div><div class="v" id="stat-slow">–</div></div>
    <div class="tile"><div class="k">Fan-out p99</div><div class="v" id="stat-fanout-p99">–</div></div>
    <div class="tile"><div class="k">Store commit p99</div><div class="v" id="stat-store-p99">–</div></div>
  </section>
  <section class="panel"><h2>Connections</h2><canvas id="chart-connections"></canvas><div class="legend" id="legend-connections"></div></section>
  <section class="panel"><h2>Messages per second</h2><canvas id="chart-messages"></canvas><div class="legend" id="legend-messages"></div></section>
  <section class="panel"><h2>Per-core load (CPU %)</h2><canvas id="chart-cores"></canvas><div class="legend" id="legend-cores"></div></section>
  <section class="panel"><h2>Slow consumers (per second)</h2><canvas id="chart-slow"></canvas><div class="legend" id="legend-slow"></div></section>
  <section class="panel"><h2>Fan-out latency (last 10 s)</h2><canvas id="chart-fanout"></canvas><div class="legend" id="legend-fanout"></div></section>
  <section class="panel"><h2>Store commit latency (last 10 s)</h2><canvas id="chart-store"></canvas><div class="legend" id="legend-store"></div></section>
  <section class="panel" style="grid-column:1/-1"><h2>Top rooms</h2>
    <table><thead><tr><th>room</th><th>members</th><th>messages</th><th>messages /s</th></tr></thead>
    <tbody id="rooms"></tbody></table></section>
</main>
<div id="login"><form id="login-form"><div>This server needs an API key
  (<code>[api] keys</code>) to show its dashboard.</div>
  <input id="key" type="password" autocomplete="off" placeholder="API key">
  <button id="key-submit" type="submit">Show dashboard</button></form></div>
<script>
"use strict";
const POINTS = 120, WINDOW = 10, COLORS = ["#4fb3ff", "#ffb347", "#7bd88f", "#ff6b81", "#c39bff",
  "#f5e26b", "#6be0f5", "#f59f6b"];
const KEY_ITEM = "ringcast.dashboard.apikey";
const samples = [];  // raw /dashboard/data answers, newest last (WINDOW + 1 kept)
const series = {};   // chart name -> {label -> values[]}
let updates = 0, timer = null;

function $(id) { return document.getElementById(id); }
function push(chart, label, v) {
  const s = (series[chart] = series[chart] || {});
  const a = (s[label] = s[label] || []);
  a.push(v);
  if (a.length > POINTS) a.shift();
}
function fmtNum(v) {
  if (v === null || v === undefined || !isFinite(v)) return "–";
  if (Math.abs(v) >= 1e6) return (v / 1e6).toFixed(1) + "M";
  if (Math.abs(v) >= 1e4) return (v / 1e3).toFixed(1) + "k";
  return Math.abs(v) >= 100 || Number.isInteger(v) ? Math.round(v).toString() : v.toFixed(1);
}
function fmtSec(v) {
  if (v === null || v === undefined || !isFinite(v)) return "–";
  if (v < 1e-3) return (v * 1e6).toFixed(0) + " µs";
  if (v < 1) return (v * 1e3).toFixed(v < 1e-2 ? 2 : 1) + " ms";
  return v.toFixed(2) + " s";
}
// Percentile q of the observations between two histogram snapshots (linear within a bucket).
function percentile(newer, older, q) {
  if (!newer || !newer.counts) return null;
  const counts = newer.counts.map((c, i) => c - (older && older.counts ? older.counts[i] : 0));
  const total = counts.reduce((a, b) => a + b, 0);
  if (total <= 0) return null;
  const rank = q * total;
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    if (counts[i] > 0 && seen + counts[i] >= rank) {
      const lo = i === 0 ? 0 : newer.bounds[i - 1];
      const hi = i < newer.bounds.length ? newer.bounds[i] : lo * 2;
      return lo + (hi - lo) * ((rank - seen) / counts[i]);
    }
    seen += counts[i];
  }
  return newer.bounds[newer.bounds.length - 1];
}
function draw(chart, fmt) {
  const canvas = $("chart-" + chart), s = series[chart] || {};
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  if (canvas.width !== Math.round(w * dpr)) canvas.width = Math.round(w * dpr);
  if (canvas.height !== Math.round(h * dpr)) canvas.height = Math.round(h * dpr);
  const g = canvas.getContext("2d");
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);
  const labels = Object.keys(s);
  let max = 0;
  for (const l of labels) for (const v of s[l]) if (v !== null && v > max) max = v;
  max = max > 0 ? max * 1.15 : 1;
  const left = 64, right = 8, top = 8, bottom = 8, pw = w - left - right, ph = h - top - bottom;
  g.font = "11px system-ui, sans-serif";
  g.fillStyle = "#8595a6";
  g.strokeStyle = "#2a3541";
  g.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const y = top + ph - (ph * i) / 4;
    g.beginPath(); g.moveTo(left, y); g.lineTo(w - right, y); g.stroke();
    g.fillText(fmt((max * i) / 4), 4, y + 4);
  }
  labels.forEach((l, k) => {
    const vals = s[l];
    g.strokeStyle = COLORS[k % COLORS.length];
    g.lineWidth = 1.6;
    g.beginPath();
    let started = false;
    vals.forEach((v, i) => {
      if (v === null) { started = false; return; }
      const x = left + pw * (i + POINTS - vals.length) / (POINTS - 1);
      const y = top + ph - (ph * v) / max;
      if (started) g.lineTo(x, y); else { g.moveTo(x, y); started = true; }
    });
    g.stroke();
  });
  const legend = $("legend-" + chart);
  const text = labels.map((l, k) => [l, COLORS[k % COLORS.length], s[l][s[l].length - 1]]);
  legend.replaceChildren(...text.map(([l, color, last]) => {
    const span = document.createElement("span"), dot = document.createElement("i");
    dot.style.background = color;
    span.append(dot, l + " " + fmt(last));
    return span;
  }));
}
function rate(field, d, prev, dt) { return prev ? Math.max(0, (d[field] - prev[field]) / dt) : null; }

function update(d) {
  samples.push(d);
  if (samples.length > WINDOW + 1) samples.shift();
  const prev = samples.length > 1 ? samples[samples.length - 2] : null;
  const oldest = samples.length > 1 ? samples[0] : null;
  const dt = prev ? Math.max(0.001, d.time - prev.time) : 1;
  const inRate = rate("messages_in", d, prev, dt), outRate = rate("messages_out", d, prev, dt);
  push("connections", "websockets", d.websockets);
  push("connections", "tcp", d.connections);
  push("messages", "in", inRate);
  push("messages", "out", outRate);
  d.workers.forEach((w, i) => {
    const p = prev && prev.workers[i];
    push("cores", "core " + i, p ? Math.min(100, 100 * Math.max(0, w.cpu_seconds - p.cpu_seconds) / dt) : null);
  });
  const slow = d.slow_consumers, ps = prev && prev.slow_consumers;
  push("slow", "closed", ps ? Math.max(0, slow.closed - ps.closed) / dt : null);
  push("slow", "dropped msgs", ps ? Math.max(0, slow.dropped_messages - ps.dropped_messages) / dt : null);
  for (const q of [0.5, 0.9, 0.99]) {
    const name = "p" + Math.round(q * 100);
    push("fanout", name, oldest ? percentile(d.fanout_seconds, oldest.fanout_seconds, q) : null);
    push("store", name, d.store_commit_seconds && oldest ?
         percentile(d.store_commit_seconds, oldest.store_commit_seconds, q) : null);
  }
  $("version").textContent = "v" + d.version + " · " + d.backend + " · " + d.workers.length + " cores";
  $("stat-connections").textContent = fmtNum(d.websockets);
  $("stat-msgs-in").textContent = fmtNum(inRate);
  $("stat-msgs-out").textContent = fmtNum(outRate);
  $("stat-rooms").textContent = fmtNum(d.rooms);
  $("stat-slow").textContent = fmtNum(slow.closed);
  const fs = series.fanout.p99, ss = series.store.p99;
  $("stat-fanout-p99").textContent = fmtSec(fs[fs.length - 1]);
  $("stat-store-p99").textContent = d.store_commit_seconds ? fmtSec(ss[ss.length - 1]) : "no store";
  const before = {};
  if (prev) for (const r of prev.top_rooms) before[r.name] = r.messages;
  const rooms = d.top_rooms.slice().sort((a, b) => b.members - a.members || b.messages - a.messages)
    .slice(0, 15);
  $("rooms").replaceChildren(...rooms.map((r) => {
    const tr = document.createElement("tr");
    const mps = r.name in before ? Math.max(0, r.messages - before[r.name]) / dt : null;
    for (const v of [r.name, fmtNum(r.members), fmtNum(r.messages), fmtNum(mps)]) {
      const td = document.createElement("td");
      td.textContent = v;  // room names are client input: text only, never markup
      tr.append(td);
    }
    return tr;
  }));
  draw("connections", fmtNum);
  draw("messages", fmtNum);
  draw("cores", fmtNum);
  draw("slow", fmtNum);
  draw("fanout", fmtSec);
  draw("store", fmtSec);
  updates++;
  document.body.dataset.updates = String(updates);
}

function status(text, bad) {
  const s = $("status");
  s.textContent = text;
  s.className = bad ? "bad" : "";
}
async function poll() {
  const key = sessionStorage.getItem(KEY_ITEM);
  const headers = key ? { Authorization: "apikey " + key } : {};
  let res;
  try {
    res = await fetch("/dashboard/data", { headers: headers, cache: "no-store" });
  } catch (e) {
    status("server unreachable, retrying", true);
    return;
  }
  if (res.status === 401) {
    sessionStorage.removeItem(KEY_ITEM);
    $("login").style.display = "flex";
    $("key").focus();
    status("API key needed", true);
    return;
  }
  if (!res.ok) {
    let why = "HTTP " + res.status;
    try { why = (await res.json()).error || why; } catch (e) { /* not JSON */ }
    status(why, true);
    return;
  }
  $("login").style.display = "none";
  update(await res.json());
  status("live · updated " + new Date().toLocaleTimeString());
}
$("login-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  sessionStorage.setItem(KEY_ITEM, $("key").value);
  $("key").value = "";
  $("login").style.display = "none";
  poll();
});
async function loop() {
  await poll();
  timer = setTimeout(loop, 1000);
}
loop();
</script>
</body></html>
)RCDASH";

}  // namespace ringcast::app
