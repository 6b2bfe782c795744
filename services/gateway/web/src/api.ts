// The REST API with the session's token; a 401 renews the token once and retries.

import { accessToken, refresh, session, signOut } from './auth';
import { ApiError, type Query, request } from './http';
import type {
  Alert,
  ApiToken,
  CreatedApiToken,
  NewApiToken,
  Channel,
  NewChannel,
  NewSilence,
  Notification,
  Silence,
  CreatedEnrollment,
  DetailHistory,
  DetailSeries,
  History,
  LogEntry,
  Page,
  Processes,
  Containers,
  Preview,
  RuleChange,
  RuleMetric,
  Server,
  ServerDetail,
  Thresholds,
  User,
} from './types';

/** A read the gateway turned away for a moment (429 or 503 with `Retry-After`, such as a
 * history query while the fleet page's are still running) is tried again after the time it
 * gives, a few times, rather than shown as an error. */
async function authed<T>(method: string, path: string, query?: Query, body?: unknown, signal?: AbortSignal): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await authedOnce<T>(method, path, query, body, signal);
    } catch (err) {
      const busy =
        err instanceof ApiError &&
        (err.status === 429 || err.status === 503) &&
        err.retryAfterSecs !== undefined &&
        err.retryAfterSecs <= 10;
      if (method !== 'GET' || !busy || attempt >= 4 || signal?.aborted) throw err;
      const waitMs = (err.retryAfterSecs ?? 1) * 1_000 + Math.random() * 250;
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(resolve, waitMs);
        signal?.addEventListener('abort', () => {
          clearTimeout(timer);
          reject(new DOMException('Aborted', 'AbortError'));
        });
      });
    }
  }
}

async function authedOnce<T>(method: string, path: string, query?: Query, body?: unknown, signal?: AbortSignal): Promise<T> {
  const token = await accessToken();
  if (!token) throw new ApiError(401, 'unauthorized', 'You are signed out. Sign in again.');
  try {
    return await request<T>(method, path, { query, body, token, signal });
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 401 || !session()) throw err;
    if (!(await refresh())) throw err;
    const again = session()?.accessToken;
    if (!again) throw err;
    try {
      return await request<T>(method, path, { query, body, token: again, signal });
    } catch (second) {
      if (second instanceof ApiError && second.status === 401) await signOut('Your session has ended. Sign in again.');
      throw second;
    }
  }
}

export const api = {
  me: () => authed<User>('GET', '/auth/me'),
  servers: (signal?: AbortSignal) => authed<Server[]>('GET', '/servers', undefined, undefined, signal),
  server: (id: string, signal?: AbortSignal) =>
    authed<ServerDetail>('GET', `/servers/${encodeURIComponent(id)}`, undefined, undefined, signal),
  createServer: (body: { id?: string; name: string; hostname?: string; tags?: string[] }) =>
    authed<Server>('POST', '/servers', undefined, body),
  updateServer: (id: string, body: { name?: string; hostname?: string | null; tags?: string[] }) =>
    authed<Server>('PATCH', `/servers/${encodeURIComponent(id)}`, undefined, body),
  deleteServer: (id: string) => authed<void>('DELETE', `/servers/${encodeURIComponent(id)}`),
  assignOwner: (id: string, ownerId: string | null) =>
    authed<Server>('PUT', `/servers/${encodeURIComponent(id)}/owner`, undefined, { ownerId }),
  history: (id: string, from: Date, to: Date, bucket: string, signal?: AbortSignal) =>
    authed<History>(
      'GET',
      `/servers/${encodeURIComponent(id)}/metrics`,
      { from: from.toISOString(), to: to.toISOString(), bucket },
      undefined,
      signal,
    ),
  detail: (id: string, series: DetailSeries, from: Date, to: Date, bucket: string, signal?: AbortSignal) =>
    authed<DetailHistory>(
      'GET',
      `/servers/${encodeURIComponent(id)}/metrics/detail`,
      { series, from: from.toISOString(), to: to.toISOString(), bucket },
      undefined,
      signal,
    ),
  processes: (id: string, signal?: AbortSignal) =>
    authed<Processes>('GET', `/servers/${encodeURIComponent(id)}/processes`, undefined, undefined, signal),
  containers: (id: string, signal?: AbortSignal) =>
    authed<Containers>('GET', `/servers/${encodeURIComponent(id)}/containers`, undefined, undefined, signal),
  thresholds: (id: string) => authed<Thresholds>('GET', `/servers/${encodeURIComponent(id)}/thresholds`),
  setThresholds: (id: string, changes: Partial<Record<RuleMetric, RuleChange | null>>) =>
    authed<Thresholds>('PUT', `/servers/${encodeURIComponent(id)}/thresholds`, undefined, changes),
  previewThresholds: (
    id: string,
    body: { metric: 'cpu' | 'memory' | 'disk'; rule: RuleChange; from: string; to: string },
  ) => authed<Preview>('POST', `/servers/${encodeURIComponent(id)}/thresholds/preview`, undefined, body),
  alerts: (query: Query, signal?: AbortSignal) => authed<Page<Alert>>('GET', '/alerts', query, undefined, signal),
  acknowledge: (id: string) => authed<Alert>('POST', `/alerts/${encodeURIComponent(id)}/ack`),
  logs: (query: Query, signal?: AbortSignal) => authed<Page<LogEntry>>('GET', '/logs', query, undefined, signal),
  createEnrollment: (body: { name?: string; tags?: string[]; expiresInSecs?: number; uses?: number }) =>
    authed<CreatedEnrollment>('POST', '/enrollments', undefined, body),
  deleteEnrollment: (id: string) => authed<void>('DELETE', `/enrollments/${encodeURIComponent(id)}`),
  channels: () => authed<Channel[]>('GET', '/notification-channels'),
  createChannel: (body: NewChannel) => authed<Channel>('POST', '/notification-channels', undefined, body),
  deleteChannel: (id: string) => authed<void>('DELETE', `/notification-channels/${encodeURIComponent(id)}`),
  testChannel: (id: string) =>
    authed<{ notificationId: string }>('POST', `/notification-channels/${encodeURIComponent(id)}/test`, undefined, {}),
  channelNotifications: (id: string) =>
    authed<Notification[]>('GET', `/notification-channels/${encodeURIComponent(id)}/notifications`),
  alertNotifications: (id: string) => authed<Notification[]>('GET', `/alerts/${encodeURIComponent(id)}/notifications`),
  silences: (expired = false) => authed<Silence[]>('GET', '/silences', expired ? { expired: 'true' } : undefined),
  createSilence: (body: NewSilence) => authed<Silence>('POST', '/silences', undefined, body),
  endSilence: (id: string) => authed<void>('DELETE', `/silences/${encodeURIComponent(id)}`),
  /** Your tokens; `everyone` (administrators): every user's. */
  tokens: (everyone = false) => authed<ApiToken[]>('GET', '/tokens', everyone ? { owner: 'all' } : undefined),
  createToken: (body: NewApiToken) => authed<CreatedApiToken>('POST', '/tokens', undefined, body),
  revokeToken: (id: string) => authed<void>('DELETE', `/tokens/${encodeURIComponent(id)}`),
};

/** Every page of a cursor-paged list, up to `maxPages`. */
export async function allPages<T>(
  fetchPage: (cursor: string | null) => Promise<Page<T>>,
  maxPages = 20,
): Promise<T[]> {
  const items: T[] = [];
  let cursor: string | null = null;
  for (let i = 0; i < maxPages; i++) {
    const page: Page<T> = await fetchPage(cursor);
    items.push(...page.items);
    cursor = page.nextCursor ?? null;
    if (!cursor) break;
  }
  return items;
}

export function errorText(err: unknown): string {
  if (err instanceof ApiError) return err.message;
  if (err instanceof Error) return err.message;
  return String(err);
}
