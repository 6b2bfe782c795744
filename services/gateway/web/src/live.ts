// Live data over `WS /api/v1/ws`: first-message authentication (never a token in the URL),
// subscriptions spread over as many sockets as the gateway's per-connection limit needs, a
// client-side budget that stays under its message rate limit (both read from the `auth` ack), an
// application ping that notices a dead socket, and reconnection with capped, jittered exponential
// backoff that resubscribes: servers from the newest sample their owners hold (`since`, replayed
// by the gateway), the fleet with a fresh listing.

import { accessToken, onSession, refresh, session } from './auth';
import { timed } from './lib/frame';
import type { AlertEvent, FleetMetrics, FleetServers, MetricSample, Replayed } from './types';

const PING_EVERY_MS = 20_000;
const PONG_WITHIN_MS = 10_000;
const ANSWER_WITHIN_MS = 10_000;

/** What the client allows itself on a socket: a margin under the gateway's limits. */
export interface Budget {
  /** Servers per socket. */
  perSocket: number;
  /** Client messages: a burst, then this many a second. */
  burst: number;
  perSecond: number;
}

/**
 * Before the first `auth` ack names the limits (or when it names none): under the gateway's
 * defaults, 200 subscriptions per connection and 20 messages a second with a burst of 40.
 */
export const DEFAULT_BUDGET: Readonly<Budget> = { perSocket: 190, burst: 30, perSecond: 15 };

const positive = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v > 0;

/**
 * The budget under the limits of an `auth` ack: 10 subscriptions fewer (a quarter fewer when the
 * limit is small) and 75 % of the message rate and burst. The gateway counts on its own clock, so
 * messages that leave here evenly may reach it bunched; and a request retried after a lost answer
 * is a message this client did not plan for. A limit missing or not a positive number keeps the
 * default.
 */
export function budgetOf(limits: unknown): Budget {
  const l = (limits ?? {}) as Record<string, unknown>;
  const subs = l['subscriptions'];
  const perSecond = l['messagesPerSecond'];
  const burst = l['messageBurst'];
  return {
    perSocket: positive(subs) ? Math.max(1, Math.floor(subs - Math.min(10, subs / 4))) : DEFAULT_BUDGET.perSocket,
    perSecond: positive(perSecond) ? perSecond * 0.75 : DEFAULT_BUDGET.perSecond,
    burst: positive(burst) ? Math.max(1, Math.floor(burst * 0.75)) : DEFAULT_BUDGET.burst,
  };
}

export type SocketState = 'idle' | 'connecting' | 'open' | 'waiting' | 'offline';

export interface LiveStatus {
  state: SocketState;
  /** When state is `waiting`: epoch ms of the next attempt. */
  retryAt?: number;
  /** Why the last socket closed, in words. */
  reason?: string;
  sockets: number;
  /** Servers subscribed one by one. */
  servers: number;
  /** Whether the fleet subscription is on. */
  fleet: boolean;
}

/** Delay before reconnection attempt `n` (0-based): 0.5 s doubling to 15 s, 50–100 % of it. */
export function backoffMs(attempt: number, random = Math.random()): number {
  const base = Math.min(15_000, 500 * 2 ** Math.min(attempt, 10));
  return Math.round(base * (0.5 + random / 2));
}

/** How one owner watches a server. */
export interface WatchOptions {
  /** At most one sample per interval (0: every sample); the smallest of the owners' wins. */
  intervalMs?: number;
  /**
   * Where the stream starts, as an RFC 3339 time: the gateway first replays the stored samples
   * after it, then goes on live. Asked at every (re)subscription, so an owner that answers with
   * the newest sample it holds resumes after a reconnection with no gap and no duplicate. The
   * earliest of the owners' wins; an owner joining a subscription already running gets no replay.
   */
  since?: () => string | null | undefined;
}

export interface FleetOptions {
  /** At most one `fleet.metrics` frame per interval. */
  intervalMs: number;
  /** Only servers carrying every one of these tags. */
  tags?: readonly string[];
}

/** What the fleet subscription delivers. */
export type FleetEvent =
  /** The gateway acknowledged a (re)subscription: the listing of every server follows. */
  | { type: 'subscribed' }
  | { type: 'servers'; data: FleetServers }
  | { type: 'metrics'; data: FleetMetrics };

interface Outgoing {
  type: string;
  data?: unknown;
  id?: number;
}

interface Pending {
  kind: 'subscribe' | 'unsubscribe' | 'alerts' | 'fleet' | 'auth';
  serverId?: string;
  sentAt: number;
}

/** The listeners of one kind of event. */
class Listeners<T> {
  private readonly set = new Set<(value: T) => void>();

  add(listener: (value: T) => void): () => void {
    this.set.add(listener);
    return () => void this.set.delete(listener);
  }

  emit(value: T): void {
    for (const l of this.set) l(value);
  }
}

const sameFleet = (a: FleetOptions | null, b: FleetOptions | null): boolean =>
  a === b || (!!a && !!b && a.intervalMs === b.intervalMs && (a.tags ?? []).join('\u0000') === (b.tags ?? []).join('\u0000'));

class Socket {
  ws: WebSocket | null = null;
  state: SocketState = 'idle';
  attempt = 0;
  retryAt = 0;
  reason = '';
  /** Servers this socket should carry, and the interval each asked for. */
  readonly servers = new Map<string, number>();
  /** Servers the gateway acknowledged on the current connection. */
  readonly confirmed = new Set<string>();
  alerts = false;
  fleet: FleetOptions | null = null;
  /** This connection's budget: the pool's until its own `auth` ack names the limits. */
  budget: Budget;
  private queue: Outgoing[] = [];
  private readonly pending = new Map<number, Pending>();
  private tokens: number;
  private refilledAt = performance.now();
  private pumpTimer: ReturnType<typeof setTimeout> | undefined;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private pingTimer: ReturnType<typeof setInterval> | undefined;
  private lastHeard = 0;
  private authed = false;

  constructor(
    private readonly pool: LivePool,
    readonly index: number,
  ) {
    this.budget = pool.budget;
    this.tokens = this.budget.burst;
  }

  /** Whether anything is wanted of this socket. */
  carries(): boolean {
    return this.servers.size > 0 || this.alerts || this.fleet !== null;
  }

  connect(): void {
    clearTimeout(this.retryTimer);
    if (this.ws || !session()) return;
    if (!navigator.onLine) {
      this.state = 'offline';
      this.pool.changed();
      return;
    }
    this.state = 'connecting';
    this.authed = false;
    this.pool.changed();
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${scheme}//${location.host}/api/v1/ws`);
    this.ws = ws;
    ws.onopen = () => void this.onOpen(ws);
    ws.onmessage = (event) => timed(() => this.onMessage(ws, event));
    ws.onclose = (event) => this.onClose(ws, event.code, event.reason);
    ws.onerror = () => {
      // A close event follows with the details.
    };
  }

  private async onOpen(ws: WebSocket): Promise<void> {
    const token = await accessToken();
    if (ws !== this.ws) return;
    if (!token) {
      this.drop(ws, 'signed out');
      return;
    }
    this.lastHeard = performance.now();
    this.queue = [];
    this.pending.clear();
    this.confirmed.clear();
    this.tokens = this.budget.burst;
    this.send({ type: 'auth', data: { token } }, { kind: 'auth', sentAt: Date.now() }, true);
    clearInterval(this.pingTimer);
    this.pingTimer = setInterval(() => this.heartbeat(ws), PING_EVERY_MS / 2);
  }

  private heartbeat(ws: WebSocket): void {
    if (ws !== this.ws) return;
    const silent = performance.now() - this.lastHeard;
    if (silent > PING_EVERY_MS + PONG_WITHIN_MS) {
      this.drop(ws, 'no answer from the gateway');
      return;
    }
    if (silent > PING_EVERY_MS / 2) this.enqueue({ type: 'ping' });
    // Requests the gateway never answered: ask again.
    const now = Date.now();
    for (const [id, p] of this.pending) {
      if (now - p.sentAt < ANSWER_WITHIN_MS) continue;
      this.pending.delete(id);
      this.resend(p);
    }
  }

  /** Asks again for what a lost or refused request was for, if it is still wanted. */
  private resend(p: Pending): void {
    if (p.kind === 'subscribe' && p.serverId && this.servers.has(p.serverId)) this.subscribe(p.serverId);
    else if (p.kind === 'alerts' && this.alerts) this.enqueue({ type: 'alerts.subscribe' }, 'alerts');
    else if (p.kind === 'fleet' && this.fleet) this.subscribeFleet();
  }

  private onMessage(ws: WebSocket, event: MessageEvent): void {
    if (ws !== this.ws) return;
    this.lastHeard = performance.now();
    let frame: { type?: string; id?: number | null; data?: Record<string, unknown> };
    try {
      frame = JSON.parse(event.data as string);
    } catch {
      return;
    }
    switch (frame.type) {
      case 'resource_metrics':
        this.pool.sampleEvents.emit(frame.data as unknown as MetricSample);
        return;
      case 'fleet.metrics':
        this.pool.fleetEvents.emit({ type: 'metrics', data: frame.data as unknown as FleetMetrics });
        return;
      case 'fleet.servers':
        this.pool.fleetEvents.emit({ type: 'servers', data: frame.data as unknown as FleetServers });
        return;
      case 'server_metrics.replayed':
        this.pool.replayEvents.emit(frame.data as unknown as Replayed);
        return;
      case 'alert':
        this.pool.alertEvents.emit(frame.data as unknown as AlertEvent);
        return;
      case 'ack':
        this.onAck(frame.id ?? null, frame.data ?? {});
        return;
      case 'error':
        this.onError(frame.id ?? null, frame.data ?? {});
        return;
      default:
        return;
    }
  }

  private onAck(id: number | null, data: Record<string, unknown>): void {
    const p = id === null ? undefined : this.pending.get(id);
    if (id !== null) this.pending.delete(id);
    if (data['type'] === 'auth') {
      this.budget = budgetOf(data['limits']);
      this.tokens = Math.min(this.tokens, this.budget.burst);
      const first = !this.authed;
      this.authed = true;
      // Before this socket subscribes anything: servers over its limit go to other sockets.
      this.pool.adopt(this.budget);
      if (first) {
        this.state = 'open';
        this.attempt = 0;
        this.reason = '';
        if (this.alerts) this.enqueue({ type: 'alerts.subscribe' }, 'alerts');
        if (this.fleet) this.subscribeFleet();
        for (const serverId of this.servers.keys()) this.subscribe(serverId);
        this.pool.changed();
        this.pool.reconnected(this);
      }
    } else if (data['type'] === 'server_metrics.subscribe' && p?.serverId) {
      this.confirmed.add(p.serverId);
    } else if (data['type'] === 'fleet.subscribe' && this.fleet) {
      this.pool.fleetEvents.emit({ type: 'subscribed' });
    }
  }

  private onError(id: number | null, data: Record<string, unknown>): void {
    const p = id === null ? undefined : this.pending.get(id);
    if (id !== null) this.pending.delete(id);
    const code = data['code'];
    // A subscription refused, or one ended by the gateway (no id): not an unsubscription's answer.
    if (code === 'not_found' && (p?.kind === 'subscribe' || (id === null && typeof data['serverId'] === 'string'))) {
      const serverId = p?.serverId ?? (data['serverId'] as string);
      this.servers.delete(serverId);
      this.confirmed.delete(serverId);
      this.pool.emitGone(serverId);
    } else if (code === 'limit_exceeded' && p?.serverId) {
      this.pool.overflow(this, p.serverId);
    } else if (code === 'rate_limited') {
      // The budget was too generous (another message source?): pause a second, then ask again.
      this.tokens = -this.budget.perSecond;
      if (p) this.resend(p);
    } else if (code === 'unauthorized' && p?.kind === 'auth') {
      void refresh().then((ok) => ok && this.reauth());
    }
  }

  private onClose(ws: WebSocket, code: number, reason: string): void {
    if (ws !== this.ws) return;
    this.ws = null;
    clearInterval(this.pingTimer);
    clearTimeout(this.pumpTimer);
    this.confirmed.clear();
    this.pending.clear();
    this.queue = [];
    this.authed = false;
    if (!session()) {
      this.state = 'idle';
      this.pool.changed();
      return;
    }
    this.reason = closeReason(code, reason);
    if (!this.carries()) {
      this.state = 'idle';
      this.pool.changed();
      return;
    }
    const delay = backoffMs(this.attempt);
    this.attempt += 1;
    this.state = navigator.onLine ? 'waiting' : 'offline';
    this.retryAt = Date.now() + delay;
    this.pool.changed();
    if (code === 1008) {
      // Policy violation: the token expired or was refused. Renew it before trying again.
      void refresh().finally(() => this.scheduleRetry(delay));
    } else {
      this.scheduleRetry(delay);
    }
  }

  private scheduleRetry(delay: number): void {
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  /** Ends the current socket as if it had closed (a close event may take long on a dead link). */
  drop(ws: WebSocket, reason: string): void {
    try {
      ws.close(4000, reason);
    } catch {
      // Already closing.
    }
    this.onClose(ws, 4000, reason);
  }

  /** Reconnects now (the browser came back online, or the user asked). */
  retryNow(): void {
    if (this.ws) return;
    this.attempt = 0;
    this.connect();
  }

  close(): void {
    clearTimeout(this.retryTimer);
    clearTimeout(this.pumpTimer);
    clearInterval(this.pingTimer);
    const ws = this.ws;
    this.ws = null;
    this.state = 'idle';
    this.servers.clear();
    this.confirmed.clear();
    this.pending.clear();
    this.queue = [];
    this.authed = false;
    this.alerts = false;
    this.fleet = null;
    if (ws) {
      try {
        ws.close(1000, 'closed by the page');
      } catch {
        // Already closing.
      }
    }
  }

  reauth(): void {
    if (!this.ws || !this.authed) return;
    const token = session()?.accessToken;
    if (token) this.send({ type: 'auth', data: { token } }, { kind: 'auth', sentAt: Date.now() }, true);
  }

  watchServer(serverId: string, intervalMs: number): void {
    const before = this.servers.get(serverId);
    this.servers.set(serverId, intervalMs);
    if (!this.ws && this.state === 'idle') this.connect();
    else if (this.authed && before !== intervalMs) this.subscribe(serverId);
  }

  unwatchServer(serverId: string): void {
    if (!this.servers.delete(serverId)) return;
    this.confirmed.delete(serverId);
    this.dropQueued('server_metrics.subscribe', serverId);
    if (this.authed && this.confirmed.size + this.queue.length > 0) this.enqueue({ type: 'server_metrics.unsubscribe', data: { serverId } }, 'unsubscribe', serverId);
  }

  watchAlerts(on: boolean): void {
    if (this.alerts === on) return;
    this.alerts = on;
    if (on && !this.ws && this.state === 'idle') this.connect();
    else if (this.authed) this.enqueue({ type: on ? 'alerts.subscribe' : 'alerts.unsubscribe' }, 'alerts');
  }

  /** Subscribes the fleet with these options (again, when they change), or unsubscribes (null). */
  watchFleet(options: FleetOptions | null): void {
    if (sameFleet(this.fleet, options)) return;
    const before = this.fleet;
    this.fleet = options;
    if (options && !this.ws && this.state === 'idle') this.connect();
    else if (this.authed && options) this.subscribeFleet();
    else if (this.authed && before) {
      this.dropQueued('fleet.subscribe');
      this.enqueue({ type: 'fleet.unsubscribe' }, 'unsubscribe');
    }
  }

  private subscribeFleet(): void {
    const { intervalMs, tags } = this.fleet!;
    this.dropQueued('fleet.subscribe');
    this.enqueue({ type: 'fleet.subscribe', data: tags && tags.length > 0 ? { intervalMs, tags } : { intervalMs } }, 'fleet');
  }

  private subscribe(serverId: string): void {
    const intervalMs = this.servers.get(serverId) ?? 0;
    const since = this.pool.sinceFor(serverId);
    this.dropQueued('server_metrics.subscribe', serverId);
    this.enqueue(
      {
        type: 'server_metrics.subscribe',
        data: { serverId, ...(intervalMs > 0 ? { intervalMs } : {}), ...(since ? { since } : {}) },
      },
      'subscribe',
      serverId,
    );
  }

  /** A later request of the same kind replaces one still waiting in the queue. */
  private dropQueued(type: string, serverId?: string): void {
    this.queue = this.queue.filter((m) => m.type !== type || (serverId !== undefined && (m.data as { serverId?: string }).serverId !== serverId));
  }

  private enqueue(message: Outgoing, kind?: Pending['kind'], serverId?: string): void {
    if (kind) message.id = this.pool.nextId(kind, serverId, this.pending);
    this.queue.push(message);
    this.pump();
  }

  private send(message: Outgoing, pending: Pending, urgent = false): void {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return;
    message.id = this.pool.nextId(pending.kind, pending.serverId, this.pending);
    if (!urgent) {
      this.queue.push(message);
      this.pump();
      return;
    }
    this.tokens -= 1;
    this.ws.send(JSON.stringify(message));
  }

  /** Sends what the budget allows now, and comes back when more is allowed. */
  private pump(): void {
    clearTimeout(this.pumpTimer);
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN || !this.authed) return;
    const { burst, perSecond } = this.budget;
    const now = performance.now();
    this.tokens = Math.min(burst, this.tokens + ((now - this.refilledAt) / 1000) * perSecond);
    this.refilledAt = now;
    while (this.queue.length > 0 && this.tokens >= 1) {
      const message = this.queue.shift()!;
      this.tokens -= 1;
      if (message.id !== undefined) {
        const p = this.pending.get(message.id);
        if (p) p.sentAt = Date.now();
      }
      ws.send(JSON.stringify(message));
    }
    if (this.queue.length > 0) {
      const wait = ((1 - this.tokens) / perSecond) * 1000;
      this.pumpTimer = setTimeout(() => this.pump(), Math.max(20, wait));
    }
  }
}

function closeReason(code: number, reason: string): string {
  if (reason) return reason;
  switch (code) {
    case 1001:
      return 'the gateway went away';
    case 1006:
      return 'the connection was lost';
    case 1008:
      return 'the session token was refused';
    case 1013:
      return 'the gateway asked to try again later';
    default:
      return `closed (${code})`;
  }
}

/** Every live socket of the page, and who listens to what. */
export class LivePool {
  private sockets: Socket[] = [];
  private readonly owners = new Map<string, Map<symbol, WatchOptions>>();
  private readonly assigned = new Map<string, Socket>();
  private readonly dirty = new Set<string>();
  /** What the newest `auth` ack allows (the default before one). */
  budget: Budget = { ...DEFAULT_BUDGET };
  // What the sockets hear, for the page (`on…` below).
  readonly sampleEvents = new Listeners<MetricSample>();
  readonly replayEvents = new Listeners<Replayed>();
  readonly fleetEvents = new Listeners<FleetEvent>();
  readonly alertEvents = new Listeners<AlertEvent>();
  private readonly gone = new Listeners<string>();
  private readonly statuses = new Listeners<LiveStatus>();
  private readonly reconnects = new Listeners<void>();
  /** Owners of what the primary socket carries for the whole page. */
  private readonly held = { alerts: 0, fleet: 0 };
  private counter = 0;
  private notifyQueued = false;
  private flushQueued = false;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly everOpen = new WeakSet<Socket>();

  constructor() {
    window.addEventListener('online', () => this.sockets.forEach((s) => s.retryNow()));
    window.addEventListener('offline', () => {
      for (const s of this.sockets) if (s.ws) s.drop(s.ws, 'the browser is offline');
    });
    onSession((s, kind) => {
      if (!s) this.closeAll();
      else if (kind === 'token') this.sockets.forEach((socket) => socket.reauth());
      else this.sockets.forEach((socket) => socket.retryNow());
    });
  }

  nextId(kind: Pending['kind'], serverId: string | undefined, pending: Map<number, Pending>): number {
    this.counter += 1;
    pending.set(this.counter, { kind, sentAt: Date.now(), ...(serverId ? { serverId } : {}) });
    return this.counter;
  }

  /**
   * Watches a server's samples until the returned function is called. Several owners may watch
   * one server. Changes are applied together at the end of the task, so a page that stops
   * watching many servers closes sockets instead of sending as many unsubscribes.
   */
  watch(serverId: string, options: WatchOptions = {}): () => void {
    const key = Symbol(serverId);
    let owners = this.owners.get(serverId);
    if (!owners) {
      owners = new Map();
      this.owners.set(serverId, owners);
    }
    owners.set(key, options);
    this.touch(serverId);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const o = this.owners.get(serverId);
      if (!o) return;
      o.delete(key);
      if (o.size === 0) this.owners.delete(serverId);
      this.touch(serverId);
    };
  }

  /** Where a (re)subscription of the server starts: the earliest `since` of its owners. */
  sinceFor(serverId: string): string | undefined {
    let earliest: string | undefined;
    let earliestMs = Infinity;
    for (const o of this.owners.get(serverId)?.values() ?? []) {
      const since = o.since?.();
      const ms = since ? Date.parse(since) : NaN;
      if (since && ms < earliestMs) {
        earliest = since;
        earliestMs = ms;
      }
    }
    return earliest;
  }

  private intervalFor(serverId: string): number {
    const owners = this.owners.get(serverId);
    return owners ? Math.min(...[...owners.values()].map((o) => o.intervalMs ?? 0)) : 0;
  }

  /** The alert stream, on while anyone holds it. */
  watchAlerts(): () => void {
    return this.hold('alerts', (socket, on) => socket.watchAlerts(on));
  }

  /**
   * The fleet subscription (one, on the primary socket, whatever the number of servers), on while
   * anyone holds it: `onFleet` hears its frames.
   */
  watchFleet(options: FleetOptions): () => void {
    return this.hold('fleet', (socket, on) => socket.watchFleet(on ? options : null));
  }

  private hold(what: 'alerts' | 'fleet', set: (socket: Socket, on: boolean) => void): () => void {
    this.held[what] += 1;
    set(this.primary(), true);
    this.changed();
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.held[what] -= 1;
      if (this.held[what] > 0) return;
      const socket = this.sockets[0];
      if (socket) set(socket, false);
      this.scheduleFlush();
    };
  }

  private primary(): Socket {
    if (this.sockets.length === 0) this.sockets.push(new Socket(this, 0));
    return this.sockets[0]!;
  }

  private touch(serverId: string): void {
    this.dirty.add(serverId);
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushQueued) return;
    this.flushQueued = true;
    queueMicrotask(() => {
      this.flushQueued = false;
      this.flush();
    });
  }

  private flush(): void {
    const added: string[] = [];
    const removed: [string, Socket][] = [];
    for (const serverId of this.dirty) {
      const owners = this.owners.get(serverId);
      const socket = this.assigned.get(serverId);
      if (!owners && socket) removed.push([serverId, socket]);
      else if (owners) added.push(serverId);
    }
    this.dirty.clear();
    // Sockets left with nothing to carry are closed rather than told to unsubscribe each server.
    const leaving = new Map<Socket, string[]>();
    for (const [serverId, socket] of removed) {
      this.assigned.delete(serverId);
      const list = leaving.get(socket) ?? [];
      list.push(serverId);
      leaving.set(socket, list);
    }
    for (const [socket, ids] of leaving) {
      if (ids.length >= socket.servers.size && !socket.alerts && !socket.fleet) {
        socket.close();
      } else {
        for (const id of ids) socket.unwatchServer(id);
      }
    }
    this.sockets = this.sockets.filter((s) => s.carries() || s === this.sockets[0]);
    if (this.sockets.length === 1 && !this.sockets[0]!.carries()) this.sockets[0]!.close();
    for (const serverId of added) {
      const socket = this.assigned.get(serverId) ?? this.socketWithRoom();
      this.assigned.set(serverId, socket);
      socket.watchServer(serverId, this.intervalFor(serverId));
    }
    this.changed();
  }

  private socketWithRoom(): Socket {
    const socket = this.sockets.find((s) => s.servers.size < this.budget.perSocket);
    if (socket) return socket;
    const added = new Socket(this, this.sockets.length);
    this.sockets.push(added);
    return added;
  }

  /**
   * A socket's `auth` ack named its limits: from now on sockets get at most `budget.perSocket`
   * servers, and those over it on any socket (given out under the default) move to others, the
   * last given first.
   */
  adopt(budget: Budget): void {
    const before = this.budget.perSocket;
    this.budget = budget;
    if (budget.perSocket >= before) return;
    const moving: string[] = [];
    for (const socket of this.sockets) {
      const excess = [...socket.servers.keys()].slice(budget.perSocket);
      for (const serverId of excess) socket.unwatchServer(serverId);
      moving.push(...excess);
    }
    for (const serverId of moving) {
      const socket = this.socketWithRoom();
      this.assigned.set(serverId, socket);
      socket.watchServer(serverId, this.intervalFor(serverId));
    }
    if (moving.length > 0) this.changed();
  }

  /** The gateway refused one more server on `socket`: move it to another. */
  overflow(socket: Socket, serverId: string): void {
    socket.servers.delete(serverId);
    const added = new Socket(this, this.sockets.length);
    this.sockets.push(added);
    this.assigned.set(serverId, added);
    added.watchServer(serverId, this.intervalFor(serverId));
  }

  /** Samples of the servers watched, replayed ones included, in the order they arrive. */
  onSample(listener: (sample: MetricSample) => void): () => void {
    return this.sampleEvents.add(listener);
  }

  /** A `since` replay ended: live samples of that server follow. */
  onReplayed(listener: (replayed: Replayed) => void): () => void {
    return this.replayEvents.add(listener);
  }

  /** The fleet subscription's acknowledgements and frames. */
  onFleet(listener: (event: FleetEvent) => void): () => void {
    return this.fleetEvents.add(listener);
  }

  onAlert(listener: (event: AlertEvent) => void): () => void {
    return this.alertEvents.add(listener);
  }

  /** A server was refused or stopped being visible (deleted, given to another user). */
  onGone(listener: (serverId: string) => void): () => void {
    return this.gone.add(listener);
  }

  /** Sockets came back after a disconnection: refetch what the stream could not deliver. */
  onReconnect(listener: () => void): () => void {
    return this.reconnects.add(listener);
  }

  onStatus(listener: (s: LiveStatus) => void): () => void {
    const stop = this.statuses.add(listener);
    listener(this.status());
    return stop;
  }

  emitGone(serverId: string): void {
    this.owners.delete(serverId);
    this.assigned.delete(serverId);
    this.gone.emit(serverId);
  }

  reconnected(socket: Socket): void {
    if (!this.everOpen.has(socket)) {
      this.everOpen.add(socket);
      return;
    }
    // Several sockets come back together after a gateway restart: one notification.
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => this.reconnects.emit(), 300);
  }

  status(): LiveStatus {
    const active = this.sockets.filter((s) => s.carries());
    const servers = this.assigned.size;
    const fleet = active.some((s) => s.fleet !== null);
    if (active.length === 0) return { state: 'idle', sockets: 0, servers, fleet };
    const rank: Record<SocketState, number> = { offline: 4, waiting: 3, connecting: 2, idle: 1, open: 0 };
    let worst = active[0]!;
    for (const s of active) if (rank[s.state] > rank[worst.state]) worst = s;
    const status: LiveStatus = { state: worst.state, sockets: active.length, servers, fleet };
    if (worst.state === 'waiting') status.retryAt = worst.retryAt;
    if (worst.reason) status.reason = worst.reason;
    return status;
  }

  /** Coalesces status notifications to one per task. */
  changed(): void {
    if (this.notifyQueued) return;
    this.notifyQueued = true;
    queueMicrotask(() => {
      this.notifyQueued = false;
      this.statuses.emit(this.status());
    });
  }

  /** Reconnects every waiting socket now. */
  retryNow(): void {
    this.sockets.forEach((s) => s.retryNow());
  }

  private closeAll(): void {
    for (const s of this.sockets) s.close();
    this.sockets = [];
    this.assigned.clear();
    this.owners.clear();
    this.dirty.clear();
    this.held.alerts = 0;
    this.held.fleet = 0;
    this.changed();
  }
}

export const live = new LivePool();
