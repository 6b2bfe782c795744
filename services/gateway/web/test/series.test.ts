import { describe, expect, it } from 'vitest';
import { envelope, lowerBound, SeriesBuffer, Sparkline } from '../src/lib/series';

describe('SeriesBuffer', () => {
  it('appends samples in order and shares its arrays with the chart', () => {
    const b = new SeriesBuffer({ windowSecs: 60 });
    b.push(100, { cpu: 10 });
    b.push(101, { cpu: 20 });
    const data = b.data();
    expect(data).toEqual([[100, 101], [10, 20]]);
    b.push(102, { cpu: 30 });
    expect(data[0]).toBe(b.xs);
    expect(b.data()).toEqual([[100, 101, 102], [10, 20, 30]]);
  });

  it('keeps a bounded window by time', () => {
    const b = new SeriesBuffer({ windowSecs: 10 });
    for (let t = 0; t <= 100; t++) b.push(t, { cpu: t });
    expect(b.xs[0]).toBe(90);
    expect(b.length).toBe(11);
    expect(b.column('cpu')![0]).toBe(90);
  });

  it('keeps a bounded number of points whatever the timestamps', () => {
    const b = new SeriesBuffer({ windowSecs: 3_600, maxPoints: 100 });
    for (let i = 0; i < 1_000; i++) b.push(i * 0.1, { cpu: i });
    expect(b.length).toBe(100);
    expect(b.column('cpu')!.at(-1)).toBe(999);
  });

  it('replaces a repeated timestamp and inserts a late one in place', () => {
    const b = new SeriesBuffer({ windowSecs: 60 });
    b.push(10, { cpu: 1 });
    b.push(12, { cpu: 3 });
    b.push(12, { cpu: 33 });
    b.push(11, { cpu: 2 });
    expect(b.data()).toEqual([[10, 11, 12], [1, 2, 33]]);
  });

  it('drops a sample older than the window', () => {
    const b = new SeriesBuffer({ windowSecs: 5 });
    b.push(100, { cpu: 1 });
    expect(b.push(90, { cpu: 2 })).toBe(false);
    expect(b.xs).toEqual([100]);
  });

  it('breaks the line over a silence', () => {
    const b = new SeriesBuffer({ windowSecs: 60, gapSecs: 5 });
    b.push(10, { cpu: 1 });
    b.push(11, { cpu: 2 });
    b.push(30, { cpu: 3 });
    expect(b.data()).toEqual([[10, 11, 20.5, 30], [1, 2, null, 3]]);
  });

  it('gives a new key nulls for the time before it appeared', () => {
    const b = new SeriesBuffer({ windowSecs: 60 });
    b.push(1, { 'core 0': 5 });
    b.push(2, { 'core 0': 6, 'core 1': 7 });
    expect(b.keys).toEqual(['core 0', 'core 1']);
    expect(b.data()).toEqual([[1, 2], [5, 6], [null, 7]]);
    expect(b.keysVersion).toBe(2);
  });

  it('merges history before the live points and fills a gap it closes', () => {
    const b = new SeriesBuffer({ windowSecs: 3_600, gapSecs: 5 });
    b.push(100, { cpu: 50, swap: 1 });
    b.push(120, { cpu: 60, swap: 2 });
    expect(b.column('cpu')).toEqual([50, null, 60]);
    const history = [];
    for (let t = 90; t <= 121; t++) history.push({ t, values: { cpu: t } });
    b.merge(history);
    // History fills the hole (no gap row left), and does not overwrite the live values.
    expect(b.xs[0]).toBe(90);
    expect(b.xs.at(-1)).toBe(121);
    expect(b.length).toBe(32);
    expect(b.column('cpu')![b.xs.indexOf(100)]).toBe(50);
    expect(b.column('cpu')![b.xs.indexOf(105)]).toBe(105);
    expect(b.column('swap')![b.xs.indexOf(105)]).toBeNull();
    expect(b.column('cpu')!.includes(null)).toBe(false);
  });

  it('counts versions so charts know when to redraw', () => {
    const b = new SeriesBuffer({ windowSecs: 60 });
    const v = b.version;
    b.push(1, { cpu: 1 });
    expect(b.version).toBe(v + 1);
  });

  it('clears without losing its keys', () => {
    const b = new SeriesBuffer({ windowSecs: 60 });
    b.push(1, { cpu: 1 });
    b.clear();
    expect(b.data()).toEqual([[], []]);
  });
});

describe('lowerBound', () => {
  it('finds the first index at or after t', () => {
    const xs = [1, 3, 5, 7];
    expect(lowerBound(xs, 0)).toBe(0);
    expect(lowerBound(xs, 3)).toBe(1);
    expect(lowerBound(xs, 4)).toBe(2);
    expect(lowerBound(xs, 8)).toBe(4);
  });
});

describe('Sparkline', () => {
  it('holds the last window of one value per second, no gaps, no late samples', () => {
    const s = new Sparkline(300);
    for (let t = 0; t < 1_000; t++) s.push(t, t % 100);
    expect(s.xs.length).toBe(301);
    expect(s.xs[0]).toBe(699);
    s.push(999, 5);
    expect(s.ys.at(-1)).toBe(5);
    s.push(10, 1);
    expect(s.xs.length).toBe(301);
  });
});

describe('Sparkline.prepend', () => {
  it('puts history before the live points, within the window, without overlap', () => {
    const s = new Sparkline(10);
    s.push(100, 50);
    s.push(101, 51);
    s.prepend([85, 92, 95, 99, 100, 101].map((t) => ({ t, v: t - 50 })));
    expect(s.xs).toEqual([92, 95, 99, 100, 101]);
    expect(s.ys).toEqual([42, 45, 49, 50, 51]);
  });
  it('fills an empty sparkline', () => {
    const s = new Sparkline(300);
    s.prepend([{ t: 2, v: 1 }, { t: 1, v: 0 }]);
    expect(s.xs).toEqual([1, 2]);
  });
});

describe('envelope', () => {
  it('keeps the minimum and maximum of every column per bucket', () => {
    const xs = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
    const a = [5, 1, 9, 4, 4, 3, 8, 2, 7, 6];
    const b = [0, 0, 0, 0, 10, 0, 0, 0, 0, 0];
    const [ex, ea, eb] = envelope([xs, a, b], 0, 5);
    expect(ex).toEqual([0, 2.5, 5, 7.5]);
    expect(ea).toEqual([1, 9, 2, 8]);
    expect(eb).toEqual([0, 10, 0, 0]);
  });
  it('copies small buckets, starts one point before the window, and keeps silences', () => {
    const xs = [0, 1, 10, 11, 12, 13, 20, 21];
    const v = [1, 2, 3, null, null, 4, 5, 6];
    const w = [1, 2, 3, null, null, 4, 5, 6];
    const [ex, ev] = envelope([xs, v, w], 1, 10);
    // bucket 0: [1] (the point before `from` … and `from` itself), bucket 1: 3..4 with a gap row, bucket 2: 2 points.
    expect(ex).toEqual([0, 1, 10, 15, 17.5, 20, 21]);
    expect(ev).toEqual([1, 2, 3, 4, null, 5, 6]);
  });
  it('shrinks an hour of seconds to two rows per bucket', () => {
    const b = new SeriesBuffer({ windowSecs: 3_600 });
    for (let t = 0; t < 3_600; t++) b.push(t, { a: Math.sin(t), b: t % 7 });
    const [ex, ea] = envelope(b.data(), 0, 6);
    expect(ex.length).toBe(1_200);
    expect(Math.max(...(ea as number[]))).toBeCloseTo(Math.max(...(b.column('a') as number[])));
  });
});
