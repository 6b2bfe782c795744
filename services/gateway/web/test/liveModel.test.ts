// The server page's live charts following a server through a gateway played by the test: the
// window replayed (`since`), the stored history only for what the replay does not cover, and a
// reconnection that resumes after the newest sample with nothing twice.

import { beforeEach, describe, expect, it, vi } from 'vitest';
import { FakeWebSocket, sample, settle } from './fakes';
import { LivePool } from '../src/live';
import { createLiveModel, followServer } from '../src/pages/server/liveModel';

vi.mock('../src/auth', () => ({
  session: () => ({ accessToken: 'token', expiresAt: Date.now() + 3_600_000, ttlMs: 3_600_000, user: { id: 'u1' } }),
  accessToken: async () => 'token',
  onSession: () => () => undefined,
  refresh: async () => true,
  signOut: async () => undefined,
}));

const NOW = Date.parse('2026-11-25T12:00:00Z') / 1000;
const at = (secs: number) => new Date(secs * 1000).toISOString();

async function connect(): Promise<FakeWebSocket> {
  await settle();
  const ws = FakeWebSocket.all.at(-1)!;
  await ws.open();
  ws.ack('auth', { limits: { subscriptions: 200, messagesPerSecond: 20, messageBurst: 40 } });
  return ws;
}

function metrics(ws: FakeWebSocket, secs: number, cpu = 10): void {
  ws.receive({ type: 'resource_metrics', data: { ...sample('a', at(secs), cpu) } });
}

beforeEach(() => {
  FakeWebSocket.all = [];
});

describe('followServer', () => {
  it('asks the gateway for the window, and the stored history for the hour before it', async () => {
    const pool = new LivePool();
    const model = createLiveModel();
    const fill = vi.fn(async () => undefined);
    followServer(model, 'a', 900, { pool, fill, nowSecs: NOW });
    expect(fill).toHaveBeenCalledWith(NOW - 3_600, NOW - 900);
    const ws = await connect();
    expect(ws.sentOf('server_metrics.subscribe')).toEqual([{ serverId: 'a', since: at(NOW - 900) }]);
    for (let t = NOW - 899; t <= NOW; t++) metrics(ws, t);
    ws.receive({ type: 'server_metrics.replayed', data: { serverId: 'a', samples: 900, until: at(NOW) } });
    // The replay covered the window: no request for it.
    expect(fill).toHaveBeenCalledTimes(1);
    expect(model.buffers.cpu.length).toBe(900);
    expect(model.buffers.cores.length).toBe(900);
  });

  it('reads from the stored history what the stream no longer held of the window', async () => {
    const pool = new LivePool();
    const fill = vi.fn(async () => undefined);
    followServer(createLiveModel(), 'a', 900, { pool, fill, nowSecs: NOW });
    const ws = await connect();
    for (let t = NOW - 300; t <= NOW; t++) metrics(ws, t);
    ws.receive({ type: 'server_metrics.replayed', data: { serverId: 'a', samples: 301, until: at(NOW) } });
    expect(fill).toHaveBeenLastCalledWith(NOW - 900, NOW - 300);
    // Nothing replayed at all: the whole window.
    const other = vi.fn(async () => undefined);
    followServer(createLiveModel(), 'b', 3_600, { pool, fill: other, nowSecs: NOW });
    await settle();
    ws.ack('server_metrics.subscribe', { serverId: 'b' });
    ws.receive({ type: 'server_metrics.replayed', data: { serverId: 'b', samples: 0, until: null } });
    expect(other.mock.calls).toEqual([[NOW - 3_600, NOW]]);
  });

  it('resumes after a reconnection from the newest sample, dropping what it already holds', async () => {
    const pool = new LivePool();
    const model = createLiveModel();
    const follower = followServer(model, 'a', 300, { pool, fill: async () => undefined, nowSecs: NOW });
    let ws = await connect();
    for (let t = NOW - 299; t <= NOW; t++) metrics(ws, t, 10);
    ws.receive({ type: 'server_metrics.replayed', data: { serverId: 'a', samples: 300, until: at(NOW) } });
    metrics(ws, NOW + 1, 11);
    ws.lose();
    pool.retryNow();
    ws = await connect();
    expect(ws.sentOf('server_metrics.subscribe')).toEqual([{ serverId: 'a', since: at(NOW + 1) }]);
    // A repeat of the newest (sent twice across the reconnection) and an older one: dropped.
    metrics(ws, NOW + 1, 99);
    metrics(ws, NOW - 10, 99);
    metrics(ws, NOW + 2, 12);
    const cpu = model.buffers.cpu;
    expect(cpu.length).toBe(302);
    expect(cpu.column('cpu')!.slice(-3)).toEqual([10, 11, 12]);
    expect(cpu.column('cpu')!.includes(99)).toBe(false);
    expect(follower.debug.newest()?.timestamp).toBe(at(NOW + 2));
    follower.stop();
  });
});
