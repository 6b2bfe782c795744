import { describe, expect, it } from 'vitest';
import { formatMetricValue } from '../src/lib/alerts';

describe('formatMetricValue', () => {
  it('writes temperatures in °C and everything else in percent', () => {
    expect(formatMetricValue('temperature', 104.25)).toBe('104.3\u00a0°C');
    expect(formatMetricValue('cpu', 97.04)).toBe('97.0\u00a0%');
    expect(formatMetricValue('temperature', null)).toBe('–');
  });
});
