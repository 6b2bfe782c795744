import { describe, expect, it } from 'vitest';
import { type FleetRow, matches, parseSort, rowStatus, sortRows, visibleRange, worse } from '../src/lib/fleet';
import { Sparkline } from '../src/lib/series';
import type { Server } from '../src/types';

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
