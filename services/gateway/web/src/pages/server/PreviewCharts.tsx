// The threshold preview on the stored samples it replayed: each metric's hour (per-10-second
// maximum, what a threshold is crossed by), the alerts the proposed rule would have fired
// shaded, its thresholds drawn across. Shown before the rule is saved.

import { useEffect, useMemo, useState } from 'preact/hooks';
import { api, errorText } from '../../api';
import { Chart } from '../../charts/Chart';
import { ChartFeed } from '../../charts/feed';
import { palette } from '../../charts/theme';
import { ErrorText } from '../../components/common';
import { METRIC_NAMES } from '../../lib/alerts';
import { bucketParam } from '../../lib/buckets';
import { previewLines, previewSpans } from '../../lib/preview';
import { historyColumns, historyValues } from '../../lib/samples';
import type { Preview } from '../../types';

const BUCKET_SECS = 10;

export function PreviewCharts({ serverId, previews }: { serverId: string; previews: readonly Preview[] }) {
  const feeds = useMemo(() => previews.map(() => new ChartFeed()), [previews]);
  const [error, setError] = useState<string | null>(null);
  const first = previews[0];

  useEffect(() => {
    if (!first) return;
    const controller = new AbortController();
    api
      .history(serverId, new Date(first.from), new Date(first.to), bucketParam(BUCKET_SECS), controller.signal)
      .then((history) => {
        const color = palette().series[0]!;
        previews.forEach((p, i) => {
          const data = historyColumns(history.points, history.bucketSecs, ['max'], (point) => historyValues(point)[p.metric]);
          feeds[i]!.set(data, [{ key: 'max', label: 'maximum', color, width: 1.5 }]);
        });
      })
      .catch((err) => {
        if ((err as Error).name !== 'AbortError') setError(errorText(err));
      });
    return () => controller.abort();
  }, [serverId, previews, feeds]);

  if (!first) return null;
  const x = { from: Date.parse(first.from) / 1000, to: Date.parse(first.to) / 1000 };
  return (
    <div class="charts preview-charts" aria-label="The preview on the chart">
      <ErrorText error={error} />
      {previews.map((p, i) => (
        <Chart
          key={p.metric}
          id={`preview-${p.metric}`}
          title={`${METRIC_NAMES[p.metric] ?? p.metric}: what the proposed rule would have fired`}
          unit="percent"
          feed={feeds[i]!}
          height={140}
          x={x}
          alerts={previewSpans(p.alerts)}
          thresholds={previewLines(p.rule)}
          empty="No samples stored in this hour."
        />
      ))}
    </div>
  );
}
