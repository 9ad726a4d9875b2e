"""Glass-to-glass video latency measured in Chromium: camera capture -> frame shown in the browser.

    python bench/video_glass_to_glass.py [--duration 30] [--size 1280x720] [--fps 30] [--check]

Set-up (``bench/video_rig.py``): the simulator with one nest, rendering and encoding live
(libx264), its camera stamping every frame with the wall-clock time it rendered it, as a pixel
code along the top edge (``adapters/camera_timecode.py``); the service in this process; and
Debian's ``/usr/bin/chromium`` (headless, driven by Playwright, never a downloaded browser) on a
bench page served by the service. The page opens a WHEP session as the command-center page does
and, for every frame the browser composites (``requestVideoFrameCallback``), draws the frame's
top strip into a canvas, reads the time code back in JS (sync pattern, CRC-8) and keeps:

- glass to glass (the main figure): capture to the frame on screen, taken as the latest of the
  times the browser gives for it: ``expectedDisplayTime``, ``presentationTime`` and the callback's
  own time (headless Chromium paces them by a 60 Hz begin-frame clock, and they do not always
  come in that order: the latest is the conservative choice);
- ``presentationTime`` - capture: the frame handed to the compositor;
- ``receiveTime`` - capture: its last packet received (camera + network + service);
- Chromium's own jitter-buffer delay and decode time per frame (``getStats``).

Everything runs on this machine, so the browser's clock (``performance.timeOrigin + t``) and the
simulator's (``time.time``) are the same clock; the page also reports how far
``performance.timeOrigin + performance.now()`` is from ``Date.now()`` (the check). Frames whose code
cannot be read (torn, scaled) are counted, never guessed. Measured for ``--duration`` seconds
after a warm-up; prints readable lines, then one JSON line. ``--check``: exit 1 if p95 >= 150 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
from aiohttp import web  # noqa: E402

from bench import video_rig as vr  # noqa: E402
from dronectl.logging import configure_logging  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
TARGET_P95_MS = 150.0
WARM_UP_S = 5.0
PAGE = "/bench/glass-to-glass"

# The bench page: a WHEP viewer, and the time code read back from every composited frame.
HTML = """<!doctype html>
<html><head><meta charset="utf-8"><title>glass to glass</title></head>
<body style="margin:0;background:#000">
<video id="video" autoplay muted playsinline></video>
<canvas id="strip" style="display:none"></canvas>
<script>
"use strict";
const BLOCKS_PER_WIDTH = 80, SYNC = [1, 0, 1, 0], TIME_BITS = 64, CRC_BITS = 8;
const CODE_BLOCKS = SYNC.length + TIME_BITS + CRC_BITS, WHITE_ABOVE = 170, BLACK_BELOW = 85;
const video = document.getElementById("video");
const canvas = document.getElementById("strip");
const bench = window.bench = { samples: [], unreadable: 0, composited: 0, measuring: false, error: null,
                               clockSkewMs: [], session: null, pc: null };

function crc8(bytes) {
  let crc = 0;
  for (const b of bytes) {
    crc ^= b;
    for (let i = 0; i < 8; i++) crc = crc & 0x80 ? ((crc << 1) ^ 0x07) & 0xff : (crc << 1) & 0xff;
  }
  return crc;
}

// the capture time (ms since the epoch, fractional) drawn in the strip, or null
function readCode(pixels, width, block) {
  const lo = Math.floor(block / 4), hi = block - Math.floor(block / 4);
  const bits = [];
  for (let b = 0; b < CODE_BLOCKS; b++) {
    let sum = 0, n = 0;
    for (let y = lo; y < hi; y++) {
      for (let x = b * block + lo; x < b * block + hi; x++) {
        const i = (y * width + x) * 4;
        sum += pixels[i] + pixels[i + 1] + pixels[i + 2];
        n += 3;
      }
    }
    const level = sum / n;
    if (level > BLACK_BELOW && level < WHITE_ABOVE) return null;
    bits.push(level >= WHITE_ABOVE ? 1n : 0n);
  }
  for (let i = 0; i < SYNC.length; i++) if (Number(bits[i]) !== SYNC[i]) return null;
  let value = 0n;
  for (const bit of bits.slice(SYNC.length)) value = (value << 1n) | bit;
  const timeUs = value >> BigInt(CRC_BITS), check = Number(value & 0xffn);
  const bytes = [];
  for (let i = 7; i >= 0; i--) bytes.push(Number((timeUs >> BigInt(8 * i)) & 0xffn));
  if (crc8(bytes) !== check) return null;
  return Number(timeUs) / 1000;
}

function onFrame(now, meta) {
  video.requestVideoFrameCallback(onFrame);
  bench.composited++;
  if (!bench.measuring) return;
  const width = meta.width, block = Math.floor(width / BLOCKS_PER_WIDTH);
  if (canvas.width !== width || canvas.height !== block) { canvas.width = width; canvas.height = block; }
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(video, 0, 0, width, block, 0, 0, width, block);
  const capturedMs = readCode(ctx.getImageData(0, 0, width, block).data, width, block);
  if (capturedMs === null) { bench.unreadable++; return; }
  const origin = performance.timeOrigin;
  bench.samples.push({
    display: origin + meta.expectedDisplayTime - capturedMs,
    presented: origin + meta.presentationTime - capturedMs,
    callback: origin + now - capturedMs,
    received: meta.receiveTime !== undefined ? origin + meta.receiveTime - capturedMs : null,
    width, height: meta.height,
  });
  if (bench.samples.length % 30 === 0) bench.clockSkewMs.push(origin + performance.now() - Date.now());
}

async function iceGathered(pc, timeoutMs) {
  if (pc.iceGatheringState === "complete") return;
  await new Promise((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") { clearTimeout(timer); resolve(); }
    });
  });
}

bench.start = async (nest) => {
  const pc = bench.pc = new RTCPeerConnection({ bundlePolicy: "max-bundle" });
  const transceiver = pc.addTransceiver("video", { direction: "recvonly" });
  const h264 = RTCRtpReceiver.getCapabilities("video").codecs
    .filter((c) => c.mimeType === "video/H264" && /packetization-mode=1/.test(c.sdpFmtpLine || ""));
  if (h264.length) transceiver.setCodecPreferences(h264);
  pc.ontrack = (ev) => { video.srcObject = new MediaStream([ev.track]); video.play().catch(() => {}); };
  await pc.setLocalDescription(await pc.createOffer());
  await iceGathered(pc, 3000);
  const res = await fetch(`/whep/nests/${nest}`, {
    method: "POST", headers: { "Content-Type": "application/sdp" }, body: pc.localDescription.sdp });
  if (res.status !== 201) throw new Error(`WHEP ${res.status}: ${await res.text()}`);
  bench.session = res.headers.get("Location");
  await pc.setRemoteDescription({ type: "answer", sdp: await res.text() });
  video.requestVideoFrameCallback(onFrame);
};

bench.stats = async () => {
  const out = {};
  (await bench.pc.getStats()).forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "video") Object.assign(out, {
      framesDecoded: s.framesDecoded, framesDropped: s.framesDropped, framesReceived: s.framesReceived,
      jitterBufferDelay: s.jitterBufferDelay, jitterBufferEmittedCount: s.jitterBufferEmittedCount,
      totalDecodeTime: s.totalDecodeTime, packetsLost: s.packetsLost,
      decoderImplementation: s.decoderImplementation, codecId: s.codecId,
    });
    if (s.type === "codec") out["codec:" + s.id] = s.mimeType;
  });
  out.codec = out["codec:" + out.codecId] || null;
  return out;
};

bench.stop = async () => {
  if (bench.session) await fetch(bench.session, { method: "DELETE" });
  if (bench.pc) bench.pc.close();
};
</script></body></html>
"""


def add_page(app: web.Application) -> None:
    async def page(request: web.Request) -> web.Response:
        return web.Response(text=HTML, content_type="text/html")

    app.router.add_get(PAGE, page)


def _browser_processes(me: psutil.Process) -> list[psutil.Process]:
    return [p for p in me.children(recursive=True) if "chrom" in p.name().lower()]


def _summary(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50_ms": None, "p95_ms": None, "max_ms": None, "mean_ms": None}
    return {
        "p50_ms": round(vr.pct(values, 0.5), 1),
        "p95_ms": round(vr.pct(values, 0.95), 1),
        "max_ms": round(max(values), 1),
        "mean_ms": round(statistics.mean(values), 1),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    if not CHROMIUM.exists():  # noqa: ASYNC240 - once, before anything runs
        raise vr.BenchError(f"{CHROMIUM} is missing (Debian's chromium: scripts/system-deps.sh)")
    sim_args = ["--camera-size", args.size, "--camera-fps", str(args.fps)]
    async with vr.video_rig(1, speed=args.speed, sim_args=sim_args, routes=add_page) as rig:
        nest = rig.nest_ids[0]
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path=str(CHROMIUM),
                args=["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                      "--disable-background-networking", "--disable-component-update", "--disable-sync",
                      "--autoplay-policy=no-user-gesture-required"],
            )  # fmt: skip
            try:
                page = await browser.new_page(viewport={"width": 1400, "height": 800})
                await page.goto(f"{rig.base_url}{PAGE}")
                await page.evaluate("(nest) => window.bench.start(nest)", nest)
                async with asyncio.timeout(60):
                    while await page.evaluate("() => window.bench.composited") < 30:  # noqa: ASYNC110
                        await asyncio.sleep(0.2)
                await asyncio.sleep(WARM_UP_S)  # the jitter buffer settles
                stats0 = await page.evaluate("() => window.bench.stats()")
                chrome = _browser_processes(rig.service)
                cpu0 = {
                    "service": vr.cpu_s(rig.service),
                    "simulator": vr.cpu_s(rig.sim),
                    "chromium": sum(vr.cpu_s(p) for p in chrome),
                }
                t0 = time.monotonic()
                await page.evaluate("() => { window.bench.measuring = true; }")
                await asyncio.sleep(args.duration)  # the measuring window
                await page.evaluate("() => { window.bench.measuring = false; }")
                elapsed = time.monotonic() - t0
                cpu = {
                    "service": vr.cpu_s(rig.service),
                    "simulator": vr.cpu_s(rig.sim),
                    "chromium": sum(vr.cpu_s(p) for p in chrome),
                }
                stats1 = await page.evaluate("() => window.bench.stats()")
                data = await page.evaluate(
                    "() => ({samples: window.bench.samples, unreadable: window.bench.unreadable,"
                    " skew: window.bench.clockSkewMs})"
                )
                await page.evaluate("() => window.bench.stop()")
            finally:
                await browser.close()
        await vr.wait_ingests_stopped(rig, [nest])
    samples = data["samples"]
    if args.samples:
        Path(args.samples).write_text(json.dumps(samples), encoding="utf-8")  # noqa: ASYNC240 - at the end
    decoded = stats1["framesDecoded"] - stats0["framesDecoded"]
    emitted = stats1["jitterBufferEmittedCount"] - stats0["jitterBufferEmittedCount"]
    sizes = sorted({f"{s['width']}x{s['height']}" for s in samples})
    return {
        "size": args.size,
        "fps": args.fps,
        "frames_read": len(samples),
        "frames_unreadable": data["unreadable"],
        "frame_sizes": sizes,
        "fps_decoded": round(decoded / elapsed, 1),
        "frames_dropped": stats1["framesDropped"] - stats0["framesDropped"],
        "packets_lost": stats1["packetsLost"] - stats0["packetsLost"],
        "codec": stats1["codec"],
        "decoder": stats1.get("decoderImplementation"),
        "glass_to_glass": _summary([max(s["display"], s["presented"], s["callback"]) for s in samples]),
        "to_expected_display": _summary([s["display"] for s in samples]),
        "to_compositor": _summary([s["presented"] for s in samples]),
        "to_received": _summary([s["received"] for s in samples if s["received"] is not None]),
        "jitter_buffer_ms_mean": round(
            1000 * (stats1["jitterBufferDelay"] - stats0["jitterBufferDelay"]) / max(emitted, 1), 1
        ),
        "decode_ms_mean": round(
            1000 * (stats1["totalDecodeTime"] - stats0["totalDecodeTime"]) / max(decoded, 1), 1
        ),
        "clock_skew_ms_max": round(max((abs(x) for x in data["skew"]), default=0.0), 2),
        "cpu_pct": {k: round(100 * (cpu[k] - cpu0[k]) / elapsed, 1) for k in cpu},
        "load_avg_1m": round(psutil.getloadavg()[0], 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=30.0, help="seconds measured")
    parser.add_argument("--size", default="1280x720", help="the camera's WIDTHxHEIGHT")
    parser.add_argument("--fps", type=int, default=30, help="the camera's frame rate")
    parser.add_argument("--speed", type=float, default=1.0, help="simulation speed (video is real time)")
    parser.add_argument("--samples", help="write every frame's figures (ms) to this JSON file")
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    configure_logging("WARNING")
    try:
        r = asyncio.run(run(args))
    except vr.BenchError as exc:
        sys.stderr.write(f"video_glass_to_glass: {exc}\n")
        return 2
    g, c, rx = r["glass_to_glass"], r["to_compositor"], r["to_received"]
    sys.stdout.write(
        f"{args.size} at {args.fps} fps, decoded in Chromium ({r['codec']}, {r['decoder']}): "
        f"{r['frames_read']} frames read ({r['frames_unreadable']} unreadable), "
        f"{r['fps_decoded']} fps decoded, {r['frames_dropped']} dropped\n"
        f"glass to glass (capture -> on screen): p50 {g['p50_ms']} ms, p95 {g['p95_ms']} ms, "
        f"max {g['max_ms']} ms\n"
        f"  capture -> compositor p50 {c['p50_ms']} ms, p95 {c['p95_ms']} ms; capture -> received p50 "
        f"{rx['p50_ms']} ms, p95 {rx['p95_ms']} ms; jitter buffer {r['jitter_buffer_ms_mean']} ms, "
        f"decode {r['decode_ms_mean']} ms (means)\n"
        f"CPU (% of one core): service {r['cpu_pct']['service']}, simulator {r['cpu_pct']['simulator']}, "
        f"Chromium {r['cpu_pct']['chromium']}; load average {r['load_avg_1m']}; clock check "
        f"{r['clock_skew_ms_max']} ms\n"
    )
    sys.stdout.write(json.dumps(r) + "\n")
    if args.check:
        p95 = g["p95_ms"]
        return 1 if p95 is None or p95 >= TARGET_P95_MS else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
