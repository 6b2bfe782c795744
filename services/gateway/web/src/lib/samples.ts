// What each chart of the server page takes from a live sample or a history point.

import type { FleetSample, HistoryPoint, LatestSample, MetricSample, MountUsage } from '../types';
import type { Values } from './series';

/** Unix seconds of an RFC 3339 time. */
export function toSecs(timestamp: string): number {
  return Date.parse(timestamp) / 1000;
}

/**
 * Whether a sample's time is after the newest one held (`than`; none held: yes). A stream
 * resumed or replayed may repeat what is held, and a late sample must not stand for the newest.
 */
export function isAfter(timestamp: string, than: string | null | undefined): boolean {
  return !than || Date.parse(timestamp) > Date.parse(than);
}

export type ChartId = 'cpu' | 'cores' | 'memory' | 'mounts' | 'diskio' | 'network' | 'load' | 'temperatures';

const pct = (used: number | undefined, total: number | undefined): number | null =>
  typeof used === 'number' && typeof total === 'number' && total > 0 ? (used / total) * 100 : null;

/**
 * A mount's used percent as df shows it: used / (used + available), what a non-root writer
 * sees, so reserved blocks do not make an empty disk look full. The same formula as
 * `MountUsage::usage_percent` in the shared crate (which gives the collector's `diskUsage`);
 * a mount of an older collector, without `availableBytes`, falls back to used / total as
 * there.
 */
export function mountPercent(m: MountUsage): number {
  const whole = typeof m.availableBytes === 'number' ? m.usedBytes + m.availableBytes : m.totalBytes;
  return whole > 0 ? Math.min(100, Math.max(0, (m.usedBytes / whole) * 100)) : 0;
}

/** The values of every live chart for one sample. */
export function liveValues(s: MetricSample): Record<ChartId, Values> {
  const cores: Values = {};
  (s.cpuCores ?? []).forEach((v, i) => {
    cores[`core ${i}`] = v;
  });
  const mounts: Values = {};
  for (const m of s.mounts ?? []) mounts[m.mountPoint] = mountPercent(m);
  // One line per sensor; none (not a line at 0) where the host has no sensors.
  const temperatures: Values = {};
  for (const t of s.temperatures ?? []) temperatures[t.label] = t.celsius;
  const network: Values = {};
  if (s.interfaces && s.interfaces.length > 0) {
    for (const i of s.interfaces) {
      network[`${i.name} rx`] = i.rxBytesPerSec;
      network[`${i.name} tx`] = i.txBytesPerSec;
    }
  } else if (s.network) {
    network['rx'] = s.network.rxBytesPerSec;
    network['tx'] = s.network.txBytesPerSec;
  } else {
    network['total'] = s.networkUsage;
  }
  return {
    cpu: { cpu: s.cpuUsage },
    cores,
    memory: { memory: s.memoryUsage, swap: s.swap ? pct(s.swap.usedBytes, s.swap.totalBytes) ?? 0 : null },
    mounts,
    diskio: { read: s.diskIo?.readBytesPerSec ?? null, write: s.diskIo?.writeBytesPerSec ?? null },
    network,
    load: {
      '1 min': s.loadAverage?.one ?? null,
      '5 min': s.loadAverage?.five ?? null,
      '15 min': s.loadAverage?.fifteen ?? null,
    },
    temperatures,
  };
}

/** The headline charts a history point fills (the only figures the history API keeps). */
export type HistoryChartId = 'cpu' | 'memory' | 'disk' | 'network' | 'load';

/** Average, minimum and maximum of each headline figure; `avg` first so it is the line. */
export function historyValues(p: HistoryPoint): Record<HistoryChartId, Values> {
  return {
    cpu: { avg: p.cpu.avg, min: p.cpu.min, max: p.cpu.max },
    memory: { avg: p.memory.avg, min: p.memory.min, max: p.memory.max },
    disk: { avg: p.disk.avg, min: p.disk.min, max: p.disk.max },
    network: { avg: p.network.avg, min: p.network.min, max: p.network.max, rx: p.networkRx, tx: p.networkTx },
    load: { '1 min': p.load1 },
  };
}

/** The live-chart values that history can prefill (headline figures at one-second buckets). */
export function prefillValues(p: HistoryPoint): Partial<Record<ChartId, Values>> {
  return {
    cpu: { cpu: p.cpu.avg },
    memory: { memory: p.memory.avg },
    load: { '1 min': p.load1 },
  };
}

/** The headline figures of a sample as the fleet shows them. */
export interface Headline {
  t: number;
  cpu: number;
  memory: number;
  disk: number;
  network: number;
  uptimeSecs?: number | null | undefined;
}

/** A live sample's headline (a `fleet.metrics` entry has the same fields). */
export function headlineOf(s: FleetSample): Headline {
  return {
    t: toSecs(s.timestamp),
    cpu: s.cpuUsage,
    memory: s.memoryUsage,
    disk: s.diskUsage,
    network: s.networkUsage,
    uptimeSecs: s.uptimeSecs,
  };
}

export function headlineOfLatest(s: LatestSample): Headline {
  return {
    t: toSecs(s.timestamp),
    cpu: s.cpuUsage,
    memory: s.memoryUsage,
    disk: s.diskUsage,
    network: s.networkUsage,
    uptimeSecs: s.uptimeSecs,
  };
}

/**
 * History points as chart columns: one column per key of `pick`, and a row of nulls wherever
 * buckets are missing (no samples), so the line breaks instead of bridging the hole.
 */
export function historyColumns(
  points: readonly HistoryPoint[],
  bucketSecs: number,
  keys: readonly string[],
  pick: (p: HistoryPoint) => Values,
): [number[], ...(number | null)[][]] {
  const xs: number[] = [];
  const cols: (number | null)[][] = keys.map(() => []);
  let prev: number | null = null;
  for (const p of points) {
    const t = toSecs(p.t);
    if (prev !== null && t - prev > bucketSecs * 1.5) {
      xs.push(prev + bucketSecs);
      for (const c of cols) c.push(null);
    }
    const values = pick(p);
    xs.push(t);
    keys.forEach((k, i) => {
      const v = values[k];
      cols[i]!.push(typeof v === 'number' && Number.isFinite(v) ? v : null);
    });
    prev = t;
  }
  return [xs, ...cols];
}
