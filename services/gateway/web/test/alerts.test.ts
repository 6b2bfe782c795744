import { describe, expect, it } from 'vitest';
import { applyEvent, formatMetricValue } from '../src/lib/alerts';
import type { AlertEvent } from '../src/types';

describe('formatMetricValue', () => {
  it('writes temperatures in °C and everything else in percent', () => {
    expect(formatMetricValue('temperature', 104.25)).toBe('104.3\u00a0°C');
    expect(formatMetricValue('cpu', 97.04)).toBe('97.0\u00a0%');
    expect(formatMetricValue('temperature', null)).toBe('–');
  });
});

describe('applyEvent', () => {
  it('keeps the container of a container alert that arrives live', () => {
    const event = {
      v: 1, id: 'e1', alertId: 'a1', serverId: 'web-01', metric: 'container_stopped', severity: 'critical',
      state: 'firing', value: 137, threshold: null, startedAt: '2026-12-03T12:00:00Z', at: '2026-12-03T12:00:00Z',
      container: 'web-1',
    } as unknown as AlertEvent;
    const [alert] = applyEvent([], event);
    expect(alert?.container).toBe('web-1');
  });
});
