// dronectl command center: after the incident. Replay an incident, a flight or a time range (local
// time, sent with its offset) from the audit store on the map with a timeline (play, pause,
// 1x/4x/16x, scrub): the drones move along their recorded tracks (interpolated between the
// samples), transitions, commands, events and an incident's milestones are listed and lit as time
// passes, a snapshot shows at its moment, the flights' recordings play in sync. And a commander's
// "Export evidence" of an incident: the package `dronectl evidence export` makes, downloaded.
// Data: /api/incidents, /api/incidents/{id}/replay, /api/flights, /api/flights/{id}/replay,
// /api/replay?since=&until=, /recordings/{name}.mp4 (dronectl.transports.web.replay).
"use strict";

const REPLAY_TICK_MS = 100;
const rp = {
  data: null, // the replay (GET /api/incidents/{id}/replay, /api/flights/{id}/replay, /api/replay)
  t: 0, // the replay's clock, Unix seconds
  t0: 0,
  t1: 0,
  playing: false,
  speed: 1,
  timer: null,
  last: 0, // performance.now() at the last tick
  entries: [], // [{at, node}] of the log, in time order
  segment: null, // the recording playing now
  pose: null, // where the drone is drawn: {flightId, nestId, lat, lon, alt_m, heading_deg}
  relist: null,
};

// the time since the incident (a flight's or a range's replay: since its start)
function clockText(at) {
  const origin = !rp.data ? at : rp.data.incident ? rp.data.incident.at_unix_s : rp.t0;
  const since = Math.max(0, at - origin);
  const m = Math.floor(since / 60);
  const s = (since - m * 60).toFixed(1).padStart(4, "0");
  return `${new Date(at * 1000).toLocaleTimeString()} · +${m}:${s}`;
}

async function buildReplayPanel() {
  ui.replayer = rp; // for tests and the curious (app.js, which defines ui, loads after this file)
  $("btn-replay").addEventListener("click", () => { const what = replayChosen(); if (what) startReplay(what); });
  $("replay-kind").addEventListener("change", showReplayKind);
  $("btn-live").addEventListener("click", stopReplay);
  $("btn-evidence").addEventListener("click", () => exportEvidence($("replay-incident").value));
  $("replay-play").addEventListener("click", () => (rp.playing ? pauseReplay() : playReplay()));
  $("replay-speed").addEventListener("change", () => { rp.speed = Number($("replay-speed").value); syncReplayVideo(); });
  $("replay-scrub").addEventListener("input", () => seekReplay(rp.t0 + Number($("replay-scrub").value)));
  $("replay-video").addEventListener("loadedmetadata", syncReplayVideo);
  $("replay-video").addEventListener("error", () => { $("replay-video-status").textContent = "the recording could not be played"; });
  const now = Date.now();
  $("replay-since").value = localInput(new Date(now - 3600 * 1000));
  $("replay-until").value = localInput(new Date(now));
  showReplayKind();
  await loadIncidents();
  await loadFlights();
}

// what the panel will replay: an incident (and its evidence), a flight, or a time range
function showReplayKind() {
  const kind = $("replay-kind").value;
  for (const k of ["incident", "flight", "range"]) $(`replay-pick-${k}`).hidden = k !== kind;
  $("btn-evidence").hidden = kind !== "incident";
  if (kind === "flight") loadFlights();
}

// a datetime-local input's value for a moment, in the browser's local time
function localInput(d) {
  const p = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

// a moment as ISO 8601 in the browser's local time with its offset: 2025-12-13T15:15:00+08:00
function isoWithOffset(d) {
  const off = -d.getTimezoneOffset();
  const p = (n) => String(Math.floor(Math.abs(n))).padStart(2, "0");
  return `${localInput(d)}${off < 0 ? "-" : "+"}${p(off / 60)}:${p(off % 60)}`;
}

// {url, label} of the chosen replay, or null (said why)
function replayChosen() {
  const kind = $("replay-kind").value;
  if (kind === "incident" || kind === "flight") {
    const id = $(`replay-${kind}`).value;
    if (!id) { say("refused", `replay: pick ${kind === "incident" ? "an incident" : "a flight"} first`); return null; }
    return { url: `/api/${kind === "incident" ? "incidents" : "flights"}/${encodeURIComponent(id)}/replay`, label: `${kind} ${id}` };
  }
  // a datetime-local value has no offset: read as local time, as the browser shows it
  const since = new Date($("replay-since").value);
  const until = new Date($("replay-until").value);
  if (!$("replay-since").value || !$("replay-until").value || isNaN(since) || isNaN(until)) {
    say("refused", "replay: pick both ends of the time range first");
    return null;
  }
  const q = new URLSearchParams({ since: isoWithOffset(since), until: isoWithOffset(until) });
  return { url: `/api/replay?${q}`, label: `${since.toLocaleString()} – ${until.toLocaleString()}` };
}

// an incident's progress on the live updates: the list again, once things settle
function incidentsChanged() {
  clearTimeout(rp.relist);
  rp.relist = setTimeout(() => { loadIncidents(); loadFlights(); }, 2000);
}

async function loadIncidents() {
  let body;
  try {
    body = await getJson("/api/incidents");
  } catch (err) { // no audit store here, or the role may not replay
    $("replay").hidden = true;
    return;
  }
  $("replay").hidden = false;
  const select = $("replay-incident");
  const keep = select.value;
  select.replaceChildren();
  for (const i of body.incidents) {
    const when = new Date(i.at_unix_s * 1000).toLocaleString();
    select.append(el("option", { value: i.id }, `${when} · ${i.kind || "incident"} · ${i.state || "?"} · ${i.id}`));
  }
  if (!body.incidents.length) select.append(el("option", { value: "", disabled: "" }, "no incident recorded"));
  if (keep && body.incidents.some((i) => i.id === keep)) select.value = keep;
}

async function loadFlights() {
  let body;
  try {
    body = await getJson("/api/flights?limit=200");
  } catch (err) {
    return; // the incidents' list says whether the panel is there
  }
  const select = $("replay-flight");
  const keep = select.value;
  select.replaceChildren();
  for (const f of body.flights) {
    const when = new Date(f.started_at_unix_s * 1000).toLocaleString();
    const until = f.ended_at_unix_s === null ? "in the air" : new Date(f.ended_at_unix_s * 1000).toLocaleTimeString();
    select.append(el("option", { value: f.id }, `${when} – ${until} · #${f.nest_id} · ${f.outcome || "?"} · ${f.id}`));
  }
  if (!body.flights.length) select.append(el("option", { value: "", disabled: "" }, "no flight recorded"));
  if (keep && body.flights.some((f) => f.id === keep)) select.value = keep;
}

async function startReplay({ url, label }) {
  let data;
  try {
    const res = await fetch(url, { headers: authHeaders() });
    const body = await res.json().catch(() => null);
    if (!res.ok) throw new Error((body && body.message) || `HTTP ${res.status}`);
    data = body;
  } catch (err) {
    say("refused", `replay of ${label}: ${err.message}`);
    return;
  }
  pauseReplay();
  rp.data = data;
  const times = [data.window.since_unix_s, data.window.until_unix_s];
  for (const f of data.flights) for (const p of f.track) times.push(p.at_unix_s);
  rp.t0 = Math.min(...times);
  rp.t1 = Math.max(...times);
  rp.segment = null;
  buildReplayLog(data);
  const scrub = $("replay-scrub");
  scrub.max = String(Math.max(0, rp.t1 - rp.t0).toFixed(1));
  $("replay-player").hidden = false;
  $("btn-live").hidden = false;
  $("replay-notes").textContent = data.notes.join("; ");
  document.body.classList.add("replaying");
  ui.replay = rp;
  seekReplay(rp.t0);
  say("info", `replaying ${label}`);
}

function stopReplay() {
  pauseReplay();
  const video = $("replay-video");
  video.removeAttribute("src");
  video.load();
  rp.segment = null;
  rp.data = null;
  rp.pose = null;
  ui.replay = null;
  $("replay-player").hidden = true;
  $("btn-live").hidden = true;
  $("replay-snapshot").hidden = true;
  document.body.classList.remove("replaying");
  drawDrones(); // the live fleet again
  drawIncidents();
}

function playReplay() {
  if (!rp.data) return;
  if (rp.t >= rp.t1) seekReplay(rp.t0);
  rp.playing = true;
  rp.last = performance.now();
  $("replay-play").textContent = "Pause";
  clearInterval(rp.timer);
  rp.timer = setInterval(tickReplay, REPLAY_TICK_MS);
  syncReplayVideo();
}

function pauseReplay() {
  rp.playing = false;
  clearInterval(rp.timer);
  rp.timer = null;
  $("replay-play").textContent = "Play";
  const video = $("replay-video");
  if (!video.paused) video.pause();
}

// The clock runs on the recording while it plays (the track follows the picture); elsewhere on
// the page's own time, at the chosen speed.
function tickReplay() {
  const now = performance.now();
  const video = $("replay-video");
  const seg = rp.segment;
  if (seg && !video.paused && !video.seeking && video.readyState >= 3) {
    rp.t = seg.started_at_unix_s + video.currentTime;
  } else {
    rp.t += ((now - rp.last) / 1000) * rp.speed;
  }
  rp.last = now;
  if (rp.t >= rp.t1) {
    seekReplay(rp.t1);
    pauseReplay();
    return;
  }
  seekReplay(rp.t);
}

function seekReplay(t) {
  rp.t = Math.min(Math.max(t, rp.t0), rp.t1);
  $("replay-scrub").value = String((rp.t - rp.t0).toFixed(1));
  $("replay-clock").textContent = clockText(rp.t);
  litReplayLog();
  showReplaySnapshot();
  syncReplayVideo();
  drawDrones();
}

// --- the drone on the map -----------------------------------------------------------------------

// Where a flight's drone was at t: linear between the two samples around it; null outside the track.
function replayPose(flight, t) {
  const track = flight.track;
  if (!track.length || t < track[0].at_unix_s || t > track[track.length - 1].at_unix_s) return null;
  let i = 0;
  while (i + 1 < track.length && track[i + 1].at_unix_s < t) i += 1;
  const a = track[i];
  const b = track[Math.min(i + 1, track.length - 1)];
  const span = b.at_unix_s - a.at_unix_s;
  const k = span > 0 ? (t - a.at_unix_s) / span : 0;
  return {
    flightId: flight.flight_id,
    nestId: flight.nest_id,
    lat: a.lat + (b.lat - a.lat) * k,
    lon: a.lon + (b.lon - a.lon) * k,
    alt_m: a.alt_m + (b.alt_m - a.alt_m) * k,
    heading_deg: a.heading_deg,
  };
}

// Called by drawDrones while replaying: the recorded tracks, the part flown by t brighter, the
// drone where it was, the incident's scene.
function drawReplay(drones, tracks) {
  const inc = rp.data.incident; // null: a flight's or a range's replay
  if (inc && inc.position) {
    const [x, y] = project(inc.position.lat, inc.position.lon);
    const s = ui.unit * 1.6;
    const g = el("svg:g", { class: "incident", transform: `translate(${x},${y})` });
    g.append(el("svg:title", {}, `incident ${inc.id}: ${inc.kind || ""}`));
    g.append(el("svg:polygon", { points: `0,${-s} ${s},${s * 0.8} ${-s},${s * 0.8}` }));
    tracks.append(g);
  }
  rp.pose = null;
  for (const f of rp.data.flights) {
    const line = (pts) => pts.map((p) => project(p.lat, p.lon).map((v) => v.toFixed(1)).join(",")).join(" ");
    if (f.track.length > 1) tracks.append(el("svg:polyline", { class: "track replay-planned", points: line(f.track) }));
    const flown = f.track.filter((p) => p.at_unix_s <= rp.t);
    const pose = replayPose(f, rp.t);
    if (pose) flown.push({ lat: pose.lat, lon: pose.lon });
    if (flown.length > 1) tracks.append(el("svg:polyline", { class: "track replay-flown", points: line(flown) }));
    if (!pose) continue;
    rp.pose = pose;
    const [x, y] = project(pose.lat, pose.lon);
    const s = ui.unit * 1.8;
    const g = el("svg:g", { class: "drone replay", "data-nest": f.nest_id, "data-flight": f.flight_id, transform: `translate(${x.toFixed(2)},${y.toFixed(2)})` });
    g.append(el("svg:title", {}, `drone of nest ${f.nest_id} (flight ${f.flight_id}) at ${clockText(rp.t)}: ${fmt(pose.alt_m, 0, " m")}`));
    const arrow = el("svg:polygon", { points: `0,${-s} ${s * 0.7},${s * 0.8} 0,${s * 0.35} ${-s * 0.7},${s * 0.8}` });
    if (pose.heading_deg !== null) arrow.setAttribute("transform", `rotate(${pose.heading_deg.toFixed(0)})`);
    g.append(arrow);
    g.append(el("svg:text", { x: s * 1.1, y: -s * 0.6, "font-size": ui.unit * 1.5 }, `${f.nest_id} · ${fmt(pose.alt_m, 0, " m")}`));
    drones.append(g);
  }
}

// --- the timeline ---------------------------------------------------------------------------------

function buildReplayLog(data) {
  const items = [];
  const add = (at, cls, text) => items.push({ at, cls, text });
  for (const m of data.milestones) {
    const target = m.target_s === null ? "" : ` (target ${Math.round(m.target_s)} s: ${m.met ? "met" : "LATE"})`;
    add(m.at_unix_s, `milestone${m.met === false ? " late" : ""}`, `milestone ${m.milestone} after ${m.elapsed_s.toFixed(1)} s${target}`);
  }
  for (const c of data.commands) {
    const where = c.nest_id ? ` #${c.nest_id}` : "";
    add(c.at_unix_s, "command", `${c.method}${where} by ${c.actor.id} (${c.actor.role || "no role"})`);
    for (const o of c.outcomes) {
      add(o.at_unix_s, `outcome ${o.outcome}`, `${c.method}${where}: ${o.outcome}${o.message ? " — " + o.message : ""}`);
    }
  }
  for (const t of data.transitions) add(t.at_unix_s, "transition", `#${t.nest_id} ${t.from} → ${t.to} (${t.cause})`);
  for (const e of data.events) add(e.at_unix_s, `event ${e.kind.replace(/[^a-z0-9_-]/gi, "_")}`, `#${e.nest_id} ${e.message}`);
  items.sort((a, b) => a.at - b.at);
  const log = $("replay-log");
  log.replaceChildren();
  rp.entries = items.map((item) => {
    const node = el("li", { class: item.cls, "data-at": item.at });
    node.append(el("time", {}, clockText(item.at)), " ", el("span", {}, item.text));
    node.addEventListener("click", () => seekReplay(item.at));
    log.append(node);
    return { at: item.at, node };
  });
}

function litReplayLog() {
  let current = null;
  for (const e of rp.entries) {
    const past = e.at <= rp.t;
    e.node.classList.toggle("past", past);
    e.node.classList.remove("current");
    if (past) current = e;
  }
  if (current) {
    current.node.classList.add("current");
    const log = $("replay-log");
    const top = current.node.offsetTop - log.offsetTop;
    if (top < log.scrollTop || top > log.scrollTop + log.clientHeight - 20) log.scrollTop = Math.max(0, top - 40);
  }
}

function showReplaySnapshot() {
  const img = $("replay-snapshot");
  const shown = rp.data.snapshots.filter((s) => s.url && s.at_unix_s <= rp.t).pop();
  if (!shown) { img.hidden = true; img.removeAttribute("data-id"); return; }
  if (img.dataset.id !== shown.id) {
    img.dataset.id = shown.id;
    img.src = shown.url; // same origin: the session cookie goes with it
    img.alt = `snapshot ${shown.id}`;
    img.title = `${clockText(shown.at_unix_s)}: ${shown.message}`;
  }
  img.hidden = false;
}

// The recording that covers t plays from the right second (its second 0: its video_recording
// event); seeks only when it has drifted, so a playing video is left alone.
function syncReplayVideo() {
  if (!rp.data) return;
  const video = $("replay-video");
  const status = $("replay-video-status");
  const seg = rp.data.videos.filter((v) => v.url && v.started_at_unix_s <= rp.t).pop() || null;
  if (!seg) {
    rp.segment = null;
    if (!video.paused) video.pause();
    status.textContent = rp.data.videos.some((v) => v.url) ? "no recording at this moment" : "no recording of what is replayed";
    return;
  }
  const src = seg.url; // same origin: the session cookie goes with it
  if (rp.segment !== seg || video.getAttribute("src") !== src) {
    rp.segment = seg;
    video.src = src;
  }
  const offset = rp.t - seg.started_at_unix_s;
  if (video.readyState >= 1 && Number.isFinite(video.duration) && offset > video.duration) {
    if (!video.paused) video.pause();
    status.textContent = `the recording of flight ${seg.flight_id} ended`;
    return;
  }
  status.textContent = `flight ${seg.flight_id} (#${seg.nest_id}) at ${offset.toFixed(1)} s of its recording`;
  video.playbackRate = rp.speed;
  const drift = Math.abs(video.currentTime - offset);
  if (!rp.playing ? drift > 0.05 : drift > Math.max(1, rp.speed * 0.5)) video.currentTime = offset;
  if (rp.playing && video.paused) video.play().catch(() => {});
  if (!rp.playing && !video.paused) video.pause();
}

// --- the evidence package -------------------------------------------------------------------------

async function exportEvidence(id) {
  if (!id) { say("refused", "evidence: pick an incident first"); return; }
  say("info", `evidence of ${id}: packaging…`);
  let res;
  try {
    res = await fetch(`/api/incidents/${encodeURIComponent(id)}/evidence`, { method: "POST", headers: authHeaders() });
  } catch (err) {
    say("refused", `evidence of ${id}: not sent (${err})`);
    return;
  }
  if (!res.ok) {
    say("refused", `evidence of ${id} refused: HTTP ${res.status} ${(await res.text()).slice(0, 300)}`);
    return;
  }
  const blob = await res.blob();
  const name = (/filename="([^"]+)"/.exec(res.headers.get("Content-Disposition") || "") || [])[1] || `evidence-${id}.zip`;
  const url = URL.createObjectURL(blob);
  const a = el("a", { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
  say("ok", `evidence of ${id}: ${name} (${Math.round(blob.size / 1024)} KiB, manifest sha256 ${(res.headers.get("X-Manifest-SHA256") || "").slice(0, 12)}…)`);
}
