// dronectl command center: the fleet map, live state, video tiles and commands.
// Plain JavaScript, no framework, nothing loaded from the internet. Data comes from the service's
// REST and WebSocket API (/api/...), signed in by the session cookie (POST /api/login; never a token
// in a URL); video by WHEP (/whep/nests/{nest}).
"use strict";

const AIRBORNE = new Set(["launching", "en_route", "on_station", "returning", "landing"]);
const TRACK_POINTS = 400;
const SVG_NS = "http://www.w3.org/2000/svg";
const M_PER_DEG_LAT = 110540;
const M_PER_DEG_LON = 111320;

const ui = {
  me: null,
  config: null,
  states: new Map(), // nest id -> NestState
  telemetry: new Map(), // nest id -> Telemetry
  tracks: new Map(), // nest id -> [[x, y], ...]
  incidents: new Map(), // incident id -> {lat, lon, kind, state}
  pick: null, // {lat, lon}
  replay: null, // while an incident is replayed: its player (replay.js); the live state goes on underneath
  ws: null,
  wsBackoffMs: 500,
  videos: new Map(), // nest id -> VideoTile
  sent: new Set(), // ids of the commands sent from this page (their replies are shown already)
  origin: { lat: 0, lon: 0, kx: 1, mx: 0, my: 0 },
  unit: 100, // map units (metres) for marker sizes
};
window.commandCenter = ui; // for tests and the curious: sessions, states

// --- small helpers ----------------------------------------------------------------------------

function $(id) { return document.getElementById(id); }

function el(tag, attrs = {}, text = null) {
  const node = tag.startsWith("svg:") ? document.createElementNS(SVG_NS, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== null) node.textContent = text;
  return node;
}

function newId() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return "web-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function fmt(value, digits, unit) {
  return value === null || value === undefined ? "–" : `${Number(value).toFixed(digits)}${unit}`;
}

function authHeaders(extra = {}) {
  // signed in with a user: the session cookie goes by itself (HttpOnly: this script never sees it)
  return { ...extra };
}

async function getJson(path) {
  const res = await fetch(path, { headers: authHeaders() });
  if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  return res.json();
}

// --- messages ---------------------------------------------------------------------------------

function say(kind, text, reasons = [], extra = null) {
  const list = $("messages");
  const item = el("li", { class: kind });
  item.append(el("time", {}, new Date().toLocaleTimeString()), " ", el("span", {}, text));
  if (reasons.length) {
    const ul = el("ul");
    for (const r of reasons) ul.append(el("li", {}, r));
    item.append(ul);
  }
  if (extra) item.append(extra); // a snapshot's thumbnail
  list.prepend(item);
  while (list.children.length > 60) list.lastChild.remove();
}

// --- sign-in --------------------------------------------------------------------------------

function showLogin(message) {
  $("main").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message || "";
}

// --- map --------------------------------------------------------------------------------------

// Web Mercator (as the base map's tiles), in metres at the map's middle latitude: x east and y
// south of the origin, scaled by cos(lat0), so sizes near the city are metres on the ground.
function mercator(lat, lon) {
  const R = 6378137;
  const phi = (Math.max(Math.min(lat, 85), -85) * Math.PI) / 180;
  return [(R * lon * Math.PI) / 180, R * Math.log(Math.tan(Math.PI / 4 + phi / 2))];
}

function project(lat, lon) {
  const o = ui.origin;
  const [mx, my] = mercator(lat, lon);
  return [(mx - o.mx) * o.kx, -(my - o.my) * o.kx];
}

function unproject(x, y) {
  const o = ui.origin;
  const R = 6378137;
  const mx = x / o.kx + o.mx;
  const my = -y / o.kx + o.my;
  return { lat: ((2 * Math.atan(Math.exp(my / R)) - Math.PI / 2) * 180) / Math.PI, lon: ((mx / R) * 180) / Math.PI };
}

function points(polygon) {
  return polygon.map(([lat, lon]) => project(lat, lon).map((v) => v.toFixed(1)).join(",")).join(" ");
}

function drawMap() {
  const cfg = ui.config;
  const all = [...cfg.geofence.polygon, ...cfg.nests.map((n) => [n.lat, n.lon])];
  const lats = all.map((p) => p[0]);
  const lons = all.map((p) => p[1]);
  const lat0 = (Math.min(...lats) + Math.max(...lats)) / 2;
  const lon0 = (Math.min(...lons) + Math.max(...lons)) / 2;
  const [mx, my] = mercator(lat0, lon0);
  ui.origin = { lat: lat0, lon: lon0, kx: Math.cos((lat0 * Math.PI) / 180), mx, my };
  const xy = all.map(([lat, lon]) => project(lat, lon));
  const xs = xy.map((p) => p[0]);
  const ys = xy.map((p) => p[1]);
  const w = Math.max(...xs) - Math.min(...xs);
  const h = Math.max(...ys) - Math.min(...ys);
  const pad = Math.max(w, h) * 0.04;
  ui.fullView = { x: Math.min(...xs) - pad, y: Math.min(...ys) - pad, w: w + 2 * pad, h: h + 2 * pad };
  setView({ ...ui.fullView });
  wireMap();
  wireMapControls(); // coordinates under the cursor, search, follow (basemap.js)
  startBasemap(); // the tiles under the SVG when a base map is configured (basemap.js)
}

// The view (SVG viewBox, in metres east/south of the origin); markers and labels keep their size
// on screen whatever the zoom, so every layer is drawn again when the view changes.
function setView(view) {
  ui.view = view;
  const svg = $("map");
  svg.setAttribute("viewBox", `${view.x} ${view.y} ${view.w} ${view.h}`);
  const ctm = svg.getScreenCTM();
  ui.unit = ctm && ctm.a > 0 ? 7.5 / ctm.a : Math.max(view.w, view.h) / 120;
  drawZones();
  drawStretches();
  drawNests();
  drawIncidents();
  drawFindings();
  drawDrones();
  drawPick();
  syncBasemap(); // the tiles follow the view (basemap.js)
}

// The coverage layer: expected time to scene, a picture from /api/coverage laid at its bounds
// (linear in latitude and longitude; over a city Web Mercator is so nearly linear in latitude that
// it fits within a fraction of a grid cell).
async function toggleCoverage() {
  const button = $("map-coverage");
  const layer = $("layer-coverage");
  const legend = $("coverage-legend");
  if (button.getAttribute("aria-pressed") === "true") {
    button.setAttribute("aria-pressed", "false");
    layer.replaceChildren();
    legend.hidden = true;
    return;
  }
  button.setAttribute("aria-pressed", "true");
  legend.hidden = false;
  legend.textContent = "computing coverage…";
  let cov;
  try {
    cov = await getJson("/api/coverage");
  } catch (err) {
    legend.textContent = `coverage unavailable: ${err.message}`;
    return;
  }
  if (button.getAttribute("aria-pressed") !== "true") return; // switched off meanwhile
  const b = cov.bounds;
  const [x0, y0] = project(b.north, b.west);
  const [x1, y1] = project(b.south, b.east);
  const image = el("svg:image", { x: x0, y: y0, width: x1 - x0, height: y1 - y0, preserveAspectRatio: "none" });
  image.setAttribute("href", cov.image);
  image.style.imageRendering = "pixelated";
  layer.replaceChildren(image);
  const s = cov.stats;
  const min = (v) => `${Math.round(v / 60)} min`;
  const wind = cov.wind.speed_mps > 0 ? `wind ${cov.wind.speed_mps.toFixed(0)} m/s` : "calm";
  legend.replaceChildren(
    el("div", {}, `time to scene (${wind})`),
    el("div", { class: "bar" }),
    el("div", { class: "ticks" }),
    el("div", { id: "coverage-stats" }, `${s.within_target_pct} % of the city within ${min(cov.on_scene_target_s)}; median ${Math.round(s.median_s)} s, p95 ${Math.round(s.p95_s)} s`),
  );
  legend.querySelector(".ticks").append(el("span", {}, "0"), el("span", {}, min(cov.scale_max_s / 2)), el("span", {}, `≥ ${min(cov.scale_max_s)}`));
}

function drawZones() {
  const cfg = ui.config;
  const zones = $("layer-zones");
  zones.replaceChildren();
  zones.append(el("svg:polygon", { class: "geofence", points: points(cfg.geofence.polygon) }));
  for (const z of cfg.no_fly_zones) {
    const g = el("svg:g", { class: "nofly" });
    g.append(el("svg:title", {}, `no-fly zone: ${z.name}`));
    g.append(el("svg:polygon", { points: points(z.polygon) }));
    const c = z.polygon.reduce((a, [lat, lon]) => [a[0] + lat / z.polygon.length, a[1] + lon / z.polygon.length], [0, 0]);
    const [cx, cy] = project(c[0], c[1]);
    g.append(el("svg:text", { x: cx, y: cy, "font-size": ui.unit * 1.6 }, z.name));
    zones.append(g);
  }
}

function drawNests() {
  const nests = $("layer-nests");
  nests.replaceChildren();
  for (const n of ui.config.nests) {
    const [x, y] = project(n.lat, n.lon);
    const g = el("svg:g", { class: "nest", "data-nest": n.id, transform: `translate(${x.toFixed(1)},${y.toFixed(1)})` });
    g.append(el("svg:title", {}, `nest ${n.id}: ${n.name}`));
    const s = ui.unit * 1.4;
    g.append(el("svg:rect", { x: -s, y: -s, width: 2 * s, height: 2 * s, rx: s * 0.3 }));
    g.append(el("svg:text", { class: "nest-id", y: s * 0.45, "font-size": s * 1.2 }, String(n.id)));
    g.append(el("svg:text", { class: "nest-name", y: s * 2.6, "font-size": ui.unit * 1.5 }, n.name));
    g.addEventListener("click", (ev) => { ev.stopPropagation(); selectNest(n.id); });
    nests.append(g);
  }
}

function svgPoint(ev) {
  const ctm = $("map").getScreenCTM();
  return ctm ? new DOMPoint(ev.clientX, ev.clientY).matrixTransform(ctm.inverse()) : null;
}

function wireMap() {
  const svg = $("map");
  let drag = null; // {x, y, view, moved}
  svg.addEventListener("wheel", (ev) => {
    ev.preventDefault();
    const p = svgPoint(ev);
    if (!p) return;
    const v = ui.view;
    const full = ui.fullView;
    const factor = Math.min(Math.max(Math.exp(ev.deltaY * 0.0015), 0.5), 2);
    const w = Math.min(Math.max(v.w * factor, full.w / 300), full.w * 1.5);
    const k = w / v.w;
    setView({ x: p.x - (p.x - v.x) * k, y: p.y - (p.y - v.y) * k, w, h: v.h * k });
  }, { passive: false });
  svg.addEventListener("pointerdown", (ev) => {
    drag = { x: ev.clientX, y: ev.clientY, view: ui.view, moved: false };
  });
  svg.addEventListener("pointermove", (ev) => {
    if (!drag || !(ev.buttons & 1)) return;
    const dx = ev.clientX - drag.x;
    const dy = ev.clientY - drag.y;
    if (!drag.moved && Math.hypot(dx, dy) < 5) return;
    drag.moved = true;
    const ctm = svg.getScreenCTM();
    if (!ctm) return;
    setView({ ...drag.view, x: drag.view.x - dx / ctm.a, y: drag.view.y - dy / ctm.d });
  });
  svg.addEventListener("click", (ev) => {
    const wasDrag = drag && drag.moved;
    drag = null;
    if (wasDrag) return; // the end of a pan, not a pick
    const p = svgPoint(ev);
    if (!p) return;
    ui.pick = unproject(p.x, p.y);
    drawPick();
  });
  $("map-fit").addEventListener("click", () => setView({ ...ui.fullView }));
  $("map-coverage").addEventListener("click", toggleCoverage);
  window.addEventListener("resize", () => setView(ui.view));
}

function drawPick() {
  const layer = $("layer-pick");
  layer.replaceChildren();
  if (!ui.pick) return;
  const [x, y] = project(ui.pick.lat, ui.pick.lon);
  const r = ui.unit * 1.2;
  const g = el("svg:g", { class: "pick", transform: `translate(${x},${y})` });
  g.append(el("svg:circle", { r }));
  g.append(el("svg:line", { x1: -2 * r, x2: 2 * r, y1: 0, y2: 0 }));
  g.append(el("svg:line", { x1: 0, x2: 0, y1: -2 * r, y2: 2 * r }));
  layer.append(g);
  $("pick-text").textContent = `${ui.pick.lat.toFixed(5)}, ${ui.pick.lon.toFixed(5)}`;
}

function dronePose(nestId) {
  const state = ui.states.get(nestId);
  const t = ui.telemetry.get(nestId);
  const fresh = t && state && Date.parse(t.at) >= Date.parse(state.at) - 2000;
  const position = fresh ? t.position : state && state.drone.position;
  return { position, heading: t ? t.heading_deg : null };
}

function drawDrones() {
  const drones = $("layer-drones");
  const tracks = $("layer-tracks");
  drones.replaceChildren();
  tracks.replaceChildren();
  if (ui.replay) { drawReplay(drones, tracks); return; } // an incident replayed (replay.js)
  for (const [nestId, state] of ui.states) {
    const track = ui.tracks.get(nestId) || [];
    if (track.length > 1) {
      tracks.append(el("svg:polyline", { class: "track", points: track.map((p) => p.join(",")).join(" ") }));
    }
    if (!AIRBORNE.has(state.phase)) continue;
    const { position, heading } = dronePose(nestId);
    if (!position) continue;
    const [x, y] = project(position.lat, position.lon);
    const s = ui.unit * 1.8;
    const g = el("svg:g", { class: "drone", "data-nest": nestId, transform: `translate(${x.toFixed(1)},${y.toFixed(1)})` });
    g.append(el("svg:title", {}, `drone of nest ${nestId}: ${state.phase}, ${fmt(position.alt_m, 0, " m")}`));
    const arrow = el("svg:polygon", { points: `0,${-s} ${s * 0.7},${s * 0.8} 0,${s * 0.35} ${-s * 0.7},${s * 0.8}` });
    if (heading !== null) arrow.setAttribute("transform", `rotate(${heading.toFixed(0)})`);
    g.append(arrow);
    g.append(el("svg:text", { x: s * 1.1, y: -s * 0.6, "font-size": ui.unit * 1.5 }, `${nestId} · ${fmt(position.alt_m, 0, " m")}`));
    drones.append(g);
  }
  drawTargets(drones);
  followTick(); // the view follows a drone when asked (basemap.js)
}

function drawTargets(layer) {
  for (const [nestId, s] of ui.states) {
    if (!s.flight || !s.flight.target || !AIRBORNE.has(s.phase)) continue;
    const [x, y] = project(s.flight.target.lat, s.flight.target.lon);
    const r = ui.unit;
    const g = el("svg:g", { class: "target", transform: `translate(${x},${y})` });
    g.append(el("svg:title", {}, `target of nest ${nestId}`));
    g.append(el("svg:circle", { r }));
    layer.append(g);
  }
}

function drawIncidents() {
  const layer = $("layer-incidents");
  layer.replaceChildren();
  if (ui.replay) return; // the replayed incident is drawn with its flights
  for (const [id, inc] of ui.incidents) {
    const [x, y] = project(inc.lat, inc.lon);
    const s = ui.unit * 1.6;
    const g = el("svg:g", { class: "incident", transform: `translate(${x},${y})` });
    g.append(el("svg:title", {}, `incident ${id}: ${inc.kind} (${inc.state})`));
    g.append(el("svg:polygon", { points: `0,${-s} ${s},${s * 0.8} ${-s},${s * 0.8}` }));
    g.append(el("svg:text", { x: s * 1.2, y: s * 0.5, "font-size": ui.unit * 1.4 }, inc.kind));
    layer.append(g);
  }
}

function addTrackPoint(nestId, position) {
  const track = ui.tracks.get(nestId) || [];
  const p = project(position.lat, position.lon).map((v) => Number(v.toFixed(1)));
  const last = track[track.length - 1];
  if (!last || last[0] !== p[0] || last[1] !== p[1]) track.push(p);
  while (track.length > TRACK_POINTS) track.shift();
  ui.tracks.set(nestId, track);
}

// --- state list and nest choice ---------------------------------------------------------------

function nestName(nestId) {
  const n = ui.config.nests.find((x) => x.id === nestId);
  return n ? n.name : String(nestId);
}

function selectNest(nestId) {
  $("nest-select").value = String(nestId);
  for (const row of document.querySelectorAll("#states tbody tr")) {
    row.classList.toggle("selected", row.dataset.nest === String(nestId));
  }
}

function selectedNest() {
  return Number($("nest-select").value);
}

function buildTable() {
  const body = document.querySelector("#states tbody");
  body.replaceChildren();
  const select = $("nest-select");
  select.replaceChildren();
  for (const n of ui.config.nests) {
    select.append(el("option", { value: n.id }, `${n.id} · ${n.name}`));
    const row = el("tr", { "data-nest": n.id });
    for (const cls of ["id", "name", "phase", "batt", "alt", "link", "control"]) row.append(el("td", { class: cls }));
    row.querySelector(".id").textContent = n.id;
    row.querySelector(".name").textContent = n.name;
    row.addEventListener("click", () => selectNest(n.id));
    body.append(row);
  }
  selectNest(ui.config.nests[0].id);
}

function renderRow(state) {
  const row = document.querySelector(`#states tbody tr[data-nest="${state.nest_id}"]`);
  if (!row) return;
  const phase = row.querySelector(".phase");
  phase.textContent = state.maintenance ? `${state.phase} (maint.)` : state.phase;
  phase.className = `phase ph-${state.phase}`;
  if (state.blockers.length) phase.title = state.blockers.map((b) => b.message).join("\n");
  else phase.removeAttribute("title");
  const t = ui.telemetry.get(state.nest_id);
  row.querySelector(".batt").textContent = fmt(t ? t.battery_pct : state.drone.battery_pct, 0, " %");
  const pos = dronePose(state.nest_id).position;
  row.querySelector(".alt").textContent = AIRBORNE.has(state.phase) && pos ? fmt(pos.alt_m, 0, " m") : "–";
  renderLink(row.querySelector(".link"), state.link);
  row.querySelector(".control").textContent = state.control ? `${state.control.id} (${state.control.role})` : "–";
  row.classList.toggle("airborne", AIRBORNE.has(state.phase));
}

// The MAVLink link's signing: an unsigned nest is shown plainly, a link whose frames stop verifying
// with the reason (issue 13).
function renderLink(cell, link) {
  if (!link) { cell.textContent = "–"; cell.className = "link"; cell.removeAttribute("title"); return; }
  const refused = Object.entries(link.rejected).map(([why, n]) => `${why}: ${n}`).join("\n");
  cell.textContent = link.fault ? "FAULT" : link.signed ? "signed" : "UNSIGNED";
  cell.className = `link ${link.signed && !link.fault ? "signed" : "unsigned"}`;
  cell.title = [link.fault, `policy ${link.policy}`, refused].filter(Boolean).join("\n");
}

// --- live updates -----------------------------------------------------------------------------

function connectUpdates() {
  const proto = window.location.protocol === "https:" ? "wss:" : "ws:";
  // the session cookie goes with the handshake; the server checks it and the Origin
  const ws = new WebSocket(`${proto}//${window.location.host}/api/updates`);
  ui.ws = ws;
  ws.onopen = () => { ui.wsBackoffMs = 500; setLink(true); };
  ws.onmessage = (ev) => onUpdate(JSON.parse(ev.data));
  ws.onclose = () => {
    setLink(false);
    setTimeout(connectUpdates, ui.wsBackoffMs);
    ui.wsBackoffMs = Math.min(ui.wsBackoffMs * 2, 10000);
  };
}

function setLink(up) {
  const badge = $("link");
  badge.textContent = up ? "live" : "offline";
  badge.className = up ? "badge on" : "badge off";
}

function onUpdate(msg) {
  const d = msg.data;
  if (msg.type === "hello") {
    refreshMissions(); // this page now receives progress: the list comes back as one
  } else if (msg.type === "state") {
    ui.states.set(d.nest_id, d);
    if (AIRBORNE.has(d.phase) && d.drone.position) addTrackPoint(d.nest_id, d.drone.position);
    renderRow(d);
    syncVideo(d);
    drawDrones();
  } else if (msg.type === "telemetry") {
    ui.telemetry.set(d.nest_id, d);
    const state = ui.states.get(d.nest_id);
    if (state && AIRBORNE.has(state.phase)) addTrackPoint(d.nest_id, d.position);
    if (state) renderRow(state);
    drawDrones();
  } else if (msg.type === "event") {
    onEvent(d);
  } else if (msg.type === "progress" && onAutomationProgress(d)) {
    // the patrols panel took it
  } else if (msg.type === "progress" && d.state !== "accepted") { // the reply said accepted
    const text = `${d.method}${d.nest_id ? " #" + d.nest_id : ""}: ${d.state}${d.message ? " — " + d.message : ""}`;
    say(d.error ? "refused" : "info", text, d.error ? [d.error.message, ...d.error.reasons] : []);
  }
}

function onEvent(e) {
  if (onAutomationEvent(e)) return; // road stretches, findings, ground units, patrols (automations.js)
  if (e.kind === "incident_progress" && e.data && e.data.incident_id && typeof e.data.lat === "number") {
    ui.incidents.set(e.data.incident_id, { lat: e.data.lat, lon: e.data.lon, kind: e.data.kind || "incident", state: e.data.state });
    drawIncidents();
    incidentsChanged(); // the replay panel's list (replay.js)
  }
  if (e.kind === "launched") ui.tracks.delete(e.nest_id);
  if (e.kind === "command_rejected" && ui.sent.has(e.command_id)) return; // its reply says it
  const important = ["refused", "command_rejected", "fault", "weather_no_go", "link_lost", "geofence", "battery_reserve"];
  const reasons = e.data && Array.isArray(e.data.reasons) ? e.data.reasons : [];
  say(important.includes(e.kind) ? "refused" : "event", `${e.nest_id ? "#" + e.nest_id + " " : ""}${e.message}`, reasons);
}

// --- commands ---------------------------------------------------------------------------------

async function send(method, args = {}, fleet = false, quiet = false) {
  const nestId = selectedNest();
  const path = fleet ? "/api/commands" : `/api/nests/${nestId}/commands`;
  const request = { id: newId(), method, args, issued_at: new Date().toISOString(), ttl_s: 30 };
  ui.sent.add(request.id);
  const where = fleet ? "fleet" : `#${nestId}`;
  let res;
  try {
    res = await fetch(path, { method: "POST", headers: authHeaders({ "Content-Type": "application/json" }), body: JSON.stringify(request) });
  } catch (err) {
    if (!quiet) say("refused", `${method} ${where}: not sent (${err})`);
    return null;
  }
  let reply = null;
  try { reply = await res.json(); } catch { /* not JSON: a proxy or auth error */ }
  if (quiet) return reply; // the caller shows what it needs
  if (reply && reply.ok) {
    say("ok", `${method} ${where}: accepted${reply.result && reply.result.message ? " — " + reply.result.message : ""}`);
  } else if (reply && reply.error) {
    say("refused", `${method} ${where} refused (${reply.error.code}): ${reply.error.message}`, reply.error.reasons || []);
  } else {
    say("refused", `${method} ${where}: HTTP ${res.status}`);
  }
  return reply;
}

function wireButtons() {
  $("btn-launch").addEventListener("click", () => sendToPoint("launch"));
  $("btn-goto").addEventListener("click", () => sendToPoint("goto"));
  $("btn-hold").addEventListener("click", () => send("hold"));
  $("btn-return").addEventListener("click", () => send("return_home"));
  $("btn-take").addEventListener("click", () => send("control.take"));
  $("btn-release").addEventListener("click", () => send("control.release"));
  $("btn-return-all").addEventListener("click", () => send("return_all", { reason: "from the command center" }, true));
  $("btn-say").addEventListener("click", () => {
    const text = $("say-text").value.trim();
    if (!text) { say("refused", "speak: type a text first"); return; }
    send("speaker.say", { text, lang: $("say-lang").value });
  });
  for (const b of document.querySelectorAll("#lights button")) {
    b.addEventListener("click", () => send("light.set", { mode: b.dataset.light }));
  }
  $("nest-select").addEventListener("change", () => selectNest(selectedNest()));
  $("btn-incident").addEventListener("click", reportIncident);
}

// An incident at the picked point, for the dispatcher (as on {root}/incidents); its progress
// comes back as incident_progress events, drawn on the map.
async function reportIncident() {
  if (!ui.pick) { say("refused", "incident: click the map to pick the scene first"); return; }
  const body = {
    kind: $("incident-kind").value,
    priority: Number($("incident-priority").value),
    position: { lat: ui.pick.lat, lon: ui.pick.lon },
    text: $("incident-text").value.trim(),
  };
  let res;
  try {
    res = await fetch("/api/incidents", { method: "POST", headers: authHeaders({ "Content-Type": "application/json" }), body: JSON.stringify(body) });
  } catch (err) {
    say("refused", `incident: not sent (${err})`);
    return;
  }
  let reply = null;
  try { reply = await res.json(); } catch { /* not JSON: an auth error */ }
  if (res.status === 202 && reply) {
    say("ok", `incident ${reply.id} (${body.kind}, P${body.priority}) reported`);
  } else {
    say("refused", `incident refused: HTTP ${res.status}`, (reply && reply.reasons) || []);
  }
}

function sendToPoint(method) {
  if (!ui.pick) { say("refused", `${method}: click the map to pick a point first`); return; }
  const alt = Number($("alt").value);
  send(method, { target: { lat: ui.pick.lat, lon: ui.pick.lon, alt_m: alt } });
}

function markAllowed() {
  const allowed = new Set(ui.me.methods);
  for (const b of document.querySelectorAll("#side button")) {
    const method = b.dataset.method || (b.dataset.light ? "light.set" : null);
    if (!method) continue;
    b.classList.toggle("not-allowed", !allowed.has(method));
    b.title = allowed.has(method) ? "" : `your role (${ui.me.actor.role}) may not call ${method}; the service will refuse it`;
  }
}

// --- video (WHEP) -----------------------------------------------------------------------------

class VideoTile {
  constructor(nestId) {
    this.nestId = nestId;
    this.pc = null;
    this.session = null; // the WHEP session URL (DELETE to leave)
    this.closed = false;
    this.talking = false;
    this.mic = null;
    this.node = el("figure", { class: "tile", "data-nest": nestId });
    this.video = el("video", { autoplay: "", playsinline: "" });
    this.video.muted = true;
    this.caption = el("figcaption");
    this.status = el("span", { class: "status" }, "connecting");
    this.talkButton = el("button", { class: "talk" }, "Talk");
    this.talkButton.addEventListener("click", () => this.toggleTalk());
    this.caption.append(el("b", {}, `#${nestId} ${nestName(nestId)}`), " ", this.status, " ", this.talkButton);
    this.node.append(this.video, this.caption);
    $("videos").append(this.node);
    this.start();
  }

  setStatus(text) { this.status.textContent = text; }

  async start() {
    if (this.closed) return;
    try {
      await this.open();
    } catch (err) {
      this.setStatus(`no video: ${err.message}`);
      await this.leave();
      if (!this.closed) this.retry = setTimeout(() => this.start(), 2000);
    }
  }

  async open() {
    const pc = new RTCPeerConnection({ bundlePolicy: "max-bundle" });
    this.pc = pc;
    const video = pc.addTransceiver("video", { direction: "recvonly" });
    const codecs = RTCRtpReceiver.getCapabilities("video").codecs;
    const h264 = codecs.filter((c) => c.mimeType === "video/H264" && /packetization-mode=1/.test(c.sdpFmtpLine || ""));
    if (h264.length) video.setCodecPreferences(h264);
    if (this.talking && this.mic) {
      pc.addTransceiver(this.mic.getAudioTracks()[0], { direction: "sendrecv" });
    }
    pc.ontrack = (ev) => {
      if (ev.track.kind !== "video") return;
      this.video.srcObject = ev.streams[0] || new MediaStream([ev.track]);
      this.video.play().catch(() => {});
    };
    pc.onconnectionstatechange = () => {
      this.setStatus(pc.connectionState === "connected" ? (this.talking ? "live · talking" : "live") : pc.connectionState);
      if (pc.connectionState === "failed" && !this.closed && this.pc === pc) this.restart();
    };
    await pc.setLocalDescription(await pc.createOffer());
    await iceGathered(pc, 3000);
    const res = await fetch(`/whep/nests/${this.nestId}`, {
      method: "POST",
      headers: authHeaders({ "Content-Type": "application/sdp" }),
      body: pc.localDescription.sdp,
    });
    if (res.status !== 201) throw new Error(`${res.status} ${(await res.text()).slice(0, 200)}`);
    const location = res.headers.get("Location");
    const session = location ? new URL(location, window.location.href).toString() : null;
    if (this.closed || this.pc !== pc) { // closed while the offer was on its way: leave at once
      if (session) fetch(session, { method: "DELETE", headers: authHeaders(), keepalive: true }).catch(() => {});
      return;
    }
    this.session = session;
    await pc.setRemoteDescription({ type: "answer", sdp: await res.text() });
  }

  async restart() {
    await this.leave();
    this.start();
  }

  async leave() {
    const pc = this.pc;
    const session = this.session;
    this.pc = null;
    this.session = null;
    if (pc) pc.close();
    if (session) {
      try { await fetch(session, { method: "DELETE", headers: authHeaders(), keepalive: true }); } catch { /* gone */ }
    }
  }

  async toggleTalk() {
    if (!this.talking) {
      try {
        this.mic = await navigator.mediaDevices.getUserMedia({ audio: true });
      } catch (err) {
        say("refused", `talk #${this.nestId}: no microphone (${err.message})`);
        return;
      }
    } else if (this.mic) {
      for (const t of this.mic.getTracks()) t.stop();
      this.mic = null;
    }
    this.talking = !this.talking;
    this.talkButton.classList.toggle("on", this.talking);
    await this.restart();
  }

  async close() {
    this.closed = true;
    clearTimeout(this.retry);
    if (this.mic) for (const t of this.mic.getTracks()) t.stop();
    await this.leave();
    this.node.remove();
  }
}

function iceGathered(pc, timeoutMs) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => { if (pc.iceGatheringState === "complete") { pc.removeEventListener("icegatheringstatechange", done); resolve(); } };
    pc.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, timeoutMs);
  });
}

function syncVideo(state) {
  if (!ui.config.video) return;
  const tile = ui.videos.get(state.nest_id);
  if (AIRBORNE.has(state.phase) && !tile) {
    ui.videos.set(state.nest_id, new VideoTile(state.nest_id));
  } else if (!AIRBORNE.has(state.phase) && tile) {
    ui.videos.delete(state.nest_id);
    tile.close();
  }
}

window.addEventListener("pagehide", () => { for (const tile of ui.videos.values()) tile.close(); });

// --- start ------------------------------------------------------------------------------------

async function start() {
  try {
    ui.me = await getJson("/api/me"); // signed in already: the session cookie
    ui.config = await getJson("/api/config");
  } catch (err) {
    showLogin("Sign in with your user name and password.");
    return;
  }
  $("login").hidden = true;
  $("main").hidden = false;
  $("logout").hidden = false;
  $("city").textContent = `· ${ui.config.city}`;
  $("who").textContent = `${ui.me.actor.id} (${ui.me.actor.role})`;
  $("alt").value = String(ui.config.default_cruise_alt_m);
  $("alt").max = String(ui.config.altitude_ceiling_m);
  drawMap();
  buildTable();
  wireButtons();
  buildPatrolPanel();
  buildReplayPanel(); // after the incident: replay, evidence (replay.js)
  markAllowed();
  connectUpdates();
}

$("login").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const body = { user: $("login-user").value.trim(), password: $("login-password").value };
  $("login-password").value = "";
  const res = await fetch("/api/login", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  if (!res.ok) { $("login-error").textContent = await res.text(); return; }
  window.location.replace(window.location.pathname); // a fresh page, signed in by its cookie
});

$("logout").addEventListener("click", async () => {
  await fetch("/api/logout", { method: "POST" });
  window.location.replace(window.location.pathname); // a fresh page: the sign-in form
});

start();
