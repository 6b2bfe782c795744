// Units as people read them: percentages, bytes and byte rates in binary units, uptimes in days
// and hours, times in the browser's own time zone.

const NBSP = '\u00a0';
export const DASH = '–';

const isNum = (v: number | null | undefined): v is number => typeof v === 'number' && Number.isFinite(v);

/** `45.2 %`; one decimal below 100, none at 100. */
export function formatPercent(value: number | null | undefined, digits = 1): string {
  if (!isNum(value)) return DASH;
  const shown = value >= 99.95 ? value.toFixed(0) : value.toFixed(digits);
  return `${shown}${NBSP}%`;
}

const BYTE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** `1.5 GiB`: powers of 1024, three significant digits. */
export function formatBytes(value: number | null | undefined): string {
  if (!isNum(value)) return DASH;
  const sign = value < 0 ? '-' : '';
  let n = Math.abs(value);
  let unit = 0;
  while (n >= 1024 && unit < BYTE_UNITS.length - 1) {
    n /= 1024;
    unit += 1;
  }
  if (unit === 0) return `${sign}${Math.round(n)}${NBSP}B`;
  // Rounding may carry to 1024 (1023.99 KiB): show it as the next unit.
  if (n >= 1023.995 && unit < BYTE_UNITS.length - 1) {
    n /= 1024;
    unit += 1;
  }
  const digits = n >= 100 ? 0 : n >= 10 ? 1 : 2;
  return `${sign}${n.toFixed(digits)}${NBSP}${BYTE_UNITS[unit]}`;
}

/** `12.0 MiB/s`. */
export function formatRate(bytesPerSec: number | null | undefined): string {
  if (!isNum(bytesPerSec)) return DASH;
  return `${formatBytes(bytesPerSec)}/s`;
}

/** `12 d 4 h`, `4 h 12 min`, `12 min`, `45 s`. */
export function formatUptime(secs: number | null | undefined): string {
  if (!isNum(secs) || secs < 0) return DASH;
  const s = Math.floor(secs);
  const days = Math.floor(s / 86_400);
  const hours = Math.floor((s % 86_400) / 3_600);
  const minutes = Math.floor((s % 3_600) / 60);
  if (days > 0) return `${days}${NBSP}d ${hours}${NBSP}h`;
  if (hours > 0) return `${hours}${NBSP}h ${minutes}${NBSP}min`;
  if (minutes > 0) return `${minutes}${NBSP}min`;
  return `${s}${NBSP}s`;
}

/** A duration in seconds as the largest sensible unit: `30 s`, `5 min`, `2 h`, `7 d`. */
export function formatDuration(secs: number): string {
  if (secs % 86_400 === 0 && secs >= 86_400) return `${secs / 86_400}${NBSP}d`;
  if (secs % 3_600 === 0 && secs >= 3_600) return `${secs / 3_600}${NBSP}h`;
  if (secs % 60 === 0 && secs >= 60) return `${secs / 60}${NBSP}min`;
  return `${secs}${NBSP}s`;
}

export function formatLoad(value: number | null | undefined): string {
  return isNum(value) ? value.toFixed(2) : DASH;
}

export function formatCount(value: number | null | undefined): string {
  return isNum(value) ? Math.round(value).toLocaleString() : DASH;
}

const dateTime = new Intl.DateTimeFormat(undefined, {
  year: 'numeric',
  month: 'short',
  day: 'numeric',
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
});
const timeOnly = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });

function toDate(value: string | number | Date): Date {
  return value instanceof Date ? value : new Date(value);
}

/** A date and time in the browser's time zone. */
export function formatDateTime(value: string | number | Date | null | undefined): string {
  if (value === null || value === undefined) return DASH;
  const d = toDate(value);
  return Number.isNaN(d.getTime()) ? DASH : dateTime.format(d);
}

/** The time alone when it is today, the date and time otherwise. */
export function formatWhen(value: string | number | Date | null | undefined, now = Date.now()): string {
  if (value === null || value === undefined) return DASH;
  const d = toDate(value);
  if (Number.isNaN(d.getTime())) return DASH;
  const today = new Date(now);
  const sameDay =
    d.getFullYear() === today.getFullYear() && d.getMonth() === today.getMonth() && d.getDate() === today.getDate();
  return sameDay ? timeOnly.format(d) : dateTime.format(d);
}

/** `5 s ago`, `3 min ago`, `2 h ago`, `4 d ago`. */
export function formatAgo(value: string | number | Date | null | undefined, now = Date.now()): string {
  if (value === null || value === undefined) return 'never';
  const t = toDate(value).getTime();
  if (Number.isNaN(t)) return DASH;
  const secs = Math.max(0, Math.round((now - t) / 1000));
  if (secs < 60) return `${secs}${NBSP}s ago`;
  if (secs < 3_600) return `${Math.floor(secs / 60)}${NBSP}min ago`;
  if (secs < 86_400) return `${Math.floor(secs / 3_600)}${NBSP}h ago`;
  return `${Math.floor(secs / 86_400)}${NBSP}d ago`;
}

/** Value for an `<input type="datetime-local">` in the browser's zone. */
export function toLocalInput(date: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

/** An `<input type="datetime-local">` value (browser zone) as RFC 3339 UTC, or null. */
export function fromLocalInput(value: string): string | null {
  if (!value) return null;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}
