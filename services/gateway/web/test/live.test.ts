import { describe, expect, it } from 'vitest';
import { applyEvent } from '../src/lib/alerts';
import type { Alert, AlertEvent } from '../src/types';

// live.ts needs a browser (WebSocket, window); its backoff is a pure function re-declared here
// through a dynamic import guarded by a minimal window.
describe('reconnection backoff', () => {
  it('doubles from half a second to a cap of 15 s, with jitter between 50 and 100 %', async () => {
    (globalThis as unknown as { window: EventTarget }).window ??= new EventTarget();
    (globalThis as unknown as { localStorage: Storage }).localStorage ??= memoryStorage();
    (globalThis as unknown as { sessionStorage: Storage }).sessionStorage ??= memoryStorage();
    (globalThis as unknown as { document: EventTarget }).document ??= new EventTarget();
    const { backoffMs } = await import('../src/live');
    expect(backoffMs(0, 1)).toBe(500);
    expect(backoffMs(1, 1)).toBe(1_000);
    expect(backoffMs(4, 1)).toBe(8_000);
    expect(backoffMs(5, 1)).toBe(15_000);
    expect(backoffMs(50, 1)).toBe(15_000);
    expect(backoffMs(3, 0)).toBe(2_000);
  });
});

function memoryStorage(): Storage {
  const m = new Map<string, string>();
  return {
    get length() {
      return m.size;
    },
    clear: () => m.clear(),
    getItem: (k) => m.get(k) ?? null,
    key: (i) => [...m.keys()][i] ?? null,
    removeItem: (k) => void m.delete(k),
    setItem: (k, v) => void m.set(k, v),
  };
}

describe('applyEvent', () => {
  const firing: AlertEvent = {
    v: 1,
    id: 'e1',
    alertId: 'a1',
    serverId: 's1',
    metric: 'cpu',
    severity: 'critical',
    state: 'firing',
    value: 95.2,
    threshold: 90,
    startedAt: '2026-11-25T12:00:00Z',
    at: '2026-11-25T12:00:10Z',
    message: 'CPU usage 95.2 % above critical threshold 90 %',
  };
  it('adds a firing alert first and resolves it in place, keeping the acknowledgement', () => {
    const older: Alert = { id: 'a0', serverId: 's1', metric: 'memory', severity: 'warning', state: 'resolved', startedAt: '2026-11-25T11:00:00Z' };
    let list = applyEvent([older], firing);
    expect(list.map((a) => a.id)).toEqual(['a1', 'a0']);
    list = list.map((a) => (a.id === 'a1' ? { ...a, acknowledgedAt: '2026-11-25T12:01:00Z' } : a));
    list = applyEvent(list, { ...firing, id: 'e2', state: 'resolved', value: 40, at: '2026-11-25T12:05:00Z', message: 'resolved' });
    const a1 = list.find((a) => a.id === 'a1')!;
    expect(a1.state).toBe('resolved');
    expect(a1.resolvedAt).toBe('2026-11-25T12:05:00Z');
    expect(a1.acknowledgedAt).toBe('2026-11-25T12:01:00Z');
    expect(a1.value).toBe(95.2);
    expect(list).toHaveLength(2);
  });
});

describe('withRecent', () => {
  it('re-applies live events a fetched list cannot know yet', async () => {
    const { live } = await import('../src/live');
    const { withRecent } = await import('../src/stores/recentAlerts');
    const event = (alertId: string, state: 'firing' | 'resolved'): AlertEvent => ({
      v: 1,
      id: `${alertId}-${state}`,
      alertId,
      serverId: 's1',
      metric: 'cpu',
      severity: 'critical',
      state,
      value: 95,
      threshold: 90,
      startedAt: '2026-11-25T12:00:00Z',
      at: '2026-11-25T12:00:10Z',
    });
    live.alertEvents.emit(event('new', 'firing'));
    live.alertEvents.emit(event('old', 'resolved'));
    const fetched: Alert[] = [
      { id: 'old', serverId: 's1', metric: 'cpu', severity: 'critical', state: 'firing', startedAt: '2026-11-25T11:00:00Z' },
    ];
    const all = withRecent(fetched, () => true);
    expect(all.map((a) => [a.id, a.state]).sort()).toEqual([
      ['new', 'firing'],
      ['old', 'resolved'],
    ]);
    const firing = withRecent(fetched, (a) => a.state === 'firing');
    expect(firing.map((a) => a.id)).toEqual(['new']);
  });
});

describe('renewInMs', () => {
  it('renews a minute before a 15-minute token expires, with up to 20 s of jitter', async () => {
    const { renewInMs } = await import('../src/auth');
    const now = 1_000_000;
    expect(renewInMs(now + 900_000, 900_000, now, 0)).toBe(840_000);
    expect(renewInMs(now + 900_000, 900_000, now, 1)).toBe(820_000);
  });
  it('renews a short-lived token a third of its life early, never sooner than in a second', async () => {
    const { renewInMs } = await import('../src/auth');
    const now = 1_000_000;
    expect(renewInMs(now + 60_000, 60_000, now, 0)).toBe(40_000);
    expect(renewInMs(now + 60_000, 60_000, now, 1)).toBe(34_000);
    expect(renewInMs(now - 5_000, 60_000, now, 0)).toBe(1_000);
  });
});
