import { describe, expect, it } from 'vitest';
import { formatDateTime } from '../src/lib/format';
import { describePreviewAlert, lastHour, previewLines, previewSpans, previewSummary } from '../src/lib/preview';
import type { PreviewAlert } from '../src/types';

const s = (text: string) => text.replace(/\u00a0/g, ' ');

const alert = (severity: 'warning' | 'critical', resolvedAt: string | null): PreviewAlert => ({
  alertId: `${severity}-${resolvedAt}`,
  severity,
  firedAt: '2026-11-24T10:01:10Z',
  resolvedAt,
  peak: 95,
  threshold: severity === 'warning' ? 80 : 90,
});

describe('lastHour', () => {
  it('is the hour before now, in RFC 3339', () => {
    expect(lastHour(Date.parse('2026-11-24T11:00:00Z'))).toEqual({
      from: '2026-11-24T10:00:00.000Z',
      to: '2026-11-24T11:00:00.000Z',
    });
  });
});

describe('describePreviewAlert', () => {
  it('says when it fired, how long it lasted, its peak and threshold', () => {
    const fired = formatDateTime('2026-11-24T10:01:10Z');
    expect(s(describePreviewAlert(alert('warning', '2026-11-24T10:01:30Z')))).toBe(
      s(`warning at ${fired} for 20 s, peak 95.0 % (threshold 80 %)`),
    );
    expect(s(describePreviewAlert(alert('critical', null)))).toBe(
      s(`critical at ${fired} still firing, peak 95.0 % (threshold 90 %)`),
    );
  });
});

describe('previewSummary', () => {
  it('counts alerts by severity', () => {
    expect(previewSummary([])).toBe('No alert');
    expect(previewSummary([alert('critical', null)])).toBe('1 alert (1 critical)');
    expect(
      previewSummary([alert('warning', null), alert('critical', null), alert('warning', '2026-11-24T10:02:00Z')]),
    ).toBe('3 alerts (2 warning, 1 critical)');
  });
});

describe('previewSpans and previewLines', () => {
  it('shade each alert from firing to resolution, a still-firing one to the edge', () => {
    expect(previewSpans([alert('warning', '2026-11-24T10:01:30Z'), alert('critical', null)])).toEqual([
      { start: Date.parse('2026-11-24T10:01:10Z') / 1000, end: Date.parse('2026-11-24T10:01:30Z') / 1000, severity: 'warning' },
      { start: Date.parse('2026-11-24T10:01:10Z') / 1000, end: null, severity: 'critical' },
    ]);
  });
  it('draw the proposed thresholds, only those set', () => {
    expect(previewLines({ warning: 70, critical: null })).toEqual([{ value: 70, severity: 'warning' }]);
    expect(previewLines({ warning: 70, critical: 85 })).toEqual([
      { value: 70, severity: 'warning' },
      { value: 85, severity: 'critical' },
    ]);
  });
});
