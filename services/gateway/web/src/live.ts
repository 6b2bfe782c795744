// Live data over `WS /api/v1/ws`: first-message authentication (never a token in the URL),
// subscriptions spread over as many sockets as the gateway's per-connection limit needs, a
// client-side budget that stays under its message rate limit, an application ping that notices a
// dead socket, and reconnection with capped, jittered exponential backoff that resubscribes.

import { accessToken, onSession, refresh, session } from './auth';
import { timed } from './lib/frame';
import type { AlertEvent, MetricSample } from './types';

/** Servers per socket: under the gateway's default `ws_max_subscriptions` (200). */
export const PER_SOCKET = 190;
/** Client messages: a burst of 30, then 15 a second (the gateway allows 40, then 20). */
const BURST = 30;
const PER_SECOND = 15;
const PING_EVERY_MS = 20_000;
const PONG_WITHIN_MS = 10_000;
const ANSWER_WITHIN_MS = 10_000;

export type SocketState = 'idle' | 'connecting' | 'open' | 'waiting' | 'offline';

export interface LiveStatus {
  state: SocketState;
  /** When state is `waiting`: epoch ms of the next attempt. */
  retryAt?: number;
  /** Why the last socket closed, in words. */
  reason?: string;
  sockets: number;
  servers: number;
}

/** Delay before reconnection attempt `n` (0-based): 0.5 s doubling to 15 s, 50–100 % of it. */
export function backoffMs(attempt: number, random = Math.random()): number {
  const base = Math.min(15_000, 500 * 2 ** Math.min(attempt, 10));
  return Math.round(base * (0.5 + random / 2));
}

interface Outgoing {
  type: string;
  data?: unknown;
  id?: number;
}

interface Pending {
  kind: 'subscribe' | 'unsubscribe' | 'alerts' | 'auth';
  serverId?: string;
  sentAt: number;
}

type SampleListener = (sample: MetricSample) => void;
type AlertListener = (event: AlertEvent) => void;
type GoneListener = (serverId: string) => void;

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
  private queue: Outgoing[] = [];
  private readonly pending = new Map<number, Pending>();
  private tokens = BURST;
  private refilledAt = performance.now();
  private pumpTimer: ReturnType<typeof setTimeout> | undefined;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private pingTimer: ReturnType<typeof setInterval> | undefined;
  private lastHeard = 0;
  private authed = false;

  constructor(
    private readonly pool: LivePool,
    readonly index: number,
  ) {}

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
    this.tokens = BURST;
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
    // Requests the gateway never answered (a message lost to its rate limit): ask again.
    const now = Date.now();
    for (const [id, p] of this.pending) {
      if (now - p.sentAt < ANSWER_WITHIN_MS) continue;
      this.pending.delete(id);
      if (p.kind === 'subscribe' && p.serverId && this.servers.has(p.serverId)) this.subscribe(p.serverId);
      if (p.kind === 'alerts' && this.alerts) this.enqueue({ type: 'alerts.subscribe' }, 'alerts');
    }
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
        this.pool.emitSample(frame.data as unknown as MetricSample);
        return;
      case 'alert':
        this.pool.emitAlert(frame.data as unknown as AlertEvent);
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
      const first = !this.authed;
      this.authed = true;
      if (first) {
        this.state = 'open';
        this.attempt = 0;
        this.reason = '';
        if (this.alerts) this.enqueue({ type: 'alerts.subscribe' }, 'alerts');
        for (const serverId of this.servers.keys()) this.subscribe(serverId);
        this.pool.changed();
        this.pool.reconnected(this);
      }
    } else if (data['type'] === 'server_metrics.subscribe' && p?.serverId) {
      this.confirmed.add(p.serverId);
    }
  }

  private onError(id: number | null, data: Record<string, unknown>): void {
    const p = id === null ? undefined : this.pending.get(id);
    if (id !== null) this.pending.delete(id);
    const code = data['code'];
    if (code === 'not_found' && (p?.serverId || typeof data['serverId'] === 'string')) {
      const serverId = p?.serverId ?? (data['serverId'] as string);
      this.servers.delete(serverId);
      this.confirmed.delete(serverId);
      this.pool.emitGone(serverId);
    } else if (code === 'limit_exceeded' && p?.serverId) {
      this.pool.overflow(this, p.serverId);
    } else if (code === 'rate_limited') {
      // The budget was too generous (another message source?): pause briefly.
      this.tokens = -PER_SECOND;
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
    if (this.servers.size === 0 && !this.alerts) {
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
    this.queue = this.queue.filter((m) => !(m.type === 'server_metrics.subscribe' && (m.data as { serverId: string }).serverId === serverId));
    if (this.authed && this.confirmed.size + this.queue.length > 0) this.enqueue({ type: 'server_metrics.unsubscribe', data: { serverId } }, 'unsubscribe', serverId);
  }

  watchAlerts(on: boolean): void {
    if (this.alerts === on) return;
    this.alerts = on;
    if (on && !this.ws && this.state === 'idle') this.connect();
    else if (this.authed) this.enqueue({ type: on ? 'alerts.subscribe' : 'alerts.unsubscribe' }, 'alerts');
  }

  private subscribe(serverId: string): void {
    const intervalMs = this.servers.get(serverId) ?? 0;
    // A later subscribe for the same server replaces one still waiting in the queue.
    this.queue = this.queue.filter((m) => !(m.type === 'server_metrics.subscribe' && (m.data as { serverId: string }).serverId === serverId));
    this.enqueue({ type: 'server_metrics.subscribe', data: intervalMs > 0 ? { serverId, intervalMs } : { serverId } }, 'subscribe', serverId);
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
    const now = performance.now();
    this.tokens = Math.min(BURST, this.tokens + ((now - this.refilledAt) / 1000) * PER_SECOND);
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
      const wait = ((1 - this.tokens) / PER_SECOND) * 1000;
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
  private readonly owners = new Map<string, Map<symbol, number>>();
  private readonly assigned = new Map<string, Socket>();
  private readonly dirty = new Set<string>();
  private readonly sampleListeners = new Set<SampleListener>();
  private readonly alertListeners = new Set<AlertListener>();
  private readonly goneListeners = new Set<GoneListener>();
  private readonly statusListeners = new Set<(s: LiveStatus) => void>();
  private readonly reconnectListeners = new Set<() => void>();
  private alertOwners = 0;
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
   * one server; the smallest interval wins. Changes are applied together at the end of the task,
   * so a page that stops watching a thousand servers closes sockets instead of sending a
   * thousand unsubscribes.
   */
  watch(serverId: string, intervalMs = 0): () => void {
    const key = Symbol(serverId);
    let owners = this.owners.get(serverId);
    if (!owners) {
      owners = new Map();
      this.owners.set(serverId, owners);
    }
    owners.set(key, intervalMs);
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

  /** Watches many servers (the fleet), in the order given: the first ones come live first. */
  watchMany(serverIds: readonly string[], intervalMs: number): () => void {
    const stops = serverIds.map((id) => this.watch(id, intervalMs));
    return () => stops.forEach((stop) => stop());
  }

  watchAlerts(): () => void {
    this.alertOwners += 1;
    if (this.alertOwners === 1) this.primary().watchAlerts(true);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.alertOwners -= 1;
      if (this.alertOwners === 0) {
        this.sockets[0]?.watchAlerts(false);
        this.scheduleFlush();
      }
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
      if (ids.length >= socket.servers.size && !socket.alerts) {
        socket.close();
      } else {
        for (const id of ids) socket.unwatchServer(id);
      }
    }
    this.sockets = this.sockets.filter((s) => s.servers.size > 0 || s.alerts || s === this.sockets[0]);
    if (this.sockets.length === 1 && this.sockets[0]!.servers.size === 0 && !this.sockets[0]!.alerts) {
      this.sockets[0]!.close();
    }
    for (const serverId of added) {
      const intervalMs = Math.min(...this.owners.get(serverId)!.values());
      const socket = this.assigned.get(serverId) ?? this.socketWithRoom();
      this.assigned.set(serverId, socket);
      socket.watchServer(serverId, intervalMs);
    }
    this.changed();
  }

  private socketWithRoom(): Socket {
    const socket = this.sockets.find((s) => s.servers.size < PER_SOCKET);
    if (socket) return socket;
    const added = new Socket(this, this.sockets.length);
    this.sockets.push(added);
    return added;
  }

  /** The gateway refused one more server on `socket`: move it to another. */
  overflow(socket: Socket, serverId: string): void {
    socket.servers.delete(serverId);
    const added = new Socket(this, this.sockets.length);
    this.sockets.push(added);
    this.assigned.set(serverId, added);
    const owners = this.owners.get(serverId);
    added.watchServer(serverId, owners ? Math.min(...owners.values()) : 0);
  }

  onSample(listener: SampleListener): () => void {
    this.sampleListeners.add(listener);
    return () => this.sampleListeners.delete(listener);
  }

  onAlert(listener: AlertListener): () => void {
    this.alertListeners.add(listener);
    return () => this.alertListeners.delete(listener);
  }

  /** A server was refused or stopped being visible (deleted, given to another user). */
  onGone(listener: GoneListener): () => void {
    this.goneListeners.add(listener);
    return () => this.goneListeners.delete(listener);
  }

  /** Sockets came back after a disconnection: refetch what the stream could not deliver. */
  onReconnect(listener: () => void): () => void {
    this.reconnectListeners.add(listener);
    return () => this.reconnectListeners.delete(listener);
  }

  onStatus(listener: (s: LiveStatus) => void): () => void {
    this.statusListeners.add(listener);
    listener(this.status());
    return () => this.statusListeners.delete(listener);
  }

  emitSample(sample: MetricSample): void {
    for (const l of this.sampleListeners) l(sample);
  }

  emitAlert(event: AlertEvent): void {
    for (const l of this.alertListeners) l(event);
  }

  emitGone(serverId: string): void {
    this.owners.delete(serverId);
    this.assigned.delete(serverId);
    for (const l of this.goneListeners) l(serverId);
  }

  reconnected(socket: Socket): void {
    if (!this.everOpen.has(socket)) {
      this.everOpen.add(socket);
      return;
    }
    // Several sockets come back together after a gateway restart: one notification.
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => {
      for (const l of this.reconnectListeners) l();
    }, 300);
  }

  status(): LiveStatus {
    const active = this.sockets.filter((s) => s.servers.size > 0 || s.alerts);
    const servers = this.assigned.size;
    if (active.length === 0) return { state: 'idle', sockets: 0, servers };
    const rank: Record<SocketState, number> = { offline: 4, waiting: 3, connecting: 2, idle: 1, open: 0 };
    let worst = active[0]!;
    for (const s of active) if (rank[s.state] > rank[worst.state]) worst = s;
    const status: LiveStatus = { state: worst.state, sockets: active.length, servers };
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
      const s = this.status();
      for (const l of this.statusListeners) l(s);
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
    this.alertOwners = 0;
    this.changed();
  }
}

export const live = new LivePool();
