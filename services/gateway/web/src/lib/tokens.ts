// API tokens: what each scope allows, when a new token stops working, how a token's expiry and
// last use read in the list, and the Prometheus scrape_config for a scraping token.

import type { ApiToken, TokenScope } from '../types';
import { formatAgo, formatDateTime } from './format';

/** Every scope, in the order the form lists them, with what it lets a token do. */
export const SCOPES: readonly { scope: TokenScope; help: string }[] = [
  { scope: 'read', help: 'Every GET your account may make, and the threshold preview (covers metrics:scrape).' },
  { scope: 'write', help: 'Every change your account may make, except tokens and sign-ins (covers write:logs).' },
  { scope: 'write:logs', help: 'Only POST /api/v1/logs: for a script or agent that ships log lines.' },
  { scope: 'metrics:scrape', help: 'Only GET /api/v1/prometheus: for Prometheus to scrape.' },
];

/** The scopes picked, in the order of `SCOPES` (the form's checkboxes come in any order). */
export function orderedScopes(picked: Iterable<TokenScope>): TokenScope[] {
  const set = new Set(picked);
  return SCOPES.map((s) => s.scope).filter((s) => set.has(s));
}

export type ExpiryChoice = 'never' | '30d' | '90d' | '1y' | 'custom';

export const EXPIRY_CHOICES: readonly { value: ExpiryChoice; label: string }[] = [
  { value: 'never', label: 'Never (until revoked)' },
  { value: '30d', label: '30 days' },
  { value: '90d', label: '90 days' },
  { value: '1y', label: '1 year' },
  { value: 'custom', label: 'A date…' },
];

const DAYS: Record<'30d' | '90d' | '1y', number> = { '30d': 30, '90d': 90, '1y': 365 };
const DAY_MS = 86_400_000;

/** `expiresAt` for the API (`null`: never), or why the choice cannot be sent. */
export type Expiry = { expiresAt: string | null } | { error: string };

/**
 * When a token made `now` with `choice` stops working. A custom date (an `<input type="date">`
 * value, `YYYY-MM-DD`, in the browser's zone) keeps the token working through that whole day: it
 * stops at the midnight that ends it.
 */
export function expiryFor(choice: ExpiryChoice, customDate: string, now = Date.now()): Expiry {
  if (choice === 'never') return { expiresAt: null };
  if (choice !== 'custom') return { expiresAt: new Date(now + DAYS[choice] * DAY_MS).toISOString() };
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(customDate);
  if (!m) return { error: 'Choose the last day the token works.' };
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  // (Date rolls 2026-02-31 over into March: such a day does not exist.)
  const last = new Date(year, month - 1, day);
  if (last.getFullYear() !== year || last.getMonth() !== month - 1 || last.getDate() !== day) {
    return { error: 'Choose the last day the token works.' };
  }
  const end = new Date(year, month - 1, day + 1);
  if (end.getTime() <= now) return { error: 'That day has passed: choose today or a later day.' };
  return { expiresAt: end.toISOString() };
}

/** `YYYY-MM-DD` of `now` in the browser's zone: the earliest date the form offers. */
export function localDate(now = Date.now()): string {
  const d = new Date(now);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

export function isExpired(token: Pick<ApiToken, 'expiresAt'>, now = Date.now()): boolean {
  return token.expiresAt !== null && Date.parse(token.expiresAt) <= now;
}

/** The list's "Expires" cell: `never`, the date, or `expired <date>`. */
export function expiryText(token: Pick<ApiToken, 'expiresAt'>, now = Date.now()): string {
  if (token.expiresAt === null) return 'never';
  const when = formatDateTime(token.expiresAt);
  return isExpired(token, now) ? `expired ${when}` : when;
}

/** The list's "Last used" cell: `never`, or `3 min ago from 10.0.0.5`. */
export function lastUseText(token: Pick<ApiToken, 'lastUsedAt' | 'lastUsedIp'>, now = Date.now()): string {
  if (token.lastUsedAt === null) return 'never';
  const ago = formatAgo(token.lastUsedAt, now);
  return token.lastUsedIp ? `${ago} from ${token.lastUsedIp}` : ago;
}

/** Where Prometheus reaches this gateway: the page's own address, with its port spelt out. */
export function scrapeTarget(where: { protocol: string; hostname: string; port: string }): string {
  const port = where.port || (where.protocol === 'https:' ? '443' : '80');
  return `${where.hostname}:${port}`;
}

/** A `prometheus.yml` fragment that scrapes this gateway with `token`. */
export function scrapeConfig(token: string, where: { protocol: string; hostname: string; port: string }): string {
  return [
    'scrape_configs:',
    '  - job_name: flick',
    '    metrics_path: /api/v1/prometheus',
    ...(where.protocol === 'https:' ? ['    scheme: https'] : []),
    '    authorization:',
    '      type: Bearer',
    `      credentials: ${token}`,
    '    static_configs:',
    `      - targets: ['${scrapeTarget(where)}']`,
    '',
  ].join('\n');
}
