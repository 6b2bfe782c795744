import { describe, expect, it } from 'vitest';
import { historyColumns, historyValues, liveValues, mountPercent, prefillValues } from '../src/lib/samples';
import type { HistoryPoint, MetricSample } from '../src/types';

const sample: MetricSample = {
  v: 1,
  serverId: 'web-01',
  timestamp: '2026-11-25T12:00:00.000Z',
  cpuUsage: 45.2,
  memoryUsage: 78.5,
  diskUsage: 65,
  networkUsage: 1024,
  cpuCores: [40.1, 50.3],
  memory: { totalBytes: 8, usedBytes: 6, availableBytes: 2 },
  swap: { totalBytes: 200, usedBytes: 50 },
  loadAverage: { one: 0.92, five: 0.75, fifteen: 0.61 },
  mounts: [{ mountPoint: '/', device: '/dev/sda1', fileSystem: 'ext4', totalBytes: 100, usedBytes: 65 }],
  diskIo: { readBytesPerSec: 4096, writeBytesPerSec: 81920 },
  network: { rxBytesPerSec: 800, txBytesPerSec: 224 },
  interfaces: [{ name: 'eth0', rxBytesPerSec: 800, txBytesPerSec: 224 }],
};

describe('liveValues', () => {
  it('splits a sample into the values of each chart', () => {
    const v = liveValues(sample);
    expect(v.cpu).toEqual({ cpu: 45.2 });
    expect(v.cores).toEqual({ 'core 0': 40.1, 'core 1': 50.3 });
    expect(v.memory).toEqual({ memory: 78.5, swap: 25 });
    expect(v.mounts).toEqual({ '/': 65 });
    expect(v.diskio).toEqual({ read: 4096, write: 81920 });
    expect(v.network).toEqual({ 'eth0 rx': 800, 'eth0 tx': 224 });
    expect(v.load).toEqual({ '1 min': 0.92, '5 min': 0.75, '15 min': 0.61 });
    expect(v.temperatures).toEqual({});
  });
  it('gives one temperature line per sensor, none without sensors', () => {
    const v = liveValues({
      ...sample,
      temperatures: [
        { label: 'coretemp Package id 0', celsius: 48.5, maxCelsius: 71, criticalCelsius: 100 },
        { label: 'nvme Composite', celsius: 38.9 },
      ],
    });
    expect(v.temperatures).toEqual({ 'coretemp Package id 0': 48.5, 'nvme Composite': 38.9 });
  });
  it('gives a mount the percent df shows, as the collector computes diskUsage', () => {
    // The shared crate's test: 1000 bytes, 600 used, 350 available, 50 reserved for root.
    const mount = { mountPoint: '/', totalBytes: 1000, usedBytes: 600, availableBytes: 350 };
    expect(mountPercent(mount)).toBeCloseTo((600 / 950) * 100, 9);
    expect(liveValues({ ...sample, mounts: [mount] }).mounts['/']).toBeCloseTo(63.158, 3);
    // An older collector's mount (no availableBytes) keeps used / total.
    expect(mountPercent({ mountPoint: '/', totalBytes: 1000, usedBytes: 600 })).toBe(60);
    expect(mountPercent({ mountPoint: '/', totalBytes: 1000, usedBytes: 950, availableBytes: 0 })).toBe(100);
    expect(mountPercent({ mountPoint: '/', totalBytes: 0, usedBytes: 0, availableBytes: 0 })).toBe(0);
  });
  it('copes with a sample that has only the four original figures', () => {
    const v = liveValues({ v: 1, serverId: 'x', timestamp: sample.timestamp, cpuUsage: 1, memoryUsage: 2, diskUsage: 3, networkUsage: 4 });
    expect(v.network).toEqual({ total: 4 });
    expect(v.memory).toEqual({ memory: 2, swap: null });
    expect(v.cores).toEqual({});
    expect(v.temperatures).toEqual({});
    expect(v.load['1 min']).toBeNull();
  });
});

const point = (t: string, cpu: number): HistoryPoint => ({
  t,
  samples: 5,
  cpu: { avg: cpu, min: cpu - 1, max: cpu + 1 },
  memory: { avg: 50, min: 49, max: 51 },
  disk: { avg: 60, min: 60, max: 60 },
  network: { avg: 1000, min: 900, max: 1100 },
  networkRx: 600,
  networkTx: 400,
  load1: 0.5,
});

describe('history', () => {
  it('gives averages with their band edges', () => {
    const v = historyValues(point('2026-11-25T12:00:00Z', 10));
    expect(v.cpu).toEqual({ avg: 10, min: 9, max: 11 });
    expect(v.network).toEqual({ avg: 1000, min: 900, max: 1100, rx: 600, tx: 400 });
    expect(prefillValues(point('2026-11-25T12:00:00Z', 10)).cpu).toEqual({ cpu: 10 });
  });
  it('turns points into columns and breaks the line where buckets are missing', () => {
    const points = [point('2026-11-25T12:00:00Z', 10), point('2026-11-25T12:00:05Z', 20), point('2026-11-25T12:00:20Z', 30)];
    const [xs, avg, max] = historyColumns(points, 5, ['avg', 'max'], (p) => historyValues(p).cpu);
    const t0 = Date.parse('2026-11-25T12:00:00Z') / 1000;
    expect(xs).toEqual([t0, t0 + 5, t0 + 10, t0 + 20]);
    expect(avg).toEqual([10, 20, null, 30]);
    expect(max).toEqual([11, 21, null, 31]);
  });
});
