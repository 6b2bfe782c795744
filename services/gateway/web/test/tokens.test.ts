import { describe, expect, it } from 'vitest';
import { formatDateTime } from '../src/lib/format';
import {
  expiryFor,
  expiryText,
  isExpired,
  lastUseText,
  localDate,
  orderedScopes,
  scrapeConfig,
  scrapeTarget,
  SCOPES,
} from '../src/lib/tokens';

const s = (text: string) => text.replace(/\u00a0/g, ' ');
const now = Date.parse('2026-11-25T12:00:00Z');

describe('expiryFor', () => {
  it('sends null for a token that works until revoked', () => {
    expect(expiryFor('never', '', now)).toEqual({ expiresAt: null });
  });
  it('counts 30 days, 90 days and a year (365 days) from now', () => {
    expect(expiryFor('30d', '', now)).toEqual({ expiresAt: '2026-12-25T12:00:00.000Z' });
    expect(expiryFor('90d', '', now)).toEqual({ expiresAt: '2027-02-23T12:00:00.000Z' });
    expect(expiryFor('1y', '', now)).toEqual({ expiresAt: '2027-11-25T12:00:00.000Z' });
  });
  it('keeps a token of a chosen date working through that whole day, in the browser zone', () => {
    const at = new Date(2026, 11, 30, 23, 0).getTime();
    // Today is allowed: it works until tonight's midnight.
    expect(expiryFor('custom', '2026-12-30', at)).toEqual({ expiresAt: new Date(2026, 11, 31).toISOString() });
    expect(expiryFor('custom', '2026-12-31', at)).toEqual({ expiresAt: new Date(2027, 0, 1).toISOString() });
    // At midnight, yesterday has passed.
    expect(expiryFor('custom', '2026-12-30', new Date(2026, 11, 31).getTime())).toHaveProperty('error');
  });
  it('refuses a past, missing or impossible date', () => {
    const at = new Date(2026, 10, 25, 12, 0).getTime();
    expect(expiryFor('custom', '2026-11-24', at)).toHaveProperty('error');
    expect(expiryFor('custom', '', at)).toHaveProperty('error');
    expect(expiryFor('custom', '2027-02-31', at)).toHaveProperty('error');
    expect(expiryFor('custom', '27-02-01', at)).toHaveProperty('error');
  });
  it('offers today as the earliest date', () => {
    expect(localDate(new Date(2026, 0, 5, 23, 59).getTime())).toBe('2026-01-05');
  });
});

describe('the list', () => {
  it('says never, the date, or expired', () => {
    expect(expiryText({ expiresAt: null }, now)).toBe('never');
    expect(expiryText({ expiresAt: '2026-12-01T00:00:00Z' }, now)).toBe(formatDateTime('2026-12-01T00:00:00Z'));
    expect(expiryText({ expiresAt: '2026-11-25T11:00:00Z' }, now)).toBe(`expired ${formatDateTime('2026-11-25T11:00:00Z')}`);
    expect(isExpired({ expiresAt: '2026-11-25T12:00:00Z' }, now)).toBe(true);
    expect(isExpired({ expiresAt: null }, now)).toBe(false);
  });
  it('says when and from where a token was last used', () => {
    expect(lastUseText({ lastUsedAt: null, lastUsedIp: null }, now)).toBe('never');
    expect(s(lastUseText({ lastUsedAt: '2026-11-25T11:57:00Z', lastUsedIp: '10.0.0.5' }, now))).toBe('3 min ago from 10.0.0.5');
    expect(s(lastUseText({ lastUsedAt: '2026-11-25T09:00:00Z', lastUsedIp: null }, now))).toBe('3 h ago');
  });
  it('sends the scopes in one order whatever order they were ticked in', () => {
    expect(orderedScopes(['metrics:scrape', 'read'])).toEqual(['read', 'metrics:scrape']);
    expect(SCOPES.map((x) => x.scope)).toEqual(['read', 'write', 'write:logs', 'metrics:scrape']);
  });
});

describe('scrapeConfig', () => {
  const token = 'flk_0123456789abcdef0123456789abcdef_s3cr-t_x';
  it('scrapes the page address over HTTP with the token as a bearer credential', () => {
    expect(scrapeConfig(token, { protocol: 'http:', hostname: '127.0.0.1', port: '8080' })).toBe(
      [
        'scrape_configs:',
        '  - job_name: flick',
        '    metrics_path: /api/v1/prometheus',
        '    authorization:',
        '      type: Bearer',
        `      credentials: ${token}`,
        '    static_configs:',
        "      - targets: ['127.0.0.1:8080']",
        '',
      ].join('\n'),
    );
  });
  it('says https, and spells out a default port', () => {
    const text = scrapeConfig(token, { protocol: 'https:', hostname: 'hub.example.com', port: '' });
    expect(text).toContain('    metrics_path: /api/v1/prometheus\n    scheme: https\n');
    expect(text).toContain("      - targets: ['hub.example.com:443']");
    expect(scrapeTarget({ protocol: 'http:', hostname: '[::1]', port: '' })).toBe('[::1]:80');
  });
});
