// What the server's live charts hold and how they follow the server. Every sample of the stream
// is merged into one-hour buffers. The window on screen when the page opens comes from the
// gateway's replay of the stream (`since`: every figure, no REST round trip), the rest of the
// hour from the stored per-second history (headline figures only). Every resubscription (a
// reconnection) starts after the newest sample held, and a sample not newer than it is dropped,
// so the lines have no gap and no point twice.

import { api } from '../../api';
import { ChartFeed } from '../../charts/feed';
import { seriesColor } from '../../charts/theme';
import { type ChartId, isAfter, liveValues, prefillValues, toSecs } from '../../lib/samples';
import { SeriesBuffer, type Values } from '../../lib/series';
import { live, type LivePool } from '../../live';
import type { MetricSample } from '../../types';

/** What the live view keeps: one hour of per-second points per chart. */
export const LIVE_HOLD_SECS = 3_600;
/** A silence longer than this breaks the lines. */
const GAP_SECS = 5;

export interface ChartDef {
  id: ChartId;
  title: string;
  unit: 'percent' | 'rate' | 'plain';
  threshold?: 'cpu' | 'memory' | 'disk';
}

export const CHARTS: ChartDef[] = [
  { id: 'cpu', title: 'CPU, total', unit: 'percent', threshold: 'cpu' },
  { id: 'cores', title: 'CPU per core', unit: 'percent' },
  { id: 'memory', title: 'Memory and swap', unit: 'percent', threshold: 'memory' },
  { id: 'mounts', title: 'Disk usage per mount', unit: 'percent', threshold: 'disk' },
  { id: 'diskio', title: 'Disk I/O', unit: 'rate' },
  { id: 'network', title: 'Network per interface', unit: 'rate' },
  { id: 'load', title: 'Load average', unit: 'plain' },
  { id: 'temperatures', title: 'Temperatures, °C', unit: 'plain' },
];

function describe(id: ChartId) {
  return (key: string, i: number) => {
    if (id === 'network') {
      // rx and tx of one interface in neighbouring colours.
      return { color: seriesColor(i) };
    }
    if (id === 'diskio') return key === 'write' ? { color: seriesColor(2) } : { color: seriesColor(0) };
    return {};
  };
}

export interface LiveModel {
  buffers: Record<ChartId, SeriesBuffer>;
  feeds: Record<ChartId, ChartFeed>;
}

export function createLiveModel(): LiveModel {
  const buffers = {} as Record<ChartId, SeriesBuffer>;
  const feeds = {} as Record<ChartId, ChartFeed>;
  for (const c of CHARTS) {
    buffers[c.id] = new SeriesBuffer({ windowSecs: LIVE_HOLD_SECS, gapSecs: GAP_SECS });
    feeds[c.id] = new ChartFeed(describe(c.id));
  }
  return { buffers, feeds };
}

/** Merges one sample into every chart. */
export function pushSample(model: LiveModel, sample: MetricSample): void {
  const t = toSecs(sample.timestamp);
  const values = liveValues(sample);
  for (const c of CHARTS) {
    if (model.buffers[c.id].push(t, values[c.id])) model.feeds[c.id].fromBuffer(model.buffers[c.id]);
  }
}

type Points = { t: number; values: Values }[];

async function fillFromHistory(model: LiveModel, serverId: string, fromSecs: number, toSecsValue: number): Promise<void> {
  const history = await api.history(serverId, new Date(fromSecs * 1000), new Date(toSecsValue * 1000), '1s');
  const per: Partial<Record<ChartId, Points>> = {};
  for (const p of history.points) {
    const t = toSecs(p.t);
    const values = prefillValues(p);
    for (const [id, v] of Object.entries(values) as [ChartId, Values][]) (per[id] ??= []).push({ t, values: v });
  }
  for (const [id, points] of Object.entries(per) as [ChartId, Points][]) {
    model.buffers[id].merge(points);
    model.feeds[id].fromBuffer(model.buffers[id]);
  }
}

export interface FollowOptions {
  /** Each sample the charts took. */
  onSample?: (sample: MetricSample) => void;
  /** The stored history before the window could not be read. */
  onError?: (err: Error) => void;
  /** For tests: the pool, the history reader and the clock. */
  pool?: LivePool;
  fill?: (fromSecs: number, toSecs: number) => Promise<void>;
  nowSecs?: number;
}

/**
 * Feeds `model` with the server's samples until `stop`: the last `windowSecs` replayed by the
 * gateway, the rest of the hour (and whatever the replay lacked) from the stored history, then
 * live. `debug` is the benchmark's way in.
 */
export function followServer(model: LiveModel, serverId: string, windowSecs: number, options: FollowOptions = {}) {
  const pool = options.pool ?? live;
  const read = options.fill ?? ((from: number, to: number) => fillFromHistory(model, serverId, from, to));
  // A second or so is no hole (samples are a second apart): no request for it.
  const fill = async (from: number, to: number) => {
    if (to - from >= 2) await read(from, to);
  };
  const opened = options.nowSecs ?? Date.now() / 1000;
  const sinceSecs = opened - Math.min(windowSecs, LIVE_HOLD_SECS);
  const since = new Date(sinceSecs * 1000).toISOString();
  let newest: MetricSample | null = null;
  let oldest: number | null = null;
  let replayed = false;
  const stopSamples = pool.onSample((s) => {
    if (s.serverId !== serverId || !isAfter(s.timestamp, newest?.timestamp)) return;
    newest = s;
    oldest ??= toSecs(s.timestamp);
    pushSample(model, s);
    options.onSample?.(s);
  });
  const stopReplayed = pool.onReplayed((r) => {
    if (r.serverId !== serverId || replayed) return;
    replayed = true;
    // The stream may no longer hold all of the window (it is bounded in bytes as well as in
    // time): what it lacked before its oldest sample comes from the stored history.
    fill(sinceSecs, oldest ?? opened).catch(() => undefined);
  });
  const stopWatch = pool.watch(serverId, { since: () => newest?.timestamp ?? since });
  // The hour before the window, from what the persister stored.
  fill(opened - LIVE_HOLD_SECS, sinceSecs).catch((err: Error) => options.onError?.(err));
  return {
    stop(): void {
      stopSamples();
      stopReplayed();
      stopWatch();
    },
    debug: {
      push: (s: MetricSample) => pushSample(model, s),
      points: () => Object.fromEntries(CHARTS.map((c) => [c.id, model.buffers[c.id].length])),
      newest: () => newest,
      /** Unix seconds of the first sample the stream delivered (replayed or live). */
      streamedFrom: () => oldest,
      replayed: () => replayed,
      /** Breaks in the CPU line (rows of nulls: a silence, or a hole in the stream). */
      gaps: () => model.buffers.cpu.column('cpu')?.filter((v) => v === null).length ?? 0,
    },
  };
}
