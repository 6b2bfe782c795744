// The fleet's per-second CPU sparkline: a bare uPlot (no axes, legend or cursor).

import uPlot from 'uplot';
import { useLayoutEffect, useRef } from 'preact/hooks';
import { SPARK_SECS } from '../stores/fleet';
import type { Sparkline } from '../lib/series';
import { alpha, onThemeChange, palette } from './theme';

export const SPARK_WIDTH = 120;
export const SPARK_HEIGHT = 28;

function options(): uPlot.Options {
  const p = palette();
  return {
    width: SPARK_WIDTH,
    height: SPARK_HEIGHT,
    pxAlign: false,
    cursor: { show: false },
    legend: { show: false },
    select: { show: false, left: 0, top: 0, width: 0, height: 0 },
    scales: { x: { time: false, range: (_u, _min, max) => [max - SPARK_SECS, max] }, y: { range: [0, 100] } },
    axes: [{ show: false }, { show: false }],
    series: [{}, { stroke: p.series[0]!, width: 1, fill: alpha(p.series[0]!, 0.15), points: { show: false } }],
  };
}

/** Redrawn whenever `version` changes; the same instance shows whichever row it is given. */
export function Spark({ spark, version, label }: { spark: Sparkline; version: number; label: string }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);

  useLayoutEffect(() => {
    const host = box.current;
    if (!host) return;
    const build = () => {
      plot.current?.destroy();
      plot.current = new uPlot(options(), [[], []], host);
    };
    build();
    const stop = onThemeChange(build);
    return () => {
      stop();
      plot.current?.destroy();
      plot.current = null;
    };
  }, []);

  useLayoutEffect(() => {
    const u = plot.current;
    u?.batch(() => u.setData([spark.xs, spark.ys]));
    if (box.current) box.current.dataset['points'] = String(spark.xs.length);
  }, [spark, version]);

  return <div class="spark" ref={box} role="img" aria-label={label} />;
}
