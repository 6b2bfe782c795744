// A time-series chart: a uPlot instance sized to its box, redrawn when its feed changes, with
// alert periods shaded behind the lines and thresholds drawn across.

import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { useEffect, useRef, useState } from 'preact/hooks';
import { formatLoad, formatPercent, formatRate } from '../lib/format';
import { schedule } from '../lib/frame';
import { type Aligned, envelope, lowerBound } from '../lib/series';
import type { ChartFeed } from './feed';
import { alpha, onThemeChange, palette } from './theme';

export type Unit = 'percent' | 'rate' | 'plain';

export interface AlertSpan {
  /** Unix seconds. */
  start: number;
  end: number | null;
  severity: 'warning' | 'critical';
}

export interface Threshold {
  value: number;
  severity: 'warning' | 'critical';
}

export interface ChartProps {
  id: string;
  title: string;
  unit: Unit;
  feed: ChartFeed;
  height?: number;
  alerts?: readonly AlertSpan[];
  thresholds?: readonly Threshold[];
  empty?: string;
  note?: string;
  /** The x axis: the last `window` seconds of the data, or a fixed span (unix seconds). */
  x?: { window: number } | { from: number; to: number };
}

export function formatValue(unit: Unit, v: number | null | undefined): string {
  if (v === null || v === undefined) return '–';
  return unit === 'percent' ? formatPercent(v) : unit === 'rate' ? formatRate(v) : formatLoad(v);
}

function axisValue(unit: Unit, v: number): string {
  if (unit === 'percent') return `${v}%`;
  if (unit === 'rate') return formatRate(v).replace(/\u00a0/g, ' ');
  return String(Math.round(v * 100) / 100);
}

const clock = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const clockSecs = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
const dayClock = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
const day = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });

/** Time axis labels in the browser's zone and the user's locale, as fine as the tick spacing. */
export function timeLabels(splits: number[], incrSecs: number, spanSecs: number): string[] {
  const f = incrSecs >= 86_400 ? day : spanSecs > 86_400 ? dayClock : incrSecs < 60 ? clockSecs : clock;
  return splits.map((t) => f.format(new Date(t * 1000)));
}

function makeOptions(props: ChartProps, width: number, overlay: { current: Overlay }): uPlot.Options {
  const p = palette();
  const { feed, unit } = props;
  const axis = {
    stroke: p.axis,
    grid: { stroke: p.grid, width: 1 },
    ticks: { stroke: p.grid, width: 1 },
    font: '11px system-ui, sans-serif',
  };
  const series: uPlot.Series[] = [
    {},
    ...feed.series.map((s) => ({
      label: s.label ?? s.key,
      stroke: s.edge ? 'transparent' : (s.color ?? p.series[0]!),
      width: s.edge ? 0 : (s.width ?? 1),
      ...(s.dash ? { dash: s.dash } : {}),
      points: { show: false },
      value: (_u: uPlot, v: number | null) => formatValue(unit, v),
    })),
  ];
  return {
    width,
    height: props.height ?? 180,
    series,
    bands: feed.bands.map(([upper, lower]) => ({ series: [upper, lower] as [number, number], fill: p.band })),
    scales: {
      x: { time: true, ...xRange(props.x) },
      y: unit === 'percent' ? { range: [0, 100] } : { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] },
    },
    axes: [
      {
        ...axis,
        values: (u, splits, _axis, _space, incr) =>
          timeLabels(splits, incr, (u.scales['x']?.max ?? 0) - (u.scales['x']?.min ?? 0)),
      },
      { ...axis, size: unit === 'rate' ? 78 : 48, values: (_u, splits) => splits.map((v) => axisValue(unit, v)) },
    ],
    legend: { show: true, live: true },
    cursor: { drag: { x: false, y: false }, points: { size: 5 } },
    hooks: {
      drawClear: [(u) => drawAlerts(u, overlay.current)],
      draw: [(u) => drawThresholds(u, overlay.current)],
    },
  };
}

function xRange(x: ChartProps['x']): Partial<uPlot.Scale> {
  if (!x) return {};
  if ('window' in x) {
    const span = x.window;
    return {
      range: (_u, _min, max) => {
        const end = Number.isFinite(max) && max !== null ? max : Date.now() / 1000;
        return [end - span, end];
      },
    };
  }
  return { range: () => [x.from, x.to] };
}

/**
 * What the chart is given: the data as it is, or, when a live window holds more than two points
 * per pixel (an hour of seconds across 600 px), its min/max envelope per pixel-wide bucket, which
 * draws the same but costs a fraction.
 */
export function visibleData(data: Aligned, x: ChartProps['x'], widthPx: number): Aligned {
  if (!x || !('window' in x) || widthPx <= 0) return data;
  const xs = data[0];
  const last = xs[xs.length - 1];
  if (last === undefined) return data;
  const from = last - x.window;
  const shown = xs.length - lowerBound(xs, from);
  if (shown <= 2 * widthPx) return data;
  // Charts with many series (a core each) get wider buckets: about as many points in all.
  const series = data.length - 1;
  const pixels = Math.max(1, Math.ceil(series / 8));
  const bucket = Math.max(2, Math.ceil((x.window / widthPx) * pixels));
  return envelope(data, from, bucket);
}

interface Overlay {
  alerts: readonly AlertSpan[];
  thresholds: readonly Threshold[];
}

function drawAlerts(u: uPlot, overlay: Overlay): void {
  if (overlay.alerts.length === 0) return;
  const p = palette();
  const { left, top, width, height } = u.bbox;
  const now = Date.now() / 1000;
  const ctx = u.ctx;
  ctx.save();
  for (const span of overlay.alerts) {
    const x0 = Math.max(left, u.valToPos(span.start, 'x', true));
    const x1 = Math.min(left + width, u.valToPos(span.end ?? now, 'x', true));
    if (x1 <= x0) continue;
    ctx.fillStyle = alpha(span.severity === 'critical' ? p.critical : p.warning, 0.14);
    ctx.fillRect(x0, top, Math.max(1, x1 - x0), height);
  }
  ctx.restore();
}

function drawThresholds(u: uPlot, overlay: Overlay): void {
  if (overlay.thresholds.length === 0) return;
  const p = palette();
  const { left, top, width, height } = u.bbox;
  const ctx = u.ctx;
  ctx.save();
  ctx.setLineDash([4 * devicePixelRatio, 4 * devicePixelRatio]);
  ctx.lineWidth = devicePixelRatio;
  for (const t of overlay.thresholds) {
    const y = Math.round(u.valToPos(t.value, 'y', true));
    if (y < top || y > top + height) continue;
    ctx.strokeStyle = t.severity === 'critical' ? p.critical : p.warning;
    ctx.beginPath();
    ctx.moveTo(left, y);
    ctx.lineTo(left + width, y);
    ctx.stroke();
  }
  ctx.restore();
}

export function Chart(props: ChartProps) {
  const box = useRef<HTMLDivElement>(null);
  const overlay = useRef<Overlay>({ alerts: [], thresholds: [] });
  const plot = useRef<uPlot | null>(null);
  const [empty, setEmpty] = useState(props.feed.points === 0);
  overlay.current = { alerts: props.alerts ?? [], thresholds: props.thresholds ?? [] };

  useEffect(() => {
    plot.current?.redraw(false);
  }, [props.alerts, props.thresholds]);

  useEffect(() => {
    const host = box.current;
    if (!host) return;
    const { feed } = props;
    let builtFor = -1;
    let visible = true;
    let stale = false;
    const owner = {};

    const build = () => {
      plot.current?.destroy();
      const width = Math.max(200, Math.floor(host.clientWidth));
      plot.current = new uPlot(makeOptions(props, width, overlay), feed.data as uPlot.AlignedData, host);
      builtFor = feed.seriesVersion;
    };
    const draw = () => {
      stale = false;
      drawnAt = performance.now();
      if (builtFor !== feed.seriesVersion || !plot.current) build();
      else {
        const u = plot.current;
        const data = visibleData(feed.data, props.x, u.bbox.width / devicePixelRatio);
        // Drawn now (not in uPlot's microtask), so the frame's timing includes the drawing.
        u.batch(() => u.setData(data as uPlot.AlignedData));
      }
      host.dataset['points'] = String(feed.points);
      setEmpty(feed.points === 0);
    };
    // A chart whose pixel stands for several seconds (an hour across 600 px: 6 s) gains nothing
    // from a redraw every second: it redraws when the newest point has moved about a pixel.
    let drawnAt = 0;
    let later: ReturnType<typeof setTimeout> | undefined;
    const minInterval = () => {
      const x = props.x;
      if (!x || !('window' in x) || !plot.current) return 0;
      const secsPerPixel = x.window / Math.max(1, plot.current.bbox.width / devicePixelRatio);
      // (One redraw per pixel the newest point moves; at most every 5 s.)
      return secsPerPixel <= 1 ? 0 : Math.min(5_000, secsPerPixel * 1_000);
    };
    const changed = () => {
      if (!visible) {
        stale = true;
        return;
      }
      const wait = drawnAt + minInterval() - performance.now();
      if (wait > 16) {
        if (later === undefined) {
          later = setTimeout(() => {
            later = undefined;
            if (visible) schedule(owner, draw, `chart:${props.id}`);
            else stale = true;
          }, wait);
        }
        return;
      }
      schedule(owner, draw, `chart:${props.id}`);
    };
    draw();
    const stopFeed = feed.subscribe(changed);
    const stopTheme = onThemeChange(build);
    const resize = new ResizeObserver(() => {
      const width = Math.max(200, Math.floor(host.clientWidth));
      if (plot.current && Math.abs(plot.current.width - width) > 1) {
        plot.current.setSize({ width, height: props.height ?? 180 });
      }
    });
    resize.observe(host);
    const seen = new IntersectionObserver((entries) => {
      visible = entries.some((e) => e.isIntersecting);
      if (visible && stale) schedule(owner, draw, `chart:${props.id}`);
    });
    seen.observe(host);
    return () => {
      clearTimeout(later);
      stopFeed();
      stopTheme();
      resize.disconnect();
      seen.disconnect();
      plot.current?.destroy();
      plot.current = null;
    };
    // The feed and the unit define the chart; other props are read through refs.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [props.feed, props.unit, props.height, JSON.stringify(props.x ?? null)]);

  return (
    <figure class="chart" data-chart={props.id}>
      <figcaption>
        <span class="chart-title">{props.title}</span>
        {props.note ? <span class="chart-note">{props.note}</span> : null}
      </figcaption>
      <div class="chart-box" role="img" aria-label={props.title}>
        <div class="chart-plot" ref={box} />
        {empty ? <p class="chart-empty">{props.empty ?? 'Waiting for data…'}</p> : null}
      </div>
    </figure>
  );
}
