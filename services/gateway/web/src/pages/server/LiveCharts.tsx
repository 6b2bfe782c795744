// The server's live charts: every sample of the stream merged into one-hour buffers, prefilled
// from the per-second history, with the hole of a reconnection filled from history again.

import { useEffect, useMemo, useState } from 'preact/hooks';
import { api } from '../../api';
import { type AlertSpan, Chart, type Threshold } from '../../charts/Chart';
import { ChartFeed } from '../../charts/feed';
import { seriesColor } from '../../charts/theme';
import { ErrorText } from '../../components/common';
import { type ChartId, liveValues, prefillValues, toSecs } from '../../lib/samples';
import { SeriesBuffer, type Values } from '../../lib/series';
import { live } from '../../live';
import type { MetricSample } from '../../types';

/** What the live view keeps: one hour of per-second points per chart. */
export const LIVE_HOLD_SECS = 3_600;
/** A silence longer than this breaks the lines. */
const GAP_SECS = 5;

export const LIVE_WINDOWS = [
  { secs: 300, label: '5 min' },
  { secs: 900, label: '15 min' },
  { secs: 3_600, label: '1 h' },
];

interface ChartDef {
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

/** A server without sensors reports no temperatures: their chart is not shown at all. */
function shown(c: ChartDef, hasSensors: boolean): boolean {
  return c.id !== 'temperatures' || hasSensors;
}

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
  if (toSecsValue - fromSecs < 2) return;
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

export function LiveCharts({
  serverId,
  windowSecs,
  alerts,
  thresholds,
}: {
  serverId: string;
  windowSecs: number;
  alerts: readonly AlertSpan[];
  thresholds: Partial<Record<'cpu' | 'memory' | 'disk', Threshold[]>>;
}) {
  const model = useMemo(() => createLiveModel(), [serverId]);
  const [error, setError] = useState<string | null>(null);
  const [hasSensors, setHasSensors] = useState(false);

  useEffect(() => {
    let newest: MetricSample | null = null;
    const stopSamples = live.onSample((s) => {
      if (s.serverId !== serverId) return;
      newest = s;
      pushSample(model, s);
      if (s.temperatures && s.temperatures.length > 0) setHasSensors(true);
    });
    // The benchmark fills the charts with an hour of samples through this.
    const debug = (window as unknown as { flickDebug?: Record<string, unknown> }).flickDebug;
    if (debug) {
      debug['serverCharts'] = {
        push: (s: MetricSample) => pushSample(model, s),
        points: () => Object.fromEntries(CHARTS.map((c) => [c.id, model.buffers[c.id].length])),
        newest: () => newest,
      };
    }
    const stopWatch = live.watch(serverId, 0);
    const now = Date.now() / 1000;
    // Prefill the headline charts with what the persister already stored.
    fillFromHistory(model, serverId, now - LIVE_HOLD_SECS, now).catch((err) =>
      setError(`The stored history could not be loaded: ${(err as Error).message}`),
    );
    const stopReconnect = live.onReconnect(() => {
      const last = model.buffers.cpu.last;
      if (last !== undefined) void fillFromHistory(model, serverId, last, Date.now() / 1000).catch(() => undefined);
    });
    return () => {
      stopSamples();
      stopWatch();
      stopReconnect();
    };
  }, [serverId, model]);

  return (
    <>
      <ErrorText error={error} />
      <div class="charts">
        {CHARTS.filter((c) => shown(c, hasSensors)).map((c) => (
          <Chart
            key={c.id}
            id={c.id}
            title={c.title}
            unit={c.unit}
            feed={model.feeds[c.id]}
            x={{ window: windowSecs }}
            alerts={alerts}
            thresholds={c.threshold ? (thresholds[c.threshold] ?? []) : []}
            empty={c.id === 'cpu' || c.id === 'memory' || c.id === 'load' ? 'Waiting for the first sample…' : 'Waiting for a live sample…'}
          />
        ))}
      </div>
    </>
  );
}
