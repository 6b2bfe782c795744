// A browser just big enough for live.ts in Node: a window, a location, an online navigator and a
// WebSocket the test plays the gateway on. Import it before the modules under test (and mock
// ../src/auth: the tests have a session without signing in).

import type { MetricSample } from '../src/types';

type Frame = { type: string; id?: number | null; data?: Record<string, unknown> };

export class FakeWebSocket {
  static readonly OPEN = 1;
  /** Every socket the page opened, oldest first. */
  static all: FakeWebSocket[] = [];
  readyState = 0;
  readonly sent: Frame[] = [];
  onopen: (() => void) | null = null;
  onmessage: ((event: { data: string }) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onerror: (() => void) | null = null;

  constructor(readonly url: string) {
    FakeWebSocket.all.push(this);
  }

  send(text: string): void {
    this.sent.push(JSON.parse(text) as Frame);
  }

  close(): void {
    this.readyState = 3;
  }

  /** The connection opens; the page authenticates (after its token, a promise). */
  async open(): Promise<void> {
    this.readyState = 1;
    this.onopen?.();
    await settle();
  }

  receive(frame: Frame): void {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }

  /** The data of what the page sent of this type, in order. */
  sentOf(type: string): Record<string, unknown>[] {
    return this.sent.filter((m) => m.type === type).map((m) => m.data ?? {});
  }

  /** The last message of this type (for this server). */
  private last(type: string, serverId?: string): Frame {
    const message = this.sent.filter((m) => m.type === type && (!serverId || m.data?.['serverId'] === serverId)).at(-1);
    if (!message) throw new Error(`nothing of type ${type} was sent`);
    return message;
  }

  /** Acknowledges the last message of this type (for this server), as the gateway does. */
  ack(type: string, extra: Record<string, unknown> = {}, serverId?: string): void {
    this.receive({ type: 'ack', id: this.last(type, serverId).id ?? null, data: { type, ...extra } });
  }

  /** Answers the last message of this type (for this server) with an error. */
  refuse(type: string, code: string, serverId?: string): void {
    this.receive({ type: 'error', id: this.last(type, serverId).id ?? null, data: { code, message: code } });
  }

  /** The connection is lost (the gateway restarted). */
  lose(): void {
    this.readyState = 3;
    this.onclose?.({ code: 1006, reason: '' });
  }
}

/** Lets the promises and microtasks queued so far run. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

export function sample(serverId: string, timestamp: string, cpuUsage = 10): MetricSample {
  return { v: 1, serverId, timestamp, cpuUsage, memoryUsage: 20, diskUsage: 30, networkUsage: 40 };
}

const g = globalThis as unknown as Record<string, unknown>;
const win = (g['window'] ??= new EventTarget()) as Record<string, unknown>;
win['matchMedia'] ??= () => ({ matches: false, addEventListener: () => undefined });
g['document'] ??= new EventTarget();
g['location'] ??= { protocol: 'http:', host: 'flick.test' };
Object.defineProperty(globalThis, 'navigator', { value: { onLine: true }, configurable: true });
g['WebSocket'] = FakeWebSocket;
