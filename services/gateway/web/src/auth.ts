// The session. The access token lives in this page's memory only; the refresh token is an
// HttpOnly cookie (flick_refresh, sent only to /api/v1/auth) that no script can read, so a
// script injected into the page cannot carry off a 30-day credential. A reload asks the gateway
// for a new access token with that cookie. The access token is renewed before it expires, one
// refresh at a time across tabs (refresh tokens work once: a token used twice ends the session;
// tabs share the cookie, and each refresh sees the cookie the last one set). localStorage holds
// only who is signed in (no secret), so that tabs follow each other's sign-in and sign-out,
// and the id of a refresh still waiting for its answer (useless without the cookie): a page
// reloaded mid-refresh never sees the rotated cookie, and presenting the old one again would
// look like a stolen token; with the same id the gateway treats it as the retry it is.

import { ApiError, request } from './http';
import type { Session, User } from './types';

const MARK = 'flick.signedIn';
const ATTEMPT = 'flick.refreshAttempt';
/** Renew this long before the access token expires (a third of its life when that is shorter),
 * plus some jitter so that tabs do not all renew at once. */
const RENEW_BEFORE_MS = 60_000;

/** Milliseconds from now until the session should be renewed. */
export function renewInMs(expiresAt: number, ttlMs: number, now: number, random: number): number {
  const before = Math.min(RENEW_BEFORE_MS, ttlMs / 3);
  const jitter = random * Math.min(20_000, ttlMs / 10);
  return Math.max(1_000, expiresAt - before - jitter - now);
}

export interface StoredSession {
  accessToken: string;
  /** Epoch milliseconds. */
  expiresAt: number;
  /** The access token's lifetime when issued, milliseconds. */
  ttlMs: number;
  user: User;
}

type Listener = (session: StoredSession | null, reason?: string) => void;

let current: StoredSession | null = null;
let inFlight: Promise<boolean> | null = null;
let timer: ReturnType<typeof setTimeout> | undefined;
const listeners = new Set<Listener>();
/** Why the last session ended, shown on the sign-in page. */
export let endReason: string | null = null;

/** The user signed in in this browser, as the tabs tell each other. */
function marked(): string | null {
  try {
    return localStorage.getItem(MARK);
  } catch {
    return null;
  }
}

function mark(userId: string | null): void {
  try {
    if (userId) localStorage.setItem(MARK, userId);
    else localStorage.removeItem(MARK);
  } catch {
    // Storage refused (private mode): tabs do not follow each other; the cookie still works.
  }
}

/** The id of the refresh in flight (or whose answer was lost), kept across reloads and tabs. */
function attempt(): string {
  try {
    const kept = localStorage.getItem(ATTEMPT);
    if (kept) return kept;
    const id = newAttemptId();
    localStorage.setItem(ATTEMPT, id);
    return id;
  } catch {
    return newAttemptId();
  }
}

/** 128 random bits in hex (`crypto.randomUUID` exists only on HTTPS pages). */
function newAttemptId(): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');
}

function answered(): void {
  try {
    localStorage.removeItem(ATTEMPT);
  } catch {
    // Storage refused: nothing was kept.
  }
}

function set(s: StoredSession | null, reason?: string): void {
  const changedUser = (current?.user.id ?? null) !== (s?.user.id ?? null);
  current = s;
  schedule();
  for (const l of listeners) l(s, changedUser ? (reason ?? 'user') : 'token');
}

function fromSession(s: Session): StoredSession {
  return {
    accessToken: s.accessToken,
    expiresAt: Date.now() + s.expiresIn * 1000,
    ttlMs: s.expiresIn * 1000,
    user: s.user,
  };
}

function schedule(): void {
  clearTimeout(timer);
  if (!current) return;
  const due = renewInMs(current.expiresAt, current.ttlMs ?? 900_000, Date.now(), Math.random());
  timer = setTimeout(() => void refresh(), due);
}

export function session(): StoredSession | null {
  return current;
}

export function onSession(listener: Listener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

async function open(path: string, email: string, password: string, remember: boolean): Promise<void> {
  const s = await request<Session>('POST', path, { body: { email, password, refreshIn: 'cookie', remember } });
  endReason = null;
  mark(s.user.id);
  set(fromSession(s), 'signin');
}

export function signIn(email: string, password: string, remember: boolean): Promise<void> {
  return open('/auth/login', email, password, remember);
}

export function register(email: string, password: string, remember: boolean): Promise<void> {
  return open('/auth/register', email, password, remember);
}

/** Ends the session on the gateway (its tokens are revoked, the cookie cleared), then here.
 * The page waits for the answer (at most 5 s) before it leaves, and the request outlives the
 * page (`keepalive`): signing out and closing the tab at once still ends the session. */
export async function signOut(reason: string | null = null): Promise<void> {
  const s = current;
  endReason = reason;
  try {
    await request('POST', '/auth/logout', {
      body: {},
      token: s?.accessToken ?? null,
      keepalive: true,
      signal: AbortSignal.timeout(5_000),
    });
  } catch {
    // Signed out here whatever the gateway says; its tokens expire on their own.
  }
  endReason = reason;
  mark(null);
  set(null, 'signout');
}

async function withLock<T>(work: () => Promise<T>): Promise<T> {
  const locks = (navigator as Navigator & { locks?: LockManager }).locks;
  if (locks?.request) return locks.request('flick-refresh', work) as Promise<T>;
  return work();
}

/** Renews the access token with the refresh cookie; false when there is no session (the user
 * must sign in again). */
export function refresh(): Promise<boolean> {
  inFlight ??= withLock(async () => {
    try {
      const s = await request<Session>('POST', '/auth/refresh', { body: { attempt: attempt() } });
      answered();
      mark(s.user.id);
      set(fromSession(s));
      return true;
    } catch (err) {
      if (err instanceof ApiError && [400, 401, 403, 422].includes(err.status)) {
        answered();
        if (current) await signOut('Your session has ended. Sign in again.');
        else mark(null);
        return false;
      }
      // The gateway is unreachable: keep the token until it expires and try again soon.
      clearTimeout(timer);
      timer = setTimeout(() => void refresh(), 5_000 + Math.random() * 5_000);
      return current !== null && current.expiresAt > Date.now();
    }
  }).finally(() => {
    inFlight = null;
  });
  return inFlight;
}

/** A valid access token, renewed first when it is about to expire; null when signed out. */
export async function accessToken(): Promise<string | null> {
  if (!current) return null;
  if (current.expiresAt - Date.now() < Math.min(30_000, (current.ttlMs ?? 900_000) / 4)) await refresh();
  return current?.accessToken ?? null;
}

// Another tab signed in or out.
window.addEventListener('storage', (event) => {
  if (event.key !== MARK && event.key !== null) return;
  const who = marked();
  if (!who && current) {
    endReason = 'You signed out in another tab.';
    set(null, 'signout');
  } else if (who && who !== current?.user.id) {
    void refresh();
  }
});

/** Settles once the page knows whether it is signed in (a reload restores the session from
 * the cookie; a browser that never signed in here skips the round trip). */
export const restored: Promise<void> = marked() ? refresh().then(() => undefined) : Promise.resolve();

// Timers sleep in background tabs: check on return.
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible' && current && renewInMs(current.expiresAt, current.ttlMs ?? 900_000, Date.now(), 0) <= 1_000) {
    void refresh();
  }
});
