// The server's live charts: the charts of `liveModel.ts`, drawn over the window chosen.

import { useEffect, useMemo, useState } from 'preact/hooks';
import { type AlertSpan, Chart, type Threshold } from '../../charts/Chart';
import { ErrorText } from '../../components/common';
import { CHARTS, type ChartDef, createLiveModel, followServer } from './liveModel';

export const LIVE_WINDOWS = [
  { secs: 300, label: '5 min' },
  { secs: 900, label: '15 min' },
  { secs: 3_600, label: '1 h' },
];

/** A server without sensors reports no temperatures: their chart is not shown at all. */
function shown(c: ChartDef, hasSensors: boolean): boolean {
  return c.id !== 'temperatures' || hasSensors;
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
    const follower = followServer(model, serverId, windowSecs, {
      onSample: (s) => {
        if (s.temperatures && s.temperatures.length > 0) setHasSensors(true);
      },
      onError: (err) => setError(`The stored history could not be loaded: ${err.message}`),
    });
    // The benchmark fills the charts with an hour of samples through this.
    const debug = (window as unknown as { flickDebug?: Record<string, unknown> }).flickDebug;
    if (debug) debug['serverCharts'] = follower.debug;
    return follower.stop;
    // The window chosen when the page opened: widening it later shows the stored history.
    // eslint-disable-next-line react-hooks/exhaustive-deps
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
