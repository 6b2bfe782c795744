// The history ranges of the server page and the bucket each one asks the API for.

export type RangeKey = 'live' | '1h' | '6h' | '24h' | '7d' | '30d';

export interface RangeOption {
  key: RangeKey;
  label: string;
  /** Length in seconds; 0 for live. */
  secs: number;
}

export const RANGES: readonly RangeOption[] = [
  { key: 'live', label: 'Live', secs: 0 },
  { key: '1h', label: '1 h', secs: 3_600 },
  { key: '6h', label: '6 h', secs: 6 * 3_600 },
  { key: '24h', label: '24 h', secs: 86_400 },
  { key: '7d', label: '7 d', secs: 7 * 86_400 },
  { key: '30d', label: '30 d', secs: 30 * 86_400 },
];

export function rangeByKey(key: string | null | undefined): RangeOption {
  return RANGES.find((r) => r.key === key) ?? RANGES[0]!;
}

/** Round bucket sizes (seconds); from a minute up they line up with the TimescaleDB aggregates. */
export const NICE_BUCKETS: readonly number[] = [
  1, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1_800, 3_600, 7_200, 10_800, 21_600, 43_200, 86_400,
];

/** Never more points than the API's default target. */
export const MAX_POINTS = 1_000;
/** Never fewer than this many, even on a narrow screen. */
export const MIN_POINTS = 200;

/**
 * The smallest round bucket that gives at most one point per pixel of the chart (bounded to
 * 200–1,000 points), so that a phone does not fetch what it cannot draw.
 */
export function bucketFor(rangeSecs: number, widthPx = MAX_POINTS): number {
  const points = Math.max(MIN_POINTS, Math.min(MAX_POINTS, Math.floor(widthPx)));
  const wanted = Math.ceil(rangeSecs / points);
  const nice = NICE_BUCKETS.find((b) => b >= wanted);
  return nice ?? Math.ceil(wanted / 86_400) * 86_400;
}

export interface HistoryWindow {
  from: Date;
  to: Date;
  bucketSecs: number;
}

/**
 * The query for a range ending now: `from` is aligned down to a bucket boundary so every bucket
 * but the last is complete, and the same buckets come back on every refresh.
 */
export function historyWindow(rangeSecs: number, now: number, widthPx?: number): HistoryWindow {
  const bucketSecs = bucketFor(rangeSecs, widthPx);
  const toSecs = Math.ceil(now / 1000);
  const fromSecs = Math.floor((toSecs - rangeSecs) / bucketSecs) * bucketSecs;
  return { from: new Date(fromSecs * 1000), to: new Date(toSecs * 1000), bucketSecs };
}

/** The API's `bucket` parameter: `5s`, `2m`, `1h`, `1d`. */
export function bucketParam(secs: number): string {
  if (secs % 86_400 === 0) return `${secs / 86_400}d`;
  if (secs % 3_600 === 0) return `${secs / 3_600}h`;
  if (secs % 60 === 0) return `${secs / 60}m`;
  return `${secs}s`;
}
