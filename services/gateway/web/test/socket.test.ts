// The live pool against a gateway played by the test (test/fakes.ts): limits from the auth ack,
// `since` resubscriptions, the replay's end, and the fleet subscription.

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FakeWebSocket, sample, settle } from './fakes';
import { budgetOf, DEFAULT_BUDGET, type FleetEvent, LivePool } from '../src/live';
import type { Replayed } from '../src/types';

vi.mock('../src/auth', () => ({
  session: () => ({ accessToken: 'token', expiresAt: Date.now() + 3_600_000, ttlMs: 3_600_000, user: { id: 'u1' } }),
  accessToken: async () => 'token',
  onSession: () => () => undefined,
  refresh: async () => true,
  signOut: async () => undefined,
}));

const LIMITS = { subscriptions: 200, messagesPerSecond: 20, messageBurst: 40, queuedFrames: 256, messageBytes: 16_384 };

/** Opens a socket (the newest) and acknowledges its authentication with these limits. */
async function connect(limits: Record<string, number> = LIMITS, index = -1): Promise<FakeWebSocket> {
  await settle();
  const ws = FakeWebSocket.all.at(index)!;
  await ws.open();
  ws.ack('auth', { userId: 'u1', limits });
  return ws;
}

beforeEach(() => {
  FakeWebSocket.all = [];
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

describe('budgetOf', () => {
  it('keeps a margin under the limits the auth ack names', () => {
    expect(budgetOf(LIMITS)).toEqual({ perSocket: 190, burst: 30, perSecond: 15 });
    expect(budgetOf({ subscriptions: 1_000, messagesPerSecond: 100, messageBurst: 200 })).toEqual({ perSocket: 990, burst: 150, perSecond: 75 });
    // A small limit keeps a quarter back, never less than one server.
    expect(budgetOf({ subscriptions: 12 }).perSocket).toBe(9);
    expect(budgetOf({ subscriptions: 1 }).perSocket).toBe(1);
  });
  it('falls back to the defaults for what is missing or nonsense', () => {
    expect(budgetOf(undefined)).toEqual(DEFAULT_BUDGET);
    expect(budgetOf({ subscriptions: -3, messagesPerSecond: 'many', messageBurst: null })).toEqual(DEFAULT_BUDGET);
  });
});

describe('LivePool and the auth ack', () => {
  it('spreads servers by the limits it names, the first ones kept on the first socket', async () => {
    const pool = new LivePool();
    expect(pool.budget).toEqual(DEFAULT_BUDGET);
    for (let i = 0; i < 20; i++) pool.watch(`s${i}`);
    const first = await connect({ subscriptions: 12, messagesPerSecond: 8, messageBurst: 8 });
    expect(pool.budget.perSocket).toBe(9);
    // Given out under the default (190 a socket), the 11 over the limit moved to two more.
    expect(FakeWebSocket.all).toHaveLength(3);
    // 75 % of a burst of 8 at once, the rest at 75 % of 8 a second.
    expect(first.sentOf('server_metrics.subscribe')).toHaveLength(6);
    vi.advanceTimersByTime(400);
    expect(first.sentOf('server_metrics.subscribe')).toHaveLength(8);
    vi.advanceTimersByTime(400);
    expect(first.sentOf('server_metrics.subscribe').map((d) => d['serverId'])).toEqual(['s0', 's1', 's2', 's3', 's4', 's5', 's6', 's7', 's8']);
    const second = await connect({ subscriptions: 12, messagesPerSecond: 8, messageBurst: 8 }, 1);
    const third = await connect({ subscriptions: 12, messagesPerSecond: 8, messageBurst: 8 }, 2);
    vi.advanceTimersByTime(1_000);
    expect(second.sentOf('server_metrics.subscribe')).toHaveLength(9);
    expect(third.sentOf('server_metrics.subscribe').map((d) => d['serverId'])).toEqual(['s18', 's19']);
    expect(pool.status().sockets).toBe(3);
  });

  it('asks again, after a pause, for a subscription the rate limit refused', async () => {
    const pool = new LivePool();
    pool.watch('a');
    const ws = await connect();
    ws.refuse('server_metrics.subscribe', 'rate_limited');
    expect(ws.sentOf('server_metrics.subscribe')).toHaveLength(1);
    vi.advanceTimersByTime(1_200);
    expect(ws.sentOf('server_metrics.subscribe')).toEqual([{ serverId: 'a' }, { serverId: 'a' }]);
  });

  it('takes not_found for a server gone only from a subscription or from the gateway itself', async () => {
    const pool = new LivePool();
    const gone: string[] = [];
    pool.onGone((id) => gone.push(id));
    const stopA = pool.watch('a');
    pool.watch('b');
    const ws = await connect();
    ws.ack('server_metrics.subscribe', { serverId: 'a' }, 'a');
    ws.ack('server_metrics.subscribe', { serverId: 'b' }, 'b');
    stopA();
    await settle();
    ws.refuse('server_metrics.unsubscribe', 'not_found');
    expect(gone).toEqual([]);
    ws.receive({ type: 'error', id: null, data: { code: 'not_found', message: 'no longer visible', serverId: 'b' } });
    expect(gone).toEqual(['b']);
  });
});

describe('LivePool and since', () => {
  it('subscribes from the owner’s since, hears the replay end, and resumes after the newest sample held', async () => {
    const pool = new LivePool();
    let held: string | undefined;
    pool.onSample((s) => {
      held = s.timestamp;
    });
    const replays: Replayed[] = [];
    pool.onReplayed((r) => replays.push(r));
    pool.watch('a', { intervalMs: 1_000, since: () => held ?? '2026-11-25T11:45:00.000Z' });
    let ws = await connect();
    expect(ws.sentOf('server_metrics.subscribe')).toEqual([{ serverId: 'a', intervalMs: 1_000, since: '2026-11-25T11:45:00.000Z' }]);
    ws.ack('server_metrics.subscribe', { serverId: 'a' });
    ws.receive({ type: 'resource_metrics', data: { ...sample('a', '2026-11-25T11:45:01.000Z') } });
    ws.receive({ type: 'resource_metrics', data: { ...sample('a', '2026-11-25T11:45:02.000Z') } });
    ws.receive({ type: 'server_metrics.replayed', data: { serverId: 'a', samples: 2, until: '2026-11-25T11:45:02.000Z' } });
    expect(replays).toEqual([{ serverId: 'a', samples: 2, until: '2026-11-25T11:45:02.000Z' }]);
    ws.receive({ type: 'resource_metrics', data: { ...sample('a', '2026-11-25T11:59:59.500Z') } });
    ws.lose();
    expect(pool.status().state).toBe('waiting');
    pool.retryNow();
    ws = await connect();
    expect(ws.sentOf('server_metrics.subscribe')).toEqual([{ serverId: 'a', intervalMs: 1_000, since: '2026-11-25T11:59:59.500Z' }]);
  });

  it('starts from the earliest since of several owners, and without one streams live only', async () => {
    const pool = new LivePool();
    pool.watch('a', { since: () => '2026-11-25T12:00:00Z' });
    pool.watch('a', { since: () => '2026-11-25T11:30:00Z' });
    pool.watch('b');
    const ws = await connect();
    expect(ws.sentOf('server_metrics.subscribe')).toEqual([{ serverId: 'a', since: '2026-11-25T11:30:00Z' }, { serverId: 'b' }]);
  });
});

describe('LivePool and the fleet', () => {
  it('holds one fleet subscription, passes on its frames, and subscribes again after a reconnection', async () => {
    const pool = new LivePool();
    const events: FleetEvent['type'][] = [];
    pool.onFleet((e) => events.push(e.type));
    const stop = pool.watchFleet({ intervalMs: 900 });
    let ws = await connect();
    expect(ws.sentOf('fleet.subscribe')).toEqual([{ intervalMs: 900 }]);
    expect(ws.sentOf('server_metrics.subscribe')).toEqual([]);
    ws.ack('fleet.subscribe', { intervalMs: 900, tags: [] });
    ws.receive({ type: 'fleet.servers', data: { initial: true, added: [], changed: [], removed: [] } });
    ws.receive({ type: 'fleet.metrics', data: { samples: [] } });
    expect(events).toEqual(['subscribed', 'servers', 'metrics']);
    expect(pool.status()).toMatchObject({ state: 'open', fleet: true, servers: 0, sockets: 1 });
    ws.lose();
    pool.retryNow();
    ws = await connect();
    expect(ws.sentOf('fleet.subscribe')).toEqual([{ intervalMs: 900 }]);
    // Alerts share the socket; the fleet leaves it with an unsubscription.
    const stopAlerts = pool.watchAlerts();
    stop();
    await settle();
    expect(ws.sent.map((m) => m.type).slice(-2)).toEqual(['alerts.subscribe', 'fleet.unsubscribe']);
    expect(pool.status().fleet).toBe(false);
    stopAlerts();
    await settle();
    expect(pool.status().state).toBe('idle');
  });

  it('sends the tags a server must carry', async () => {
    const pool = new LivePool();
    pool.watchFleet({ intervalMs: 2_000, tags: ['db', 'eu'] });
    const ws = await connect();
    expect(ws.sentOf('fleet.subscribe')).toEqual([{ intervalMs: 2_000, tags: ['db', 'eu'] }]);
  });
});
