// Starts the real FLick stack for the browser tests: the collector, persister, alerter and
// gateway binaries (target/debug, built with `cargo build --bins`), each its own process, on the
// machine's NATS and PostgreSQL, with a fresh database, a private subject prefix and free ports.
// The gateway serves web/dist. Everything it starts is stopped, and the database and streams
// removed, by `stop()`.

import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const webRoot = path.resolve(here, '..');
export const repoRoot = path.resolve(webRoot, '../../..');
export const outDir = path.join(webRoot, 'e2e', 'out');

const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const PG_BASE = process.env.FLICK_E2E_PG ?? 'postgres://postgres@127.0.0.1:5432';

export function binary(name) {
  const dir = process.env.FLICK_BIN_DIR ?? path.join(process.env.CARGO_TARGET_DIR ?? path.join(repoRoot, 'target'), 'debug');
  const file = path.join(dir, name);
  if (!existsSync(file)) {
    throw new Error(`${file} is missing: run \`cargo build --bins\` at the repository root first`);
  }
  return file;
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function waitFor(what, check, timeoutMs = 30_000, everyMs = 250) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value) return value;
    } catch (err) {
      last = err;
    }
    await sleep(everyMs);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
}

async function ready(url) {
  const response = await fetch(url);
  return response.ok;
}

/** Deletes JetStream streams with the raw NATS protocol (no client library needed). */
function deleteStreams(names) {
  const url = new URL(NATS_URL.split(',')[0]);
  return new Promise((resolve) => {
    const socket = net.connect(Number(url.port || 4222), url.hostname);
    const done = () => {
      socket.destroy();
      resolve();
    };
    socket.setTimeout(3_000, done);
    socket.on('error', done);
    let sent = false;
    socket.on('data', (chunk) => {
      const text = chunk.toString();
      if (!sent && text.startsWith('INFO')) {
        sent = true;
        let out = 'CONNECT {"verbose":false,"pedantic":false}\r\n';
        for (const name of names) out += `PUB $JS.API.STREAM.DELETE.${name} 0\r\n\r\n`;
        out += 'PING\r\n';
        socket.write(out);
      } else if (text.includes('PONG')) {
        setTimeout(done, 200);
      }
    });
  });
}

export class Stack {
  constructor({ simulate = 0, hot = 0, interval = 1000, backfill = 0, env = {}, collector = true } = {}) {
    const id = randomBytes(6).toString('hex');
    this.prefix = `t${id}`;
    this.dbName = `flick_t_${Math.floor(Date.now() / 1000)}_${randomBytes(5).toString('hex')}`;
    this.localServerId = `e2e-local-${id}`;
    this.simulate = simulate;
    this.hot = hot;
    this.interval = interval;
    this.backfill = backfill;
    this.extraEnv = env;
    this.collector = collector;
    this.procs = new Map();
    mkdirSync(outDir, { recursive: true });
  }

  async start() {
    this.port = await freePort();
    this.persisterOps = await freePort();
    this.alerterOps = await freePort();
    this.url = `http://127.0.0.1:${this.port}`;
    this.env = {
      ...process.env,
      NATS_URL,
      FLICK_NATS__PREFIX: this.prefix,
      DATABASE_URL: `${PG_BASE}/${this.dbName}`,
      HOST: '127.0.0.1',
      PORT: String(this.port),
      JWT_SECRET: randomBytes(48).toString('base64'),
      ENCRYPTION_KEY: randomBytes(32).toString('hex'),
      FLICK_PERSISTER__OPS_LISTEN: `127.0.0.1:${this.persisterOps}`,
      FLICK_ALERTER__OPS_LISTEN: `127.0.0.1:${this.alerterOps}`,
      FLICK_STREAMS__METRICS_MAX_BYTES: String(256 << 20),
      FLICK_STREAMS__ALERTS_MAX_BYTES: String(8 << 20),
      FLICK_STREAMS__LOGS_MAX_BYTES: String(8 << 20),
      FLICK_GATEWAY__WEB_DIR: path.join(webRoot, 'dist'),
      // The browser tests sign in more often than people do.
      FLICK_GATEWAY__AUTH_BURST: '50',
      FLICK_GATEWAY__AUTH_REFILL_SECS: '1',
      RUST_LOG: process.env.FLICK_E2E_LOG ?? 'warn',
      ...this.extraEnv,
    };
    // The persister creates the database and applies the migrations; the others wait for it.
    this.spawn('persister', binary('flick-persister'), []);
    await waitFor('the persister', () => ready(`http://127.0.0.1:${this.persisterOps}/readyz`), 60_000);
    this.spawn('alerter', binary('flick-alerter'), []);
    await this.startGateway();
    await waitFor('the alerter', () => ready(`http://127.0.0.1:${this.alerterOps}/readyz`), 60_000);
    if (this.collector) {
      this.spawn('collector', binary('flick-collector'), [], { FLICK_SERVER_ID: this.localServerId });
    }
    if (this.simulate > 0) {
      const args = ['simulate', '--servers', String(this.simulate), '--interval-ms', String(this.interval)];
      if (this.hot > 0) args.push('--hot', String(this.hot));
      // Past samples first (so history has something to show), then live for a day.
      if (this.backfill > 0) args.push('--backfill', String(this.backfill), '--duration-secs', '86400');
      this.spawn('simulator', binary('flick-collector'), args);
    }
    return this;
  }

  async startGateway() {
    this.spawn('gateway', binary('flick-gateway'), []);
    await waitFor('the gateway', () => ready(`${this.url}/readyz`), 60_000);
  }

  async stopGateway() {
    await this.kill('gateway');
  }

  spawn(name, file, args, env = {}) {
    const log = createWriteStream(path.join(outDir, `${name}.log`), { flags: 'a' });
    const child = spawn(file, args, { env: { ...this.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.pipe(log);
    child.stderr.pipe(log);
    child.on('exit', (code, signal) => {
      if (this.procs.get(name) === child && !child.stopping) {
        console.error(`! ${name} exited (${code ?? signal}); see e2e/out/${name}.log`);
      }
    });
    this.procs.set(name, child);
    return child;
  }

  async kill(name) {
    const child = this.procs.get(name);
    if (!child || child.exitCode !== null) return;
    child.stopping = true;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
    this.procs.delete(name);
  }

  async stop() {
    for (const name of ['simulator', 'collector', 'gateway', 'alerter', 'persister']) await this.kill(name);
    spawnSync('psql', [`${PG_BASE}/postgres`, '-qc', `DROP DATABASE IF EXISTS ${this.dbName} WITH (FORCE)`], { stdio: 'ignore' });
    const upper = this.prefix.toUpperCase();
    await deleteStreams([`${upper}_METRICS`, `${upper}_ALERTS`, `${upper}_LOGS`]);
  }
}
