import { describe, expect, it } from 'vitest';
import {
  formatAgo,
  formatBytes,
  formatDuration,
  formatPercent,
  formatRate,
  formatUptime,
  fromLocalInput,
  toLocalInput,
} from '../src/lib/format';

const s = (text: string) => text.replace(/\u00a0/g, ' ');

describe('formatPercent', () => {
  it('shows one decimal and the unit', () => {
    expect(s(formatPercent(45.234))).toBe('45.2 %');
    expect(s(formatPercent(0))).toBe('0.0 %');
    expect(s(formatPercent(100))).toBe('100 %');
    expect(s(formatPercent(99.97))).toBe('100 %');
  });
  it('shows a dash for missing values', () => {
    expect(formatPercent(null)).toBe('–');
    expect(formatPercent(undefined)).toBe('–');
    expect(formatPercent(Number.NaN)).toBe('–');
  });
});

describe('formatBytes and formatRate', () => {
  it('uses powers of 1024 with three significant digits', () => {
    expect(s(formatBytes(0))).toBe('0 B');
    expect(s(formatBytes(1023))).toBe('1023 B');
    expect(s(formatBytes(1024))).toBe('1.00 KiB');
    expect(s(formatBytes(1536))).toBe('1.50 KiB');
    expect(s(formatBytes(10 * 1024 * 1024))).toBe('10.0 MiB');
    expect(s(formatBytes(123.4 * 1024 ** 3))).toBe('123 GiB');
    expect(s(formatBytes(2 * 1024 ** 4))).toBe('2.00 TiB');
  });
  it('carries a value that rounds up to 1024 into the next unit', () => {
    expect(s(formatBytes(1024 * 1024 - 1))).toBe('1.00 MiB');
  });
  it('writes rates per second', () => {
    expect(s(formatRate(800))).toBe('800 B/s');
    expect(s(formatRate(81920))).toBe('80.0 KiB/s');
    expect(s(formatRate(5 * 1024 ** 3))).toBe('5.00 GiB/s');
    expect(formatRate(null)).toBe('–');
  });
});

describe('formatUptime', () => {
  it('shows days and hours, hours and minutes, or the smallest unit', () => {
    expect(s(formatUptime(864_000))).toBe('10 d 0 h');
    expect(s(formatUptime(90_061))).toBe('1 d 1 h');
    expect(s(formatUptime(3_720))).toBe('1 h 2 min');
    expect(s(formatUptime(600))).toBe('10 min');
    expect(s(formatUptime(42))).toBe('42 s');
    expect(formatUptime(-1)).toBe('–');
  });
});

describe('durations and times', () => {
  it('names bucket sizes in the largest whole unit', () => {
    expect(s(formatDuration(5))).toBe('5 s');
    expect(s(formatDuration(120))).toBe('2 min');
    expect(s(formatDuration(3_600))).toBe('1 h');
    expect(s(formatDuration(86_400))).toBe('1 d');
    expect(s(formatDuration(90))).toBe('90 s');
  });
  it('says how long ago', () => {
    const now = Date.parse('2026-11-25T12:00:00Z');
    expect(s(formatAgo('2026-11-25T11:59:55Z', now))).toBe('5 s ago');
    expect(s(formatAgo('2026-11-25T11:57:00Z', now))).toBe('3 min ago');
    expect(s(formatAgo('2026-11-25T09:00:00Z', now))).toBe('3 h ago');
    expect(s(formatAgo('2026-11-21T12:00:00Z', now))).toBe('4 d ago');
    expect(formatAgo(null, now)).toBe('never');
  });
  it('round-trips datetime-local inputs in the browser zone', () => {
    const d = new Date(2026, 10, 25, 13, 45);
    expect(toLocalInput(d)).toBe('2026-11-25T13:45');
    expect(fromLocalInput('2026-11-25T13:45')).toBe(d.toISOString());
    expect(fromLocalInput('')).toBeNull();
  });
});
