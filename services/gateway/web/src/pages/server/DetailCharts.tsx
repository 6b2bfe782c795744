// The stored detail of a range: per core, per mount, per interface, swap, load and disk I/O,
// a line each (bucket averages), from `/servers/{id}/metrics/detail`. Read one series at a
// time: the gateway runs at most two history queries per user at once.

import { useEffect, useMemo, useState } from 'preact/hooks';
import { api, errorText } from '../../api';
import { type AlertSpan, Chart, type Threshold } from '../../charts/Chart';
import { ChartFeed } from '../../charts/feed';
import { seriesColor } from '../../charts/theme';
import { bucketParam } from '../../lib/buckets';
import { detailColumns } from '../../lib/detail';
import type { DetailSeries } from '../../types';

interface Def {
  series: DetailSeries;
  title: string;
  unit: 'percent' | 'rate' | 'plain';
  threshold?: 'disk';
  /** Shown only when the server stored some (temperatures: hosts with sensors). */
  optional?: boolean;
}

const DEFS: Def[] = [
  { series: 'cores', title: 'CPU per core', unit: 'percent' },
  { series: 'mounts', title: 'Disk usage per mount', unit: 'percent', threshold: 'disk' },
  { series: 'disk_io', title: 'Disk I/O', unit: 'rate' },
  { series: 'interfaces', title: 'Network per interface', unit: 'rate' },
  { series: 'swap', title: 'Swap in use', unit: 'percent' },
  { series: 'load', title: 'Load average (1, 5, 15 min)', unit: 'plain' },
  { series: 'temperatures', title: 'Temperatures (°C)', unit: 'plain', optional: true },
];

export function DetailCharts({
  serverId,
  span,
  bucketSecs,
  alerts,
  thresholds,
  reload,
}: {
  serverId: string;
  /** Unix seconds; `null` until the headline history has chosen the window. */
  span: { from: number; to: number } | null;
  bucketSecs: number | null;
  alerts: readonly AlertSpan[];
  thresholds: Partial<Record<'disk', Threshold[]>>;
  reload: number;
}) {
  const feeds = useMemo(() => DEFS.map(() => new ChartFeed()), [serverId]);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [loaded, setLoaded] = useState(0);
  const [present, setPresent] = useState<Record<string, boolean>>({});

  useEffect(() => {
    if (!span || !bucketSecs) return;
    const controller = new AbortController();
    setErrors({});
    setLoaded(0);
    void (async () => {
      for (const [i, def] of DEFS.entries()) {
        try {
          const history = await api.detail(
            serverId,
            def.series,
            new Date(span.from * 1000),
            new Date(span.to * 1000),
            bucketParam(bucketSecs),
            controller.signal,
          );
          const { names, data } = detailColumns(history);
          setPresent((p) => ({ ...p, [def.series]: names.length > 0 }));
          feeds[i]!.set(
            data,
            names.map((name, k) => ({ key: name, label: name, color: seriesColor(k), width: 1.25 })),
          );
        } catch (err) {
          if ((err as Error).name === 'AbortError') return;
          feeds[i]!.set([[]], []);
          setErrors((e) => ({ ...e, [def.series]: errorText(err) }));
        }
        setLoaded(i + 1);
      }
    })();
    return () => controller.abort();
  }, [serverId, span?.from, span?.to, bucketSecs, reload, feeds]);

  return (
    <div class="charts detail-charts" data-detail-loaded={loaded === DEFS.length ? 'true' : 'false'}>
      {DEFS.map((d, i) =>
        d.optional && !present[d.series] ? null : (
        <Chart
          key={d.series}
          id={`d-${d.series}`}
          title={d.title}
          unit={d.unit}
          feed={feeds[i]!}
          {...(span ? { x: span } : {})}
          alerts={alerts}
          thresholds={d.threshold ? (thresholds[d.threshold] ?? []) : []}
          empty={errors[d.series] ?? (i < loaded ? 'Nothing stored in this range.' : 'Loading…')}
        />
        ),
      )}
    </div>
  );
}
