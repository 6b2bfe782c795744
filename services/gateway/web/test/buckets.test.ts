import { describe, expect, it } from 'vitest';
import { bucketFor, bucketParam, historyWindow, RANGES, rangeByKey } from '../src/lib/buckets';

describe('bucketFor', () => {
  it('gives at most about a thousand points on a wide screen', () => {
    const wide = 1_200;
    const buckets = Object.fromEntries(RANGES.filter((r) => r.secs > 0).map((r) => [r.key, bucketFor(r.secs, wide)]));
    expect(buckets).toEqual({ '1h': 5, '6h': 30, '24h': 120, '7d': 900, '30d': 3_600 });
    for (const r of RANGES.filter((x) => x.secs > 0)) {
      expect(r.secs / bucketFor(r.secs, wide)).toBeLessThanOrEqual(1_000);
    }
  });
  it('asks a phone for no more points than it has pixels', () => {
    const phone = 360;
    expect(bucketFor(3_600, phone)).toBe(10);
    expect(bucketFor(6 * 3_600, phone)).toBe(60);
    expect(bucketFor(86_400, phone)).toBe(300);
    expect(bucketFor(7 * 86_400, phone)).toBe(1_800);
    expect(bucketFor(30 * 86_400, phone)).toBe(7_200);
  });
  it('never asks for fewer than 200 points, and uses whole days beyond the list', () => {
    expect(bucketFor(3_600, 50)).toBe(30);
    expect(bucketFor(400 * 86_400, 1_000)).toBe(43_200);
    expect(bucketFor(800 * 86_400, 1_000)).toBe(86_400);
    expect(bucketFor(4_000 * 86_400, 1_000)).toBe(4 * 86_400);
  });
  it('picks minute multiples from a minute up (TimescaleDB aggregates serve them)', () => {
    for (const secs of [86_400, 7 * 86_400, 30 * 86_400]) {
      for (const width of [360, 800, 1_200]) expect(bucketFor(secs, width) % 60).toBe(0);
    }
  });
});

describe('historyWindow', () => {
  it('ends now and starts on a bucket boundary', () => {
    const now = Date.parse('2026-11-25T12:34:56.789Z');
    const w = historyWindow(3_600, now, 1_200);
    expect(w.bucketSecs).toBe(5);
    expect(w.to.toISOString()).toBe('2026-11-25T12:34:57.000Z');
    expect(w.from.toISOString()).toBe('2026-11-25T11:34:55.000Z');
    expect((w.from.getTime() / 1000) % w.bucketSecs).toBe(0);
    const day = historyWindow(86_400, now, 1_200);
    expect((day.from.getTime() / 1000) % 120).toBe(0);
  });
});

describe('ranges', () => {
  it('reads the URL value and falls back to live', () => {
    expect(rangeByKey('6h').secs).toBe(21_600);
    expect(rangeByKey('nonsense').key).toBe('live');
    expect(rangeByKey(null).key).toBe('live');
  });
  it('writes buckets the API understands', () => {
    expect(bucketParam(1)).toBe('1s');
    expect(bucketParam(30)).toBe('30s');
    expect(bucketParam(120)).toBe('2m');
    expect(bucketParam(3_600)).toBe('1h');
    expect(bucketParam(86_400)).toBe('1d');
  });
});
