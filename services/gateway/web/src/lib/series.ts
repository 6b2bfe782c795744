// Merging the live stream (and history that fills it) into the column arrays uPlot draws, in a
// bounded window. Times are unix seconds, as uPlot expects.

export type Column = (number | null)[];
export type Aligned = [number[], ...Column[]];

export interface BufferOptions {
  /** Points older than this many seconds before the newest are dropped. */
  windowSecs: number;
  /** Never more than this many points (the window bounds it too). */
  maxPoints?: number;
  /** A silence longer than this many seconds breaks the line instead of bridging it. */
  gapSecs?: number;
}

export type Values = Record<string, number | null | undefined>;

/** Index of the first x >= t (binary search). */
export function lowerBound(xs: readonly number[], t: number): number {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (xs[mid]! < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Time-aligned columns keyed by name (`cpu`, `core 3`, `eth0 rx`…). Samples arrive about once a
 * second, nearly always newest last; a sample with a time already held replaces it, an older one
 * is inserted in place (or dropped when it falls outside the window), and a silence longer than
 * `gapSecs` gets a row of nulls so the chart shows the hole.
 */
export class SeriesBuffer {
  readonly xs: number[] = [];
  private readonly cols = new Map<string, Column>();
  private readonly order: string[] = [];
  /** Bumped on every change: charts redraw when it moves. */
  version = 0;
  /** Bumped when a key appears: charts rebuild their series when it moves. */
  keysVersion = 0;
  readonly windowSecs: number;
  readonly maxPoints: number;
  readonly gapSecs: number;

  constructor(options: BufferOptions) {
    this.windowSecs = options.windowSecs;
    this.maxPoints = options.maxPoints ?? Math.max(1, Math.ceil(options.windowSecs)) + 64;
    this.gapSecs = options.gapSecs ?? Infinity;
  }

  get keys(): readonly string[] {
    return this.order;
  }

  get length(): number {
    return this.xs.length;
  }

  get last(): number | undefined {
    return this.xs[this.xs.length - 1];
  }

  column(key: string): Column | undefined {
    return this.cols.get(key);
  }

  private ensure(key: string): Column {
    let col = this.cols.get(key);
    if (!col) {
      col = new Array<number | null>(this.xs.length).fill(null);
      this.cols.set(key, col);
      this.order.push(key);
      this.keysVersion += 1;
    }
    return col;
  }

  private insertRow(at: number, t: number, values: Values | null): void {
    this.xs.splice(at, 0, t);
    for (const key of this.order) this.cols.get(key)!.splice(at, 0, null);
    if (values) this.setRow(at, values);
  }

  private appendRow(t: number, values: Values | null): void {
    this.xs.push(t);
    for (const key of this.order) this.cols.get(key)!.push(null);
    if (values) this.setRow(this.xs.length - 1, values);
  }

  private setRow(at: number, values: Values): void {
    for (const key in values) {
      const v = values[key];
      const col = this.ensure(key);
      col[at] = typeof v === 'number' && Number.isFinite(v) ? v : null;
    }
  }

  /** Adds one sample; false when it was dropped (older than the window). */
  push(t: number, values: Values): boolean {
    const n = this.xs.length;
    const last = n > 0 ? this.xs[n - 1]! : -Infinity;
    if (t > last) {
      if (n > 0 && t - last > this.gapSecs) this.appendRow(last + (t - last) / 2, null);
      this.appendRow(t, values);
    } else {
      const newest = last;
      if (t < newest - this.windowSecs) return false;
      const at = lowerBound(this.xs, t);
      if (this.xs[at] === t) {
        this.setRow(at, values);
      } else {
        this.insertRow(at, t, values);
      }
    }
    this.trim();
    this.version += 1;
    return true;
  }

  /**
   * Merges many points (history that prefills the window or fills a gap after a reconnect),
   * then drops the null rows that no longer stand for a silence.
   */
  merge(points: readonly { t: number; values: Values }[]): void {
    for (const p of points) {
      const n = this.xs.length;
      if (n === 0 || p.t > this.xs[n - 1]!) {
        this.appendRow(p.t, p.values);
        continue;
      }
      const at = lowerBound(this.xs, p.t);
      if (this.xs[at] === p.t) {
        // Live samples carry more detail than history: fill only what is missing.
        for (const key in p.values) {
          const col = this.ensure(key);
          const v = p.values[key];
          if (col[at] === null && typeof v === 'number' && Number.isFinite(v)) col[at] = v;
        }
      } else {
        this.insertRow(at, p.t, p.values);
      }
    }
    this.closeGaps();
    this.trim();
    this.version += 1;
  }

  /** Removes gap rows (all null) whose neighbours are now close enough to join. */
  private closeGaps(): void {
    if (!Number.isFinite(this.gapSecs)) return;
    for (let i = this.xs.length - 2; i >= 1; i--) {
      if (!this.isGapRow(i)) continue;
      if (this.xs[i + 1]! - this.xs[i - 1]! <= this.gapSecs) {
        this.xs.splice(i, 1);
        for (const key of this.order) this.cols.get(key)!.splice(i, 1);
      }
    }
  }

  private isGapRow(i: number): boolean {
    for (const key of this.order) if (this.cols.get(key)![i] !== null) return false;
    return true;
  }

  private trim(): void {
    const n = this.xs.length;
    if (n === 0) return;
    const oldest = this.xs[n - 1]! - this.windowSecs;
    let drop = 0;
    while (drop < n && this.xs[drop]! < oldest) drop += 1;
    drop = Math.max(drop, n - this.maxPoints);
    if (drop <= 0) return;
    if (drop === 1) {
      this.xs.shift();
      for (const key of this.order) this.cols.get(key)!.shift();
    } else {
      this.xs.splice(0, drop);
      for (const key of this.order) this.cols.get(key)!.splice(0, drop);
    }
  }

  /** The arrays for uPlot, in `keys` order (or the given order); shared, not copied. */
  data(keys: readonly string[] = this.order): Aligned {
    const out: Aligned = [this.xs];
    for (const key of keys) out.push(this.cols.get(key) ?? new Array<number | null>(this.xs.length).fill(null));
    return out;
  }

  clear(): void {
    this.xs.length = 0;
    for (const key of this.order) this.cols.get(key)!.length = 0;
    this.version += 1;
  }
}

/**
 * One number per second in a short window, with no gaps: the fleet's sparklines. Plain number
 * arrays stay unboxed, which matters with a thousand servers.
 */
export class Sparkline {
  readonly xs: number[] = [];
  readonly ys: number[] = [];

  constructor(readonly windowSecs: number) {}

  /** Puts older points (history) before the live ones; points the live ones cover are skipped. */
  prepend(points: readonly { t: number; v: number }[]): void {
    const first = this.xs.length > 0 ? this.xs[0]! : Infinity;
    const newest = this.xs.length > 0 ? this.xs[this.xs.length - 1]! : (points.at(-1)?.t ?? 0);
    const oldest = newest - this.windowSecs;
    const older = points.filter((p) => p.t < first && p.t >= oldest && Number.isFinite(p.v));
    if (older.length === 0) return;
    older.sort((a, b) => a.t - b.t);
    this.xs.unshift(...older.map((p) => p.t));
    this.ys.unshift(...older.map((p) => p.v));
  }

  push(t: number, v: number): void {
    const n = this.xs.length;
    if (n > 0) {
      const last = this.xs[n - 1]!;
      if (t === last) {
        this.ys[n - 1] = v;
        return;
      }
      if (t < last) return;
    }
    this.xs.push(t);
    this.ys.push(v);
    const oldest = t - this.windowSecs;
    let drop = 0;
    while (drop < this.xs.length && this.xs[drop]! < oldest) drop += 1;
    if (drop === 1) {
      this.xs.shift();
      this.ys.shift();
    } else if (drop > 1) {
      this.xs.splice(0, drop);
      this.ys.splice(0, drop);
    }
  }
}

/**
 * The min/max envelope of the points from `from` on, in buckets of `bucketSecs` aligned to
 * absolute time: each bucket of more than two points becomes two rows (every column's minimum,
 * then its maximum), which draws the same vertical stroke per pixel column as the full data
 * while handing the chart a few hundred rows instead of thousands. Rows of nulls (silences) are
 * kept, so lines still break. The point just before `from` is kept so the line enters from the
 * left edge.
 */
export function envelope(data: Aligned, from: number, bucketSecs: number): Aligned {
  const xs = data[0];
  const cols = data.length - 1;
  const outX: number[] = [];
  const out: Column[] = Array.from({ length: cols }, () => []);
  const n = xs.length;
  let i = Math.max(0, lowerBound(xs, from) - 1);
  const copy = (k: number) => {
    outX.push(xs[k]!);
    for (let c = 0; c < cols; c++) out[c]!.push(data[c + 1]![k] ?? null);
  };
  const mins: (number | null)[] = new Array<number | null>(cols);
  const maxs: (number | null)[] = new Array<number | null>(cols);
  while (i < n) {
    const bucket = Math.floor(xs[i]! / bucketSecs);
    let j = i;
    let gap = -1;
    mins.fill(null);
    maxs.fill(null);
    while (j < n && Math.floor(xs[j]! / bucketSecs) === bucket) {
      let any = false;
      for (let c = 0; c < cols; c++) {
        const v = data[c + 1]![j];
        if (v === null || v === undefined) continue;
        any = true;
        const lo = mins[c];
        const hi = maxs[c];
        if (lo === null || lo === undefined || v < lo) mins[c] = v;
        if (hi === null || hi === undefined || v > hi) maxs[c] = v;
      }
      if (!any && gap < 0) gap = j;
      j += 1;
    }
    if (j - i <= 2) {
      for (let k = i; k < j; k++) copy(k);
    } else {
      const start = bucket * bucketSecs;
      outX.push(start, start + bucketSecs / 2);
      for (let c = 0; c < cols; c++) out[c]!.push(mins[c] ?? null, maxs[c] ?? null);
      if (gap >= 0) {
        outX.push(start + (bucketSecs * 3) / 4);
        for (let c = 0; c < cols; c++) out[c]!.push(null);
      }
    }
    i = j;
  }
  return [outX, ...out];
}
