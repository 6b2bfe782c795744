// Browser benchmark of the dashboard against the real stack (Debian's Chromium, playwright-core):
//
// 1. the fleet page with 1,000 simulated servers, each updating once a second;
// 2. a server page holding one hour of per-second points in every live chart (the hour is
//    pushed in through the page's debug hook, then the live stream carries on), all charts on
//    screen.
//
// For each it prints the main-thread time of one update (the redraw of what changed in a frame:
// `flick:update`, p50/p99/max), the time spent handling live frames, long tasks (> 50 ms), and
// the JavaScript heap after a forced GC every minute, so growth shows.
//
// The fleet page streams on its one fleet subscription (no subscription per server); the server
// page opens with the gateway's replay of its window.
//
//   npm run bench                 FLICK_BENCH_SECS (per phase, default 600), FLICK_BENCH_SERVERS (1000)
//   npm run bench -- --release    the binaries of `cargo build --release --bins` (target/release),
//                                 as BENCHMARKS.md measures; or any directory in FLICK_BIN_DIR

import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { sleep, Stack, targetDir, waitFor, webRoot } from './stack.mjs';

if (process.argv.includes('--release')) process.env.FLICK_BIN_DIR ??= path.join(targetDir, 'release');

const SECS = Number(process.env.FLICK_BENCH_SECS ?? 600);
const SERVERS = Number(process.env.FLICK_BENCH_SERVERS ?? 1000);
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const HEAP_EVERY_SECS = Math.min(60, Math.max(10, Math.floor(SECS / 10)));

if (!existsSync(path.join(webRoot, 'dist', 'index.html'))) {
  console.error('dist/ is missing: run `npm run build` first');
  process.exit(2);
}

const pct = (sorted, p) => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]);
const ms = (v) => (Number.isFinite(v) ? `${v.toFixed(2)} ms` : 'n/a');
const mib = (bytes) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

async function heap(cdp, collect) {
  if (collect) await cdp.send('HeapProfiler.collectGarbage');
  const { usedSize } = await cdp.send('Runtime.getHeapUsage');
  return usedSize;
}

/**
 * Samples the page's sockets received: full ones (`resource_metrics`) and fleet headlines, and
 * the headlines not newer than the one before of their server (the gateway should send none).
 */
const received = { samples: 0, headlines: 0, repeated: 0 };
const newestHeadline = new Map();

function countFrames(ws) {
  ws.on('framereceived', ({ payload }) => {
    if (typeof payload !== 'string') return;
    if (payload.includes('"resource_metrics"')) {
      received.samples += 1;
    } else if (payload.includes('"fleet.metrics"')) {
      for (const { serverId, timestamp } of JSON.parse(payload).data.samples) {
        received.headlines += 1;
        const t = Date.parse(timestamp);
        if (t <= (newestHeadline.get(serverId) ?? -Infinity)) received.repeated += 1;
        else newestHeadline.set(serverId, t);
      }
    }
  });
}

/** The gateway's live counters (Prometheus text, on its operations listener). */
async function gatewayCounters(url) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const value = (name) => {
    const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text);
    return m ? Number(m[1]) : 0;
  };
  return { sent: value('flick_gateway_ws_samples_total'), skipped: value('flick_gateway_ws_samples_skipped_total') };
}

/** Runs `SECS` seconds of the current page and reports. */
async function measure(page, cdp, label, url) {
  const before = await gatewayCounters(url);
  const receivedBefore = { ...received };
  await page.evaluate(() => {
    window.flickPerf.updates.length = 0;
    window.flickPerf.rendered.length = 0;
    window.flickPerf.frames.length = 0;
    window.flickPerf.frameCount = 0;
    window.flickPerf.frameMs = 0;
    window.__longtasks.length = 0;
    window.flickPerf.slowest = {};
    window.__reference.length = 0;
  });
  const heaps = [];
  const started = Date.now();
  heaps.push([0, await heap(cdp, true)]);
  let nextHeap = HEAP_EVERY_SECS;
  while ((Date.now() - started) / 1000 < SECS) {
    await sleep(1_000);
    const t = (Date.now() - started) / 1000;
    if (t >= nextHeap) {
      heaps.push([Math.round(t), await heap(cdp, true)]);
      nextHeap += HEAP_EVERY_SECS;
      console.log(`  ${label}: ${Math.round(t)} s of ${SECS} s, heap after GC ${mib(heaps.at(-1)[1])}`);
    }
  }
  const elapsed = (Date.now() - started) / 1000;
  const after = await gatewayCounters(url);
  const receivedAfter = { ...received };
  const result = await page.evaluate(() => ({
    updates: [...window.flickPerf.updates],
    rendered: [...window.flickPerf.rendered],
    frames: [...window.flickPerf.frames],
    frameCount: window.flickPerf.frameCount,
    frameMs: window.flickPerf.frameMs,
    longtasks: window.__longtasks.map((t) => t.duration),
    slowest: window.flickPerf.slowest,
    reference: [...window.__reference],
  }));
  heaps.push([Math.round(elapsed), await heap(cdp, true)]);
  const updates = result.updates.sort((a, b) => a - b);
  const rendered = result.rendered.sort((a, b) => a - b);
  const frames = result.frames.sort((a, b) => a - b);
  const frameTotal = result.frameMs;
  const updateTotal = result.updates.reduce((a, b) => a + b, 0);
  const half = heaps.filter(([t]) => t >= elapsed / 2);
  console.log(`== ${label}: ${elapsed.toFixed(0)} s`);
  console.log(
    `  update (redraw per frame): n=${updates.length} (${(updates.length / elapsed).toFixed(2)}/s), ` +
      `p50 ${ms(pct(updates, 50))}, p99 ${ms(pct(updates, 99))}, max ${ms(updates.at(-1))}`,
  );
  console.log(
    `  update + the browser's style, layout and paint of that frame: ` +
      `p50 ${ms(pct(rendered, 50))}, p99 ${ms(pct(rendered, 99))}, max ${ms(rendered.at(-1))}`,
  );
  console.log(
    `  live frames handled: ${(result.frameCount / elapsed).toFixed(0)}/s, p50 (newest 20,000) ${ms(pct(frames, 50))}, ` +
      `p99 ${ms(pct(frames, 99))}, max ${ms(frames.at(-1))}`,
  );
  console.log(
    `  main thread in our code: ${(((frameTotal + updateTotal) / (elapsed * 1000)) * 100).toFixed(1)} % ` +
      `(frames ${(frameTotal / elapsed).toFixed(1)} ms/s, updates ${(updateTotal / elapsed).toFixed(1)} ms/s)`,
  );
  console.log(
    `  gateway: ${((after.sent - before.sent) / elapsed).toFixed(0)} samples/s queued to server subscriptions, ` +
      `${((after.skipped - before.skipped) / elapsed).toFixed(0)}/s replaced by a newer one before being sent`,
  );
  console.log(
    `  received by the page: ${((receivedAfter.samples - receivedBefore.samples) / elapsed).toFixed(0)} samples/s, ` +
      `${((receivedAfter.headlines - receivedBefore.headlines) / elapsed).toFixed(0)} fleet headlines/s ` +
      `(${receivedAfter.repeated - receivedBefore.repeated} not newer than their server's previous one)`,
  );
  console.log(`  slowest updates: ${updates.slice(-5).map((v) => v.toFixed(1)).join(', ')} ms`);
  console.log(
    `  slowest single task: ${Object.entries(result.slowest)
      .map(([k, v]) => `${k} ${v.toFixed(1)}`)
      .join(', ')} ms`,
  );
  const ref = result.reference.sort((a, b) => a - b);
  console.log(
    `  reference (sorting 20,000 numbers in the page each second, the machine's noise): ` +
      `p50 ${ms(pct(ref, 50))}, p99 ${ms(pct(ref, 99))}, ratio ${(pct(ref, 99) / pct(ref, 50)).toFixed(1)}`,
  );
  console.log(`  load average of the machine: ${os.loadavg().map((v) => v.toFixed(2)).join(' ')} (${os.cpus().length} CPUs)`);
  const lt = result.longtasks;
  console.log(`  long tasks (> 50 ms): ${lt.length}, total ${lt.reduce((a, b) => a + b, 0).toFixed(0)} ms`);
  console.log(`  JS heap after GC: ${heaps.map(([t, b]) => `${t} s ${mib(b)}`).join(', ')}`);
  if (half.length >= 2) {
    console.log(`  heap change over the second half: ${mib(half.at(-1)[1] - half[0][1])}`);
  }
  return { updates, frames, heaps };
}

const stack = new Stack({ simulate: SERVERS, collector: false });
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: ['--no-sandbox', '--enable-precise-memory-info'],
});
let code = 0;
try {
  console.log(`starting the stack with ${SERVERS} simulated servers…`);
  await stack.start();
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await context.addInitScript(() => {
    // A fixed piece of work timed every second beside the dashboard's: how noisy the machine is.
    window.__reference = [];
    setInterval(() => {
      const numbers = Array.from({ length: 20_000 }, () => Math.random());
      const t0 = performance.now();
      numbers.sort((a, b) => a - b);
      window.__reference.push(performance.now() - t0);
    }, 1_000);
    window.__longtasks = [];
    try {
      new PerformanceObserver((list) => {
        for (const e of list.getEntries()) window.__longtasks.push({ start: e.startTime, duration: e.duration });
      }).observe({ type: 'longtask', buffered: true });
    } catch {
      // No long-task timing in this browser.
    }
  });
  const page = await context.newPage();
  page.on('pageerror', (e) => console.error('page error:', e.message));
  page.on('websocket', countFrames);
  const cdp = await context.newCDPSession(page);
  await cdp.send('HeapProfiler.enable');

  await page.goto(`${stack.url}/register`);
  await page.fill('input[name=email]', 'bench@example.com');
  await page.fill('input[name=password]', 'a long passphrase for the benchmark');
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.getByRole('heading', { name: 'Fleet' }).waitFor();

  console.log('waiting for every server to be listed and live…');
  await waitFor(
    'the fleet to list every server',
    () => page.evaluate((n) => window.flickDebug.fleetSize() >= n, SERVERS),
    120_000,
    1_000,
  );
  const t0 = Date.now();
  await waitFor(
    '95 % of the fleet to be live',
    () => page.evaluate((n) => window.flickDebug.fleetFresh(5) >= 0.95 * n, SERVERS),
    180_000,
    1_000,
  );
  const status = await page.evaluate(() => window.flickDebug.live());
  if (!status.fleet || status.servers !== 0) {
    throw new Error(`the fleet page should stream on the fleet subscription alone: ${JSON.stringify(status)}`);
  }
  console.log(
    `fleet live after ${((Date.now() - t0) / 1000).toFixed(0)} s on the fleet subscription (${status.sockets} socket${status.sockets === 1 ? '' : 's'})`,
  );
  // Sort by CPU (the order changes every second: the worst case for the table).
  await page.getByRole('button', { name: /^CPU/ }).click();
  const ops = `http://127.0.0.1:${stack.gatewayOps}`;
  await measure(page, cdp, `fleet, ${SERVERS} servers at 1 Hz, sorted by CPU`, ops);

  // The server with the most cores.
  const servers = await page.evaluate(async () => {
    const s = await (await fetch('/api/v1/auth/refresh', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).json();
    const r = await fetch('/api/v1/servers', { headers: { authorization: `Bearer ${s.accessToken}` } });
    return (await r.json()).slice(0, 20).map((x) => x.id);
  });
  let target = servers[0];
  let cores = 0;
  for (const id of servers) {
    const n = await page.evaluate(async (id) => {
      const s = await (await fetch('/api/v1/auth/refresh', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).json();
      const r = await fetch(`/api/v1/servers/${id}`, { headers: { authorization: `Bearer ${s.accessToken}` } });
      return (await r.json()).latest?.cpuCores?.length ?? 0;
    }, id);
    if (n > cores) {
      cores = n;
      target = id;
    }
  }
  await page.setViewportSize({ width: 1280, height: 2200 });
  await page.goto(`${stack.url}/servers/${target}?window=3600`);
  await waitFor(
    'the replay of the window and a live sample on the server page',
    () => page.evaluate(() => window.flickDebug.serverCharts?.replayed?.() && window.flickDebug.serverCharts.newest() != null),
    30_000,
  );
  // One hour of per-second samples in every chart: the stream's replay holds the newest part
  // (the metrics stream is bounded in bytes, so with a thousand servers only minutes of it);
  // made-up samples before it fill the rest.
  const filled = await page.evaluate(() => {
    const charts = window.flickDebug.serverCharts;
    const template = charts.newest();
    const newest = Date.parse(template.timestamp) / 1000;
    const end = charts.streamedFrom() ?? newest;
    const walk = (v, step, lo, hi) => Math.min(hi, Math.max(lo, v + (Math.random() - 0.5) * step));
    let cpu = template.cpuUsage;
    for (let t = Math.ceil(newest - 3_600); t < end; t++) {
      cpu = walk(cpu, 6, 0, 100);
      charts.push({
        ...template,
        timestamp: new Date(t * 1000).toISOString(),
        cpuUsage: cpu,
        cpuCores: template.cpuCores.map((c) => walk(c, 20, 0, 100)),
        memoryUsage: walk(template.memoryUsage, 4, 0, 100),
        loadAverage: { one: Math.random() * 4, five: Math.random() * 3, fifteen: Math.random() * 2 },
        diskIo: { readBytesPerSec: Math.random() * 1e7, writeBytesPerSec: Math.random() * 1e7 },
        interfaces: template.interfaces.map((i) => ({ ...i, rxBytesPerSec: Math.random() * 1e6, txBytesPerSec: Math.random() * 1e6 })),
      });
    }
    return charts.points();
  });
  console.log(`server ${target} (${cores} cores): points per chart ${JSON.stringify(filled)}`);
  await sleep(2_000);
  await measure(page, cdp, `server page, 1 h of per-second points in ${Object.keys(filled).length} charts (${cores} cores), all on screen`, ops);
  const after = await page.evaluate(() => window.flickDebug.serverCharts.points());
  console.log(`  points per chart at the end: ${JSON.stringify(after)}`);
} catch (err) {
  code = 1;
  console.error(`bench failed: ${err.message}`);
} finally {
  await browser.close();
  await stack.stop();
}
process.exit(code);
