// The detail history (a line per core, mount or interface) as chart columns. Pure, so the
// alignment of lines that miss buckets is unit-tested.

import type { DetailHistory } from '../types';

/**
 * One x column (every bucket any line has, in order, with a null row where every line misses
 * a bucket so lines break over holes) and one column of averages per line, null where that
 * line has no value.
 */
export function detailColumns(history: DetailHistory): { names: string[]; data: [number[], ...(number | null)[][]] } {
  const times = new Set<number>();
  const byLine = history.lines.map((line) => {
    const values = new Map<number, number | null>();
    for (const p of line.points) {
      const t = Date.parse(p.t) / 1000;
      times.add(t);
      values.set(t, typeof p.avg === 'number' && Number.isFinite(p.avg) ? p.avg : null);
    }
    return values;
  });
  const sorted = [...times].sort((a, b) => a - b);
  const xs: number[] = [];
  const cols: (number | null)[][] = byLine.map(() => []);
  let prev: number | null = null;
  for (const t of sorted) {
    if (prev !== null && t - prev > history.bucketSecs * 1.5) {
      xs.push(prev + history.bucketSecs);
      for (const c of cols) c.push(null);
    }
    xs.push(t);
    byLine.forEach((values, i) => cols[i]!.push(values.get(t) ?? null));
    prev = t;
  }
  return { names: history.lines.map((l) => l.name), data: [xs, ...cols] };
}
