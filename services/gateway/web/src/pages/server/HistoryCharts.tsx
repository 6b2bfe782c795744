// The server's history for a range: averages with a min/max band per bucket, from the REST API,
// then the stored detail (per core, mount, interface; swap, load, disk I/O).

import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, errorText } from '../../api';
import { type AlertSpan, Chart, type Threshold } from '../../charts/Chart';
import { ChartFeed, type SeriesSpec } from '../../charts/feed';
import { palette } from '../../charts/theme';
import { ErrorText, Loading } from '../../components/common';
import { bucketParam, historyWindow, type RangeOption } from '../../lib/buckets';
import { formatDuration } from '../../lib/format';
import { type HistoryChartId, historyColumns, historyValues } from '../../lib/samples';
import type { History } from '../../types';
import { DetailCharts } from './DetailCharts';

interface Def {
  id: HistoryChartId;
  title: string;
  unit: 'percent' | 'rate' | 'plain';
  threshold?: 'cpu' | 'memory' | 'disk';
  keys: string[];
}

const DEFS: Def[] = [
  { id: 'cpu', title: 'CPU, total', unit: 'percent', threshold: 'cpu', keys: ['avg', 'max', 'min'] },
  { id: 'memory', title: 'Memory', unit: 'percent', threshold: 'memory', keys: ['avg', 'max', 'min'] },
  { id: 'disk', title: 'Disk usage (fullest filesystem)', unit: 'percent', threshold: 'disk', keys: ['avg', 'max', 'min'] },
  { id: 'network', title: 'Network', unit: 'rate', keys: ['avg', 'max', 'min', 'rx', 'tx'] },
  { id: 'load', title: 'Load average (1 min)', unit: 'plain', keys: ['1 min'] },
];

function seriesFor(def: Def): { series: SeriesSpec[]; bands: [number, number][] } {
  const p = palette();
  const series: SeriesSpec[] = def.keys.map((key, i) => {
    if (key === 'max' || key === 'min') return { key, label: key, edge: true };
    if (key === 'avg') return { key, label: 'average', color: p.series[0]!, width: 1.5 };
    if (key === 'rx') return { key, label: 'received', color: p.series[1]!, width: 1 };
    if (key === 'tx') return { key, label: 'sent', color: p.series[4]!, width: 1, dash: [5, 3] };
    return { key, label: key, color: p.series[i % p.series.length]! };
  });
  const bands: [number, number][] = def.keys.includes('max') ? [[def.keys.indexOf('max') + 1, def.keys.indexOf('min') + 1]] : [];
  return { series, bands };
}

export function HistoryCharts({
  serverId,
  range,
  alerts,
  thresholds,
}: {
  serverId: string;
  range: RangeOption;
  alerts: readonly AlertSpan[];
  thresholds: Partial<Record<'cpu' | 'memory' | 'disk', Threshold[]>>;
}) {
  const feeds = useMemo(
    () => Object.fromEntries(DEFS.map((d) => [d.id, new ChartFeed()])) as Record<HistoryChartId, ChartFeed>,
    [serverId],
  );
  const [state, setState] = useState<{ loading: boolean; error: string | null; history: History | null }>({
    loading: true,
    error: null,
    history: null,
  });
  const [span, setSpan] = useState<{ from: number; to: number } | null>(null);
  const [reload, setReload] = useState(0);
  const box = useRef<HTMLDivElement>(null);

  useEffect(() => {
    const controller = new AbortController();
    const width = box.current?.clientWidth ?? window.innerWidth;
    const w = historyWindow(range.secs, Date.now(), width);
    setState((s) => ({ ...s, loading: true, error: null }));
    api
      .history(serverId, w.from, w.to, bucketParam(w.bucketSecs), controller.signal)
      .then((history) => {
        for (const def of DEFS) {
          const { series, bands } = seriesFor(def);
          const data = historyColumns(history.points, history.bucketSecs, def.keys, (p) => historyValues(p)[def.id]);
          feeds[def.id].set(data, series, bands);
        }
        setSpan({ from: w.from.getTime() / 1000, to: w.to.getTime() / 1000 });
        setState({ loading: false, error: null, history });
      })
      .catch((err) => {
        if ((err as Error).name === 'AbortError') return;
        setState({ loading: false, error: errorText(err), history: null });
      });
    return () => controller.abort();
  }, [serverId, range.key, reload, feeds]);

  const h = state.history;
  return (
    <div ref={box} data-range={range.key} data-loaded={h ? 'true' : 'false'}>
      <div class="history-meta">
        {state.loading ? <Loading what="Loading the history" /> : null}
        {h && !state.loading ? (
          <p class="muted">
            {h.points.length} points of {formatDuration(h.bucketSecs)} (
            {h.source === 'raw' ? 'raw samples' : `${h.source} aggregates`}); average line, minimum–maximum band;
            the detail below, bucket averages of the stored samples.{' '}
            <button type="button" class="link" onClick={() => setReload((n) => n + 1)}>
              Refresh
            </button>
          </p>
        ) : null}
        <ErrorText error={state.error} retry={() => setReload((n) => n + 1)} />
      </div>
      <div class="charts">
        {DEFS.map((d) => (
          <Chart
            key={d.id}
            id={`h-${d.id}`}
            title={d.title}
            unit={d.unit}
            feed={feeds[d.id]}
            {...(span ? { x: span } : {})}
            alerts={alerts}
            thresholds={d.threshold ? (thresholds[d.threshold] ?? []) : []}
            empty={state.loading ? 'Loading…' : 'No samples stored in this range.'}
          />
        ))}
      </div>
      <DetailCharts
        serverId={serverId}
        span={span}
        bucketSecs={h?.bucketSecs ?? null}
        alerts={alerts}
        thresholds={{ disk: thresholds.disk ?? [] }}
        reload={reload}
      />
    </div>
  );
}
