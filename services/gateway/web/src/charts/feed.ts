// What a chart draws: its series and their arrays. Pages write into a feed; the chart redraws in
// the next frame (only when it is on screen).

import type { Aligned, SeriesBuffer } from '../lib/series';
import { seriesColor } from './theme';

export interface SeriesSpec {
  key: string;
  label?: string;
  color?: string;
  width?: number;
  dash?: number[];
  /** An edge of a min/max band: not stroked, not in the legend. */
  edge?: boolean;
}

export class ChartFeed {
  series: SeriesSpec[] = [];
  data: Aligned = [[]];
  /** Pairs of series indexes (1-based, as uPlot counts) filled between: [max, min]. */
  bands: [number, number][] = [];
  version = 0;
  seriesVersion = 0;
  private readonly listeners = new Set<() => void>();
  private keysSeen = -1;

  constructor(private readonly describe: (key: string, index: number) => Partial<SeriesSpec> = () => ({})) {}

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get points(): number {
    return this.data[0].length;
  }

  private emit(): void {
    this.version += 1;
    for (const l of this.listeners) l();
  }

  /** Shows a buffer's columns; new keys (a new core, mount or interface) rebuild the chart. */
  fromBuffer(buffer: SeriesBuffer, keys?: readonly string[]): void {
    const shown = keys ?? buffer.keys;
    if (buffer.keysVersion !== this.keysSeen || shown.length !== this.series.length) {
      this.keysSeen = buffer.keysVersion;
      this.setSeries(shown.map((key, i) => ({ key, label: key, color: seriesColor(i), ...this.describe(key, i) })));
    }
    this.data = buffer.data(shown);
    this.emit();
  }

  setSeries(series: SeriesSpec[], bands: [number, number][] = []): void {
    this.series = series;
    this.bands = bands;
    this.seriesVersion += 1;
  }

  /** Replaces everything (history). */
  set(data: Aligned, series: SeriesSpec[], bands: [number, number][] = []): void {
    this.setSeries(series, bands);
    this.data = data;
    this.emit();
  }

  clear(): void {
    this.data = [[], ...this.series.map(() => [] as (number | null)[])];
    this.emit();
  }
}
