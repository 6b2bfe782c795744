import { describe, expect, it } from 'vitest';
import { type FleetRow, FleetRows, matches, parseSort, rowStatus, sortRows, visibleRange, worse } from '../src/lib/fleet';
import type { FleetEvent } from '../src/live';
import { Sparkline } from '../src/lib/series';
import type { FleetSample, FleetServers, Server } from '../src/types';

const server = (id: string, name: string, extra: Partial<Server> = {}): Server => ({
  id,
  name,
  hostname: `${name}.example.com`,
  tags: [],
  status: 'online',
  createdAt: '2026-11-25T00:00:00Z',
  updatedAt: '2026-11-25T00:00:00Z',
  hasCredentials: false,
  ...extra,
});

const row = (s: Server, cpu: number | null, t = 1000): FleetRow => ({
  server: s,
  latest: cpu === null ? null : { t, cpu, memory: 0, disk: 0, network: 0 },
  spark: new Sparkline(300),
  alerts: { count: 0, severity: null },
});

describe('matches', () => {
  it('finds every word in the name, host name, tags or id', () => {
    const s = server('abc-123', 'web-01', { tags: ['prod', 'eu'] });
    expect(matches(s, '')).toBe(true);
    expect(matches(s, 'WEB')).toBe(true);
    expect(matches(s, 'example.com')).toBe(true);
    expect(matches(s, 'prod web')).toBe(true);
    expect(matches(s, 'abc-1')).toBe(true);
    expect(matches(s, 'prod db')).toBe(false);
  });
});

describe('sortRows', () => {
  it('sorts by a figure either way, servers without one last, ties by name', () => {
    const rows = [row(server('a', 'web-10'), 50), row(server('b', 'web-2'), null), row(server('c', 'web-1'), 90), row(server('d', 'web-3'), 50)];
    expect(sortRows([...rows], 'cpu', 'desc', 1000).map((r) => r.server.name)).toEqual(['web-1', 'web-3', 'web-10', 'web-2']);
    expect(sortRows([...rows], 'cpu', 'asc', 1000).map((r) => r.server.name)).toEqual(['web-3', 'web-10', 'web-1', 'web-2']);
    expect(sortRows([...rows], 'name', 'asc', 1000).map((r) => r.server.name)).toEqual(['web-1', 'web-2', 'web-3', 'web-10']);
  });
  it('sorts by alert severity, then count', () => {
    const a = row(server('a', 'a'), 1);
    const b = row(server('b', 'b'), 1);
    const c = row(server('c', 'c'), 1);
    a.alerts = { count: 3, severity: 'warning' };
    b.alerts = { count: 1, severity: 'critical' };
    expect(sortRows([a, b, c], 'alerts', 'desc', 1000).map((r) => r.server.id)).toEqual(['b', 'a', 'c']);
  });
});

describe('rowStatus', () => {
  it('is online while samples arrive and offline after 30 s of silence', () => {
    const r = row(server('a', 'a'), 10, 1000);
    expect(rowStatus(r, 1010)).toBe('online');
    expect(rowStatus(r, 1031)).toBe('offline');
  });
  it('trusts the API before the first live sample', () => {
    const r = row(server('a', 'a', { status: 'offline' }), null);
    expect(rowStatus(r, 1000)).toBe('offline');
  });
});

describe('helpers', () => {
  it('reads the sort from the URL', () => {
    expect(parseSort('cpu:desc')).toEqual({ key: 'cpu', dir: 'desc' });
    expect(parseSort('bogus')).toEqual({ key: 'name', dir: 'asc' });
  });
  it('knows which severity is worse', () => {
    expect(worse('warning', 'critical')).toBe('critical');
    expect(worse(null, 'warning')).toBe('warning');
  });
  it('computes the rows on screen', () => {
    expect(visibleRange(0, 460, 46, 1000, 5)).toEqual({ start: 0, end: 16 });
    expect(visibleRange(4600, 460, 46, 1000, 5)).toEqual({ start: 95, end: 116 });
    expect(visibleRange(46_000, 460, 46, 1000, 5)).toEqual({ start: 995, end: 1000 });
  });
});

const servers = (frame: Partial<FleetServers>): FleetEvent => ({
  type: 'servers',
  data: { initial: false, added: [], changed: [], removed: [], ...frame },
});
const metrics = (...samples: FleetSample[]): FleetEvent => ({ type: 'metrics', data: { samples } });
const headline = (serverId: string, secs: number, cpuUsage: number): FleetSample => ({
  serverId,
  timestamp: new Date(secs * 1000).toISOString(),
  cpuUsage,
  memoryUsage: 50,
  diskUsage: 60,
  networkUsage: 70,
  uptimeSecs: 100,
});

describe('FleetRows', () => {
  it('replaces the list with the listing after a subscription, over several frames, keeping the rows it names', () => {
    const f = new FleetRows(300);
    f.replace([server('a', 'a'), server('b', 'b'), server('c', 'c')]);
    f.apply(metrics(headline('b', 1000, 42)));
    const b = f.rows.get('b')!;
    f.apply({ type: 'subscribed' });
    expect(f.apply(servers({ initial: true, added: [server('b', 'b'), server('d', 'd')] }))).toBe(true);
    f.apply(servers({ initial: true, added: [server('e', 'e')] }));
    // Until the listing ends, rows it has not named yet stay.
    expect([...f.rows.keys()].sort()).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(f.listing).toBe(true);
    // The figures start: the listing was complete.
    expect(f.apply(metrics(headline('d', 1001, 5)))).toBe(true);
    expect([...f.rows.keys()].sort()).toEqual(['b', 'd', 'e']);
    expect(f.listing).toBe(false);
    expect(f.rows.get('b')).toBe(b);
    expect(b.latest?.cpu).toBe(42);
    expect(b.spark.ys).toEqual([42]);
  });

  it('ends the listing at the frame marked complete', () => {
    const f = new FleetRows(300);
    f.replace([server('a', 'a'), server('b', 'b')]);
    f.apply({ type: 'subscribed' });
    f.apply(servers({ initial: true, added: [server('b', 'b')] }));
    expect(f.listing).toBe(true);
    expect(f.apply(servers({ initial: true, complete: true, added: [server('c', 'c')] }))).toBe(true);
    expect(f.listing).toBe(false);
    expect([...f.rows.keys()].sort()).toEqual(['b', 'c']);
  });

  it('adds, changes and removes servers as later frames say', () => {
    const f = new FleetRows(300);
    f.apply({ type: 'subscribed' });
    f.apply(servers({ initial: true, added: [server('a', 'web-1'), server('b', 'db-1')] }));
    f.apply(metrics(headline('a', 1000, 10)));
    const a = f.rows.get('a')!;
    expect(f.apply(servers({ added: [server('c', 'new')] }))).toBe(true);
    expect(f.apply(servers({ changed: [server('a', 'web-1 renamed', { tags: ['prod'] })] }))).toBe(true);
    expect(f.rows.get('a')).toBe(a);
    expect(a.server.name).toBe('web-1 renamed');
    expect(a.server.tags).toEqual(['prod']);
    expect(a.latest?.cpu).toBe(10);
    expect(f.apply(servers({ removed: ['b', 'never-listed'] }))).toBe(true);
    expect([...f.rows.keys()]).toEqual(['a', 'c']);
    expect(f.apply(servers({ removed: ['b'] }))).toBe(false);
  });

  it('feeds each row its newest headline and sparkline, ignoring servers it does not list', () => {
    const f = new FleetRows(300);
    f.replace([server('a', 'a')]);
    expect(f.apply(metrics(headline('a', 1000, 10), headline('zz', 1000, 99)))).toBe(false);
    f.apply(metrics(headline('a', 1001, 20)));
    // A sample older than the newest feeds neither.
    f.apply(metrics(headline('a', 999, 90)));
    const a = f.rows.get('a')!;
    expect(a.latest).toEqual({ t: 1001, cpu: 20, memory: 50, disk: 60, network: 70, uptimeSecs: 100 });
    expect(a.spark.xs).toEqual([1000, 1001]);
    expect(f.rows.has('zz')).toBe(false);
  });

  it('empties the list on an empty listing, but never on silence', () => {
    const f = new FleetRows(300);
    f.replace([server('a', 'a')]);
    f.apply({ type: 'subscribed' });
    // Figures before the listing's first frame: the listing has not been heard yet.
    f.apply(metrics(headline('a', 1000, 10)));
    expect(f.endListing()).toBe(false);
    expect(f.rows.has('a')).toBe(true);
    f.apply(servers({ initial: true }));
    // No more frames: the store ends the listing after a quiet while.
    expect(f.endListing()).toBe(true);
    expect(f.rows.size).toBe(0);
  });

  it('ends a listing at the first frame of changes, applying the changes after it', () => {
    const f = new FleetRows(300);
    f.replace([server('a', 'a'), server('b', 'b')]);
    f.apply({ type: 'subscribed' });
    f.apply(servers({ initial: true, added: [server('a', 'a')] }));
    f.apply(servers({ added: [server('b', 'b again')] }));
    expect([...f.rows.keys()]).toEqual(['a', 'b']);
    expect(f.rows.get('b')!.server.name).toBe('b again');
    expect(f.listing).toBe(false);
  });
});
