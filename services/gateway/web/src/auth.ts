// The session: tokens kept in localStorage ("keep me signed in") or sessionStorage, so a reload
// does not sign out; the access token renewed before it expires; one refresh at a time across
// tabs (refresh tokens work once: a token used twice revokes the whole session).

import { ApiError, request } from './http';
import type { Session, User } from './types';

const KEY = 'flick.session';
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
  refreshToken: string;
  /** Epoch milliseconds. */
  expiresAt: number;
  /** The access token's lifetime when issued, milliseconds. */
  ttlMs: number;
  user: User;
  remember: boolean;
}

type Listener = (session: StoredSession | null, reason?: string) => void;

let current: StoredSession | null = read();
let inFlight: Promise<boolean> | null = null;
let timer: ReturnType<typeof setTimeout> | undefined;
const listeners = new Set<Listener>();
/** Why the last session ended, shown on the sign-in page. */
export let endReason: string | null = null;

function parse(text: string | null): StoredSession | null {
  if (!text) return null;
  try {
    const s = JSON.parse(text) as StoredSession;
    return s && typeof s.accessToken === 'string' && typeof s.refreshToken === 'string' && s.user ? s : null;
  } catch {
    return null;
  }
}

function read(): StoredSession | null {
  try {
    return parse(sessionStorage.getItem(KEY)) ?? parse(localStorage.getItem(KEY));
  } catch {
    return null;
  }
}

function write(s: StoredSession | null): void {
  try {
    sessionStorage.removeItem(KEY);
    localStorage.removeItem(KEY);
    if (s) (s.remember ? localStorage : sessionStorage).setItem(KEY, JSON.stringify(s));
  } catch {
    // Storage refused (private mode, quota): the session lives in memory for this page.
  }
}

function set(s: StoredSession | null, reason?: string): void {
  const changedUser = (current?.user.id ?? null) !== (s?.user.id ?? null);
  current = s;
  schedule();
  for (const l of listeners) l(s, changedUser ? (reason ?? 'user') : 'token');
}

function fromSession(s: Session, remember: boolean): StoredSession {
  return {
    accessToken: s.accessToken,
    refreshToken: s.refreshToken,
    expiresAt: Date.now() + s.expiresIn * 1000,
    ttlMs: s.expiresIn * 1000,
    user: s.user,
    remember,
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

export async function signIn(email: string, password: string, remember: boolean): Promise<void> {
  const s = await request<Session>('POST', '/auth/login', { body: { email, password } });
  endReason = null;
  const stored = fromSession(s, remember);
  write(stored);
  set(stored, 'signin');
}

export async function register(email: string, password: string, remember: boolean): Promise<void> {
  const s = await request<Session>('POST', '/auth/register', { body: { email, password } });
  endReason = null;
  const stored = fromSession(s, remember);
  write(stored);
  set(stored, 'signin');
}

/** Ends the session here and on the gateway (its refresh tokens are revoked). */
export async function signOut(reason: string | null = null): Promise<void> {
  const s = current;
  endReason = reason;
  write(null);
  set(null, 'signout');
  if (s) {
    try {
      await request('POST', '/auth/logout', { body: { refreshToken: s.refreshToken } });
    } catch {
      // Signed out here whatever the gateway says; its refresh token expires on its own.
    }
  }
}

async function withLock<T>(work: () => Promise<T>): Promise<T> {
  const locks = (navigator as Navigator & { locks?: LockManager }).locks;
  if (locks?.request) return locks.request('flick-refresh', work) as Promise<T>;
  return work();
}

/** Renews the access token; false when the session is over (the user must sign in again). */
export function refresh(): Promise<boolean> {
  if (!current) return Promise.resolve(false);
  inFlight ??= withLock(async () => {
    const mine = current;
    if (!mine) return false;
    // Another tab may have renewed it while this one waited: take its session.
    const stored = read();
    if (stored && stored.refreshToken !== mine.refreshToken && stored.user.id === mine.user.id) {
      if (stored.expiresAt - Date.now() > Math.min(RENEW_BEFORE_MS, (stored.ttlMs ?? 900_000) / 3) / 2) {
        set(stored);
        return true;
      }
    }
    try {
      const s = await request<Session>('POST', '/auth/refresh', { body: { refreshToken: mine.refreshToken } });
      const next = fromSession(s, mine.remember);
      write(next);
      set(next);
      return true;
    } catch (err) {
      if (err instanceof ApiError && (err.status === 401 || err.status === 422 || err.status === 400)) {
        await signOut('Your session has ended. Sign in again.');
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

// Another tab signed in, renewed or signed out.
window.addEventListener('storage', (event) => {
  if (event.key !== KEY && event.key !== null) return;
  const stored = read();
  if (!stored && current) {
    endReason = 'You signed out in another tab.';
    set(null, 'signout');
  } else if (stored && stored.accessToken !== current?.accessToken) {
    set(stored);
  }
});

// Timers sleep in background tabs: check on return.
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible' && current && renewInMs(current.expiresAt, current.ttlMs ?? 900_000, Date.now(), 0) <= 1_000) {
    void refresh();
  }
});
