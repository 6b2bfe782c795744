// JSON over fetch, with every failure turned into an ApiError whose message can be shown as is.

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly retryAfterSecs?: number,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export type Query = Record<string, string | number | boolean | null | undefined | readonly string[]>;

export function withQuery(path: string, query?: Query): string {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v === null || v === undefined || v === '') continue;
    if (Array.isArray(v)) {
      if (v.length > 0) params.set(k, v.join(','));
    } else {
      params.set(k, String(v));
    }
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

function sentence(text: string): string {
  const t = text.trim();
  if (!t) return t;
  const first = t.charAt(0).toUpperCase() + t.slice(1);
  return /[.!?]$/.test(first) ? first : `${first}.`;
}

/** The words shown for an error answer. */
export function describe(status: number, body: unknown, retryAfter: string | null): ApiError {
  const detail = (body as { error?: { code?: string; message?: string } } | null)?.error;
  const code = detail?.code ?? (status === 404 ? 'not_found' : `http_${status}`);
  const retry = retryAfter ? Number.parseInt(retryAfter, 10) : undefined;
  let message: string;
  if (status === 429) {
    message = `Too many requests; try again in ${retry ?? 'a few'} s.`;
  } else if (status >= 500 && status !== 503) {
    message = 'The gateway could not answer (internal error). Try again, or look at its log.';
  } else if (detail?.message) {
    message = sentence(detail.message);
  } else {
    message = `The gateway answered ${status}.`;
  }
  return new ApiError(status, code, message, Number.isFinite(retry) ? retry : undefined);
}

export interface RequestOptions {
  query?: Query;
  body?: unknown;
  token?: string | null;
  signal?: AbortSignal;
  /** The request outlives the page (sign-out before the tab closes). */
  keepalive?: boolean;
}

/** One request to the gateway's API (`path` under `/api/v1`). */
export async function request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  if (options.token) headers['authorization'] = `Bearer ${options.token}`;
  let response: Response;
  try {
    response = await fetch(withQuery(`/api/v1${path}`, options.query), {
      method,
      headers,
      body: options.body === undefined ? null : JSON.stringify(options.body),
      signal: options.signal ?? null,
      credentials: 'same-origin',
      keepalive: options.keepalive ?? false,
    });
  } catch (err) {
    if ((err as Error).name === 'AbortError') throw err;
    throw new ApiError(0, 'network', 'Cannot reach the gateway. Check the connection and try again.');
  }
  const text = await response.text();
  let body: unknown = null;
  if (text) {
    try {
      body = JSON.parse(text);
    } catch {
      body = null;
    }
  }
  if (!response.ok) throw describe(response.status, body, response.headers.get('retry-after'));
  return body as T;
}
