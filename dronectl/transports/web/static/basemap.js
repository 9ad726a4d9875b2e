// dronectl command center: the base map under the fleet map, and the map's controls.
// Loaded before app.js, whose helpers (ui, $, el, project, unproject, setView, say) these use.
//
// The fleet's layers (nests, drones, tracks, airspace, incidents, stretches, findings, coverage,
// the picked point, a replay) stay the SVG drawn by app.js, laid over a MapLibre GL map that
// follows the SVG's view: both use the same projection (Web Mercator, app.js project()), so a
// point of the SVG is over the same place of the tiles at every zoom. MapLibre (vendored, see
// static/vendor/maplibre-gl/VERSIONS) is imported only when a base map is configured; with
// basemap kind none the page is what it was, the city's outline on a dark ground.
"use strict";

const EARTH_R = 6378137; // Web Mercator sphere, metres
const MAPLIBRE_MODULE = "/static/vendor/maplibre-gl/maplibre-gl.mjs";

const basemap = {
  map: null, // the MapLibre map, once started
  ready: false, // its style loaded
  error: null, // why there is no base map (no WebGL, a module that did not load)
  following: null, // nest id whose drone the view follows
};
window.basemap = basemap; // for tests

// The style of a base map: the tiles as they come (raster), or every layer of a vector tile set
// drawn plainly (areas, lines, points; no labels: no fonts are served).
function basemapStyle(b) {
  // absolute for the worker (new URL() would escape the template's braces)
  const tiles = [b.tiles.startsWith("/") ? window.location.origin + b.tiles : b.tiles];
  const source = { type: b.type, tiles, minzoom: b.min_zoom, maxzoom: b.max_zoom, attribution: b.attribution || undefined };
  if (b.type === "raster") source.tileSize = b.tile_size;
  if (b.bounds) source.bounds = b.bounds;
  const layers = [{ id: "ground", type: "background", paint: { "background-color": "#0c1016" } }];
  if (b.type === "raster") {
    layers.push({ id: "base", type: "raster", source: "base" });
  } else {
    for (const id of b.vector_layers || []) {
      layers.push({ id: `${id}-fill`, type: "fill", source: "base", "source-layer": id, filter: ["==", ["geometry-type"], "Polygon"], paint: { "fill-color": "#1b2430" } });
      layers.push({ id: `${id}-line`, type: "line", source: "base", "source-layer": id, filter: ["==", ["geometry-type"], "LineString"], paint: { "line-color": "#3d4b5c", "line-width": 1.2 } });
      layers.push({ id: `${id}-point`, type: "circle", source: "base", "source-layer": id, filter: ["==", ["geometry-type"], "Point"], paint: { "circle-color": "#3d4b5c", "circle-radius": 2 } });
    }
  }
  return { version: 8, sources: { base: source }, layers };
}

async function startBasemap() {
  const b = ui.config.basemap;
  if (!b || b.kind === "none") return;
  let maplibregl;
  try {
    maplibregl = await import(MAPLIBRE_MODULE);
  } catch (err) {
    basemap.error = `map library not loaded: ${err.message}`;
    say("refused", `base map: ${basemap.error}`);
    return;
  }
  const container = $("basemap");
  container.hidden = false;
  try {
    basemap.map = new maplibregl.Map({
      container,
      style: basemapStyle(b),
      interactive: false, // the SVG above takes the pointer; the map follows its view
      attributionControl: { compact: false },
      fadeDuration: 0,
      renderWorldCopies: false,
      canvasContextAttributes: { preserveDrawingBuffer: true }, // the page's picture (tests, screenshots)
    });
  } catch (err) {
    container.hidden = true;
    basemap.error = `no WebGL: ${err.message}`;
    say("refused", `base map: ${basemap.error}`);
    return;
  }
  basemap.map.addControl(new maplibregl.ScaleControl({ unit: "metric", maxWidth: 120 }), "bottom-left");
  basemap.map.on("load", () => { basemap.ready = true; });
  basemap.map.on("error", (ev) => { basemap.lastError = ev.error ? String(ev.error.message || ev.error) : "error"; });
  document.body.classList.add("with-basemap");
  syncBasemap();
}

// Move the map's camera to the SVG's view: the same centre, and the zoom at which one SVG unit
// (a Web Mercator metre scaled by cos(lat0), see project()) has the SVG's size on screen.
function syncBasemap() {
  if (!basemap.map || !ui.view) return;
  const ctm = $("map").getScreenCTM();
  if (!ctm || !(ctm.a > 0)) return;
  const v = ui.view;
  const centre = unproject(v.x + v.w / 2, v.y + v.h / 2);
  const worldUnits = 2 * Math.PI * EARTH_R * ui.origin.kx; // the world's width in SVG units
  const zoom = Math.log2((ctm.a * worldUnits) / 512); // MapLibre: the world is 512 * 2^zoom pixels
  basemap.map.resize();
  basemap.map.jumpTo({ center: [centre.lon, centre.lat], zoom });
}

// --- the map's controls: coordinates under the cursor, search, follow a drone ------------------

function wireMapControls() {
  const svg = $("map");
  const cursor = $("map-cursor");
  svg.addEventListener("pointermove", (ev) => {
    const p = svgPoint(ev);
    if (!p) return;
    const { lat, lon } = unproject(p.x, p.y);
    cursor.textContent = `${lat.toFixed(5)}, ${lon.toFixed(5)}`;
  });
  svg.addEventListener("pointerleave", () => { cursor.textContent = ""; });
  const list = $("map-search-names");
  for (const n of ui.config.nests) list.append(el("option", { value: `nest ${n.id} ${n.name}` }));
  for (const s of ui.config.stretches || []) list.append(el("option", { value: s.name }));
  $("map-search").addEventListener("keydown", (ev) => {
    if (ev.key !== "Enter") return;
    ev.preventDefault();
    searchMap(ev.target.value.trim());
  });
  $("map-follow").addEventListener("click", () => followDrone(basemap.following === null ? selectedNest() : null));
}

// Centre the view on a place, keeping the zoom, or at the width given (metres).
function centreOn(lat, lon, width = null) {
  const [x, y] = project(lat, lon);
  const w = width === null ? ui.view.w : width;
  const h = (ui.view.h * w) / ui.view.w;
  setView({ x: x - w / 2, y: y - h / 2, w, h });
}

// A nest (its number or name), a road stretch of the config, or a named feature of vector tiles.
function searchMap(text) {
  if (!text) return;
  const q = text.toLowerCase();
  const byId = /^(?:nest\s*)?#?(\d+)\b/.exec(q);
  const nest = ui.config.nests.find((n) => (byId && n.id === Number(byId[1])) || n.name.toLowerCase().includes(q) || q.includes(n.name.toLowerCase()));
  if (nest) { centreOn(nest.lat, nest.lon, 3000); selectNest(nest.id); return; }
  const stretch = (ui.config.stretches || []).find((s) => s.name.toLowerCase().includes(q));
  if (stretch) {
    const mid = stretch.points[Math.floor(stretch.points.length / 2)];
    centreOn(mid[0], mid[1], 4000);
    return;
  }
  const feature = namedFeature(q);
  if (feature) { centreOn(feature.lat, feature.lon, 1500); return; }
  say("refused", `search: nothing called “${text}” (nests, road stretches${basemap.map ? ", names in the base map's tiles" : ""})`);
}

// A street or place by name in the vector tiles loaded now (raster tiles carry no names).
function namedFeature(q) {
  const b = ui.config.basemap;
  if (!basemap.map || !b || b.type !== "vector") return null;
  for (const layer of b.vector_layers || []) {
    for (const f of basemap.map.querySourceFeatures("base", { sourceLayer: layer })) {
      const name = f.properties && (f.properties.name || f.properties["name:zh"] || f.properties["name:en"]);
      if (!name || !String(name).toLowerCase().includes(q)) continue;
      const g = f.geometry;
      const c = g.type === "Point" ? g.coordinates : g.type === "LineString" ? g.coordinates[Math.floor(g.coordinates.length / 2)] : g.type === "Polygon" ? g.coordinates[0][0] : null;
      if (c) return { lat: c[1], lon: c[0] };
    }
  }
  return null;
}

function followDrone(nestId) {
  basemap.following = nestId;
  const button = $("map-follow");
  button.setAttribute("aria-pressed", nestId === null ? "false" : "true");
  button.textContent = nestId === null ? "Follow" : `Following #${nestId}`;
  followTick();
}

// Called after the drones are drawn: keep the followed drone in the middle of the view.
function followTick() {
  if (basemap.following === null || !ui.view) return;
  const state = ui.states.get(basemap.following);
  if (!state || !AIRBORNE.has(state.phase)) return;
  const { position } = dronePose(basemap.following);
  if (!position) return;
  const [x, y] = project(position.lat, position.lon);
  const v = ui.view;
  if (Math.abs(x - (v.x + v.w / 2)) < v.w * 0.01 && Math.abs(y - (v.y + v.h / 2)) < v.h * 0.01) return;
  centreOn(position.lat, position.lon);
}
