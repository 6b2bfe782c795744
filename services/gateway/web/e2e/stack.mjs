// Starts the real FLick stack for the browser tests as it is deployed: `flick init` generates a
// hub (NATS operator, identities, TLS, secrets, flick.toml) into a temporary directory, a private
// `nats-server` runs its configuration (operator mode, TLS), and the collector, persister,
// alerter and gateway binaries (target/debug, built with `cargo build --bins`, or those in
// FLICK_BIN_DIR), each its own process, read the generated flick.toml, on the machine's
// PostgreSQL with a fresh database and free ports. The gateway serves web/dist. Everything it starts is stopped, and the database and
// the hub directory removed, by `stop()`.

import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const webRoot = path.resolve(here, '..');
export const repoRoot = path.resolve(webRoot, '../../..');
export const outDir = path.join(webRoot, 'e2e', 'out');

const NATS_SERVER = process.env.NATS_SERVER_BIN ?? 'nats-server';
const PG_BASE = process.env.FLICK_E2E_PG ?? 'postgres://postgres@127.0.0.1:5432';

/** Cargo's output directory: `<dir>/debug` and `<dir>/release` hold the binaries. */
export const targetDir = process.env.CARGO_TARGET_DIR ?? path.join(repoRoot, 'target');

/** The binaries of FLICK_BIN_DIR, or else of `cargo build --bins` (target/debug). */
export function binary(name) {
  const dir = process.env.FLICK_BIN_DIR ?? path.join(targetDir, 'debug');
  const file = path.join(dir, name);
  if (!existsSync(file)) {
    const build = path.basename(dir) === 'release' ? 'cargo build --release --bins' : 'cargo build --bins';
    throw new Error(`${file} is missing: run \`${build}\` at the repository root first`);
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

function portOpen(port) {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Producers first, NATS last. */
const STOP_ORDER = ['simulator', 'collector', 'gateway', 'alerter', 'persister', 'nats'];

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

  /** `flick init` into a temporary directory, and NATS started from what it wrote. */
  async startHub() {
    this.hubDir = mkdtempSync(path.join(os.tmpdir(), 'flick-e2e-hub-'));
    this.natsPort = await freePort();
    this.natsUrl = `tls://127.0.0.1:${this.natsPort}`;
    const init = spawnSync(binary('flick'), [
      'init',
      '--dir', this.hubDir,
      '--prefix', this.prefix,
      '--nats-url', this.natsUrl,
      '--public-nats-url', this.natsUrl,
      '--database-url', `${PG_BASE}/${this.dbName}`,
    ], { encoding: 'utf8' });
    if (init.status !== 0) throw new Error(`flick init: ${init.stderr}`);
    this.spawn('nats', NATS_SERVER, [
      '-c', path.join(this.hubDir, 'nats', 'nats-server.conf'),
      '-p', String(this.natsPort), '-m', '0', '-sd', path.join(this.hubDir, 'jetstream'),
    ]);
    await waitFor('NATS', () => portOpen(this.natsPort), 15_000, 100);
  }

  async start() {
    await this.startHub();
    this.port = await freePort();
    this.persisterOps = await freePort();
    this.alerterOps = await freePort();
    this.gatewayOps = await freePort();
    this.url = `http://127.0.0.1:${this.port}`;
    this.env = {
      ...process.env,
      // Everything else (NATS identities, TLS, database, keys) comes from here.
      FLICK_CONFIG: path.join(this.hubDir, 'flick.toml'),
      HOST: '127.0.0.1',
      PORT: String(this.port),
      FLICK_PERSISTER__OPS_LISTEN: `127.0.0.1:${this.persisterOps}`,
      FLICK_ALERTER__OPS_LISTEN: `127.0.0.1:${this.alerterOps}`,
      FLICK_GATEWAY__OPS_LISTEN: `127.0.0.1:${this.gatewayOps}`,
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
    await waitFor('the gateway', () => ready(`http://127.0.0.1:${this.gatewayOps}/readyz`), 60_000);
  }

  async stopGateway() {
    await this.kill('gateway');
  }

  /** Starts `file`; `env` adds to the stack's environment, or replaces it with `clean: true`. */
  spawn(name, file, args, env = {}, { clean = false } = {}) {
    const log = createWriteStream(path.join(outDir, `${name}.log`), { flags: 'a' });
    const base = clean ? { PATH: process.env.PATH } : { ...process.env, ...this.env };
    const child = spawn(file, args, { env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
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
    const others = [...this.procs.keys()].filter((name) => !STOP_ORDER.includes(name));
    for (const name of [...others, ...STOP_ORDER]) await this.kill(name);
    spawnSync('psql', [`${PG_BASE}/postgres`, '-qc', `DROP DATABASE IF EXISTS ${this.dbName} WITH (FORCE)`], { stdio: 'ignore' });
    if (this.hubDir) rmSync(this.hubDir, { recursive: true, force: true });
  }
}
