// What the threshold preview shows: the range it replays and one line per alert a rule would
// have fired. Pure, so the wording and the range are unit-tested.

import type { PreviewAlert } from '../types';
import { formatDateTime, formatDuration, formatPercent } from './format';

/** The hour before `now` (ms), as the preview request wants it. */
export function lastHour(now: number): { from: string; to: string } {
  return { from: new Date(now - 3_600_000).toISOString(), to: new Date(now).toISOString() };
}

/** "warning at 10:01:10 for 20 s, peak 95.0 % (threshold 80 %)" or "… still firing". */
export function describePreviewAlert(a: PreviewAlert): string {
  const fired = formatDateTime(a.firedAt);
  const lasted =
    a.resolvedAt === null
      ? 'still firing'
      : `for ${formatDuration(Math.max(0, Math.round((Date.parse(a.resolvedAt) - Date.parse(a.firedAt)) / 1000)))}`;
  return `${a.severity} at ${fired} ${lasted}, peak ${formatPercent(a.peak)} (threshold ${formatPercent(a.threshold, 0)})`;
}

/** "No alert", "1 alert (1 critical)", "3 alerts (2 warning, 1 critical)". */
export function previewSummary(alerts: readonly PreviewAlert[]): string {
  if (alerts.length === 0) return 'No alert';
  const warning = alerts.filter((a) => a.severity === 'warning').length;
  const parts = [
    warning > 0 ? `${warning} warning` : null,
    alerts.length - warning > 0 ? `${alerts.length - warning} critical` : null,
  ].filter((p) => p !== null);
  return `${alerts.length} alert${alerts.length === 1 ? '' : 's'} (${parts.join(', ')})`;
}

/** The shaded periods of a preview on its chart (unix seconds); a still-firing alert runs on. */
export function previewSpans(
  alerts: readonly PreviewAlert[],
): { start: number; end: number | null; severity: 'warning' | 'critical' }[] {
  return alerts.map((a) => ({
    start: Date.parse(a.firedAt) / 1000,
    end: a.resolvedAt === null ? null : Date.parse(a.resolvedAt) / 1000,
    severity: a.severity,
  }));
}

/** The proposed rule's lines across the chart. */
export function previewLines(rule: {
  warning?: number | null;
  critical?: number | null;
}): { value: number; severity: 'warning' | 'critical' }[] {
  const lines: { value: number; severity: 'warning' | 'critical' }[] = [];
  if (rule.warning != null) lines.push({ value: rule.warning, severity: 'warning' });
  if (rule.critical != null) lines.push({ value: rule.critical, severity: 'critical' });
  return lines;
}
