// dronectl command center: the automations. Road stretches and their traffic, what the drones
// found (black ice), ground units requested, and the patrol missions with their buttons.
// Snapshots: /snapshots/{id}.jpg (an <img> of our own page sends the session cookie; no token in
// any URL).
// Loaded before app.js, whose helpers (ui, $, el, project, points, say, send, markAllowed) these
// functions use when they are called; app.js calls them from its map, events and start.
"use strict";

const LEVELS = ["free", "light", "heavy", "standstill"]; // congestion levels, dronectl.domain.patrols.congestion
const KIND_NAMES = { black_ice: "black ice", congestion: "congestion" };
const FINDINGS_KEPT = 200;

const auto = {
  traffic: new Map(), // stretch id -> the data of its latest congestion event (+ at)
  findings: new Map(), // detection id -> {lat, lon, nestId, snapshotId, coveragePct, at}
  missions: new Map(), // mission id -> mission (active ones; see dronectl.automations.patrols.store.mission_data)
  ended: new Set(), // mission ids seen ended: a late message never brings one back
};
window.automations = auto; // for tests and the curious

function stretches() {
  return (ui.config && ui.config.stretches) || [];
}

function stretchName(id) {
  const s = stretches().find((x) => x.id === id);
  return s ? s.name : id;
}

function clock(at) {
  const t = Date.parse(at);
  return Number.isFinite(t) ? new Date(t).toLocaleTimeString() : "";
}

// --- road stretches on the map ----------------------------------------------------------------

function trafficText(t) {
  const speed = typeof t.mean_speed_mps === "number"
    ? `${t.mean_speed_mps.toFixed(1)} m/s (${(t.mean_speed_mps * 3.6).toFixed(0)} km/h)`
    : "speed unknown";
  const stopped = typeof t.stopped_fraction === "number" ? `, ${Math.round(t.stopped_fraction * 100)} % stopped` : "";
  const vehicles = typeof t.vehicles === "number" ? `, ${t.vehicles} vehicles seen` : "";
  return `${t.level}: ${fmt(t.density_veh_per_km, 0, " veh/km per lane")}, ${speed}${stopped}${vehicles} · ${clock(t.at)}`;
}

// configured for congestion, or read by a patrol someone started on it
function watchedForTraffic(s) {
  return s.watch.includes("congestion") || auto.traffic.has(s.id);
}

function stretchTooltip(s) {
  const lines = [s.name];
  if (watchedForTraffic(s)) {
    const t = auto.traffic.get(s.id);
    lines.push(t ? `traffic ${trafficText(t)}` : "traffic: no reading yet");
  }
  if (s.watch.includes("black_ice")) lines.push("watched for black ice");
  const m = [...auto.missions.values()].filter((x) => x.stretch_id === s.id);
  for (const x of m) lines.push(`${KIND_NAMES[x.kind] || x.kind} patrol: ${x.state}${typeof x.nest_id === "number" ? ", nest " + x.nest_id : ""}`);
  return lines.join("\n");
}

// the point halfway along a polyline (in map units), for its label
function halfway(xy) {
  const legs = xy.slice(1).map((p, i) => Math.hypot(p[0] - xy[i][0], p[1] - xy[i][1]));
  let rest = legs.reduce((a, b) => a + b, 0) / 2;
  for (let i = 0; i < legs.length; i++) {
    if (rest <= legs[i] && legs[i] > 0) {
      const k = rest / legs[i];
      return [xy[i][0] + (xy[i + 1][0] - xy[i][0]) * k, xy[i][1] + (xy[i + 1][1] - xy[i][1]) * k];
    }
    rest -= legs[i];
  }
  return xy[xy.length - 1];
}

// Each stretch as a polyline with its name. A congestion stretch's colour is its latest level
// (data-level: free, light, heavy, standstill; unknown before any reading); a black-ice one is
// dashed; one with an active patrol is drawn wider.
function drawStretches() {
  const layer = $("layer-stretches");
  layer.replaceChildren();
  const patrolled = new Set([...auto.missions.values()].map((m) => m.stretch_id));
  for (const s of stretches()) {
    const congestion = watchedForTraffic(s);
    const t = auto.traffic.get(s.id);
    const level = t && LEVELS.includes(t.level) ? t.level : "unknown";
    const cls = ["stretch", congestion ? "congestion" : "", s.watch.includes("black_ice") ? "ice" : "", patrolled.has(s.id) ? "patrolled" : ""];
    const g = el("svg:g", { class: cls.filter(Boolean).join(" "), "data-stretch": s.id, "data-level": congestion ? level : "none" });
    g.append(el("svg:title", {}, stretchTooltip(s)));
    g.append(el("svg:polyline", { points: points(s.points) }));
    const [x, y] = halfway(s.points.map(([lat, lon]) => project(lat, lon)));
    g.append(el("svg:text", { x: x.toFixed(1), y: (y - ui.unit * 0.9).toFixed(1), "font-size": ui.unit * 1.3 }, s.name));
    g.addEventListener("click", (ev) => { ev.stopPropagation(); choosePatrolStretch(s.id); });
    layer.append(g);
  }
}

// --- findings ---------------------------------------------------------------------------------

// the snapshot's picture (the session cookie goes with the <img>'s request); built from the
// id (the route is /snapshots/{id}.jpg, dronectl.transports.web.snapshots), so it is always this origin's
function snapshotSrc(snapshotId) {
  if (typeof snapshotId !== "string" || !/^[A-Za-z0-9_-]{1,80}$/.test(snapshotId)) return null;
  return `/snapshots/${snapshotId}.jpg`;
}

function thumbnail(snapshotId, stored = true) {
  const src = stored === false ? null : snapshotSrc(snapshotId);
  if (!src) return snapshotId ? el("div", { class: "muted" }, "the snapshot could not be kept") : null;
  const img = el("img", { class: "thumb", src, alt: `snapshot ${snapshotId}`, title: "click to enlarge" });
  img.addEventListener("click", () => img.classList.toggle("big"));
  img.addEventListener("error", () => img.replaceWith(el("div", { class: "muted" }, `snapshot ${snapshotId} not available`)));
  return img;
}

function drawFindings() {
  const layer = $("layer-findings");
  layer.replaceChildren();
  for (const [id, f] of auto.findings) {
    const [x, y] = project(f.lat, f.lon);
    const r = ui.unit * 1.5;
    const ice = f.kind === "black_ice";
    const g = el("svg:g", { class: `finding${ice ? " ice" : ""}`, "data-detection": id, transform: `translate(${x.toFixed(1)},${y.toFixed(1)})` });
    const coverage = typeof f.coveragePct === "number" ? `, ${f.coveragePct.toFixed(1)} % of the picture` : "";
    const what = KIND_NAMES[f.kind] || f.kind;
    g.append(el("svg:title", {}, `${what} found by nest ${f.nestId} at ${f.lat.toFixed(5)}, ${f.lon.toFixed(5)}${coverage} · ${clock(f.at)}`));
    g.append(el("svg:circle", { r }));
    for (const angle of [0, 60, 120]) { // a snowflake
      g.append(el("svg:line", { x1: 0, y1: -r * 0.7, x2: 0, y2: r * 0.7, transform: `rotate(${angle})` }));
    }
    g.append(el("svg:text", { x: r * 1.3, y: r * 0.4, "font-size": ui.unit * 1.3 }, ice ? "ice" : what));
    layer.append(g);
  }
}

function showOnMap(lat, lon) {
  const [x, y] = project(lat, lon);
  const w = ui.fullView.w / 8;
  const h = ui.fullView.h / 8;
  setView({ x: x - w / 2, y: y - h / 2, w, h });
}

// "Ground units requested": a banner over the map until the commander acknowledges it
function showGroundUnits(e) {
  const d = e.data || {};
  const pos = d.position || {};
  const placed = typeof pos.lat === "number" && typeof pos.lon === "number";
  const item = el("div", { class: "ground-units", "data-detection": d.detection_id || "" });
  const where = placed ? ` to ${pos.lat.toFixed(5)}, ${pos.lon.toFixed(5)}` : "";
  const text = el("div", { class: "text" });
  text.append(
    el("strong", {}, `Ground units requested${where}`),
    el("span", {}, ` ${e.nest_id ? "(nest " + e.nest_id + ") " : ""}${clock(e.at)}`),
    el("div", {}, d.reason || e.message),
  );
  if (d.seen) text.append(el("div", { class: "seen" }, `seen: ${d.seen}`));
  item.append(text);
  const thumb = thumbnail(d.snapshot_id, d.snapshot_stored);
  if (thumb) item.append(thumb);
  const buttons = el("div", { class: "buttons" });
  if (placed) {
    const show = el("button", { type: "button" }, "Show");
    show.addEventListener("click", () => showOnMap(pos.lat, pos.lon));
    buttons.append(show);
  }
  const ack = el("button", { type: "button", class: "ack" }, "Acknowledge");
  ack.addEventListener("click", () => item.remove());
  buttons.append(ack);
  item.append(buttons);
  $("alerts").prepend(item);
}

// --- events and progress (called by app.js) ---------------------------------------------------

// An automation's event: drawn and said here; true when handled (app.js says nothing more).
function onAutomationEvent(e) {
  const d = e.data || {};
  const who = e.nest_id ? `#${e.nest_id} ` : "";
  if (e.kind === "congestion" && typeof d.stretch_id === "string") {
    const before = auto.traffic.get(d.stretch_id);
    auto.traffic.set(d.stretch_id, { ...d, at: e.at });
    drawStretches();
    if (!before || before.level !== d.level) { // a change is news; the figures are in the tooltip
      say(`event level-${LEVELS.includes(d.level) ? d.level : "unknown"}`, `${who}${e.message}`);
    }
    return true;
  }
  if (e.kind === "detection") {
    if (typeof d.lat === "number" && typeof d.lon === "number") {
      const id = d.detection_id || d.snapshot_id || `${e.nest_id}-${e.at}`;
      const kind = typeof d.kind === "string" ? d.kind : "black_ice";
      auto.findings.set(id, { kind, lat: d.lat, lon: d.lon, nestId: e.nest_id, snapshotId: d.snapshot_id, coveragePct: d.coverage_pct, at: e.at });
      while (auto.findings.size > FINDINGS_KEPT) auto.findings.delete(auto.findings.keys().next().value);
      drawFindings();
    }
    say("finding", `${who}${e.message}`, [], thumbnail(d.snapshot_id, d.snapshot_stored));
    return true;
  }
  if (e.kind === "ground_units_requested") {
    showGroundUnits(e);
    say("alert", `${who}${e.message}`, [d.reason, d.seen].filter(Boolean));
    return true;
  }
  if (e.kind === "patrol") {
    upsertMission(d);
    say("event", `${who}${e.message}`);
    return true;
  }
  return false;
}

// A command's progress: the patrol list fills the panel (said nowhere else); a started or
// stopped mission updates it. True when app.js should say nothing about it.
function onAutomationProgress(p) {
  if (p.method === "patrol.list") {
    if (p.state === "succeeded" && p.result && Array.isArray(p.result.missions)) {
      setMissions(p.result.missions);
      return true;
    }
    return p.state !== "failed";
  }
  if ((p.method === "patrol.start" || p.method === "patrol.stop") && p.state === "succeeded" && p.result) {
    upsertMission(p.result.mission);
  }
  return false;
}

// --- the patrols panel ------------------------------------------------------------------------

function upsertMission(m) {
  if (!m || typeof m.id !== "string") return;
  if (m.state === "ended") {
    auto.ended.add(m.id);
    auto.missions.delete(m.id);
  } else if (!auto.ended.has(m.id)) {
    auto.missions.set(m.id, m);
  }
  renderMissions();
}

function setMissions(list) {
  auto.missions.clear();
  for (const m of list) {
    if (m.state === "ended") auto.ended.add(m.id);
    else if (!auto.ended.has(m.id)) auto.missions.set(m.id, m);
  }
  renderMissions();
}

// the active missions (from patrol.list, then from patrol events), oldest first
async function refreshMissions() {
  if (!ui.me.methods.includes("patrol.list")) {
    $("missions-none").textContent = "no active patrol seen (your role may not list them)";
    return;
  }
  const reply = await send("patrol.list", { active_only: true }, true, true);
  if (reply && !reply.ok && reply.error) {
    $("missions-none").textContent = `patrols unavailable: ${[reply.error.message, ...(reply.error.reasons || [])].join("; ")}`;
  }
}

function missionNests(m) {
  const nest = m.nest_id === null || m.nest_id === undefined ? "–" : String(m.nest_id);
  return typeof m.relief_nest_id === "number" ? `${nest} → ${m.relief_nest_id}` : nest; // a relief on its way
}

function renderMissions() {
  const body = document.querySelector("#missions tbody");
  body.replaceChildren();
  const missions = [...auto.missions.values()].sort((a, b) => a.created_unix_s - b.created_unix_s);
  for (const m of missions) {
    const row = el("tr", { "data-mission": m.id, title: `${m.id}: ${m.trigger || ""}${m.reason ? " — " + m.reason : ""}` });
    row.append(
      el("td", {}, KIND_NAMES[m.kind] || String(m.kind)),
      el("td", { class: "stretch-name" }, stretchName(m.stretch_id)),
      el("td", { class: `mstate ms-${m.state}` }, String(m.state)),
      el("td", {}, missionNests(m)),
    );
    const stop = el("button", { type: "button", class: "stop", "data-method": "patrol.stop" }, "Stop");
    stop.addEventListener("click", () => send("patrol.stop", { mission_id: m.id }, true));
    const cell = el("td");
    cell.append(stop);
    row.append(cell);
    body.append(row);
  }
  $("missions-none").hidden = missions.length > 0;
  markAllowed();
  drawStretches();
}

function choosePatrolStretch(id) {
  const select = $("patrol-stretch");
  select.value = id;
  const s = stretches().find((x) => x.id === id);
  if (s && s.watch.length && !s.watch.includes($("patrol-kind").value)) $("patrol-kind").value = s.watch[0];
}

function startPatrol() {
  const stretchId = $("patrol-stretch").value;
  if (!stretchId) { say("refused", "patrol: no road stretch is configured"); return; }
  send("patrol.start", { kind: $("patrol-kind").value, stretch_id: stretchId }, true);
}

// what the automations will do on their own, and when (GET /api/automations: the service's
// calendar, in the city's time): refreshed every minute so that "now" stays true
const OUTLOOK_REFRESH_MS = 60000;

async function loadOutlook() {
  const list = $("automations-outlook");
  try {
    const outlook = await getJson("/api/automations");
    list.replaceChildren();
    list.dataset.at = outlook.at || "";
    for (const a of outlook.automations || []) {
      const cls = ["outlook", a.enabled ? "" : "off", a.active ? "active" : ""].filter(Boolean).join(" ");
      list.append(el("li", { class: cls, "data-kind": a.kind, "data-next": a.next || "" }, a.text));
    }
  } catch (err) {
    list.replaceChildren(el("li", { class: "outlook off" }, `automations unknown: ${err.message}`));
  }
}

function buildPatrolPanel() {
  loadOutlook();
  setInterval(loadOutlook, OUTLOOK_REFRESH_MS);
  const select = $("patrol-stretch");
  select.replaceChildren();
  for (const s of stretches()) {
    const watch = s.watch.map((k) => KIND_NAMES[k] || k).join(", ");
    select.append(el("option", { value: s.id }, watch ? `${s.name} (${watch})` : s.name));
  }
  select.addEventListener("change", () => choosePatrolStretch(select.value));
  if (select.options.length) choosePatrolStretch(select.value);
  $("btn-patrol-start").addEventListener("click", startPatrol);
  renderMissions();
}
