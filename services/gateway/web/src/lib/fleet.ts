// The fleet table's rules: how the fleet subscription's frames keep the rows, what a search
// matches, how rows sort, and what state a server is in.

import type { FleetEvent } from '../live';
import type { Server, ServerStatus, Severity } from '../types';
import { type Headline, headlineOf } from './samples';
import { Sparkline } from './series';

export interface AlertSummary {
  count: number;
  severity: Severity | null;
}

export interface FleetRow {
  server: Server;
  latest: Headline | null;
  spark: Sparkline;
  alerts: AlertSummary;
}

/**
 * The rows of the fleet, as the fleet subscription keeps them: the listing that follows each
 * (re)subscription replaces them, later `fleet.servers` frames add, change and remove rows, and
 * `fleet.metrics` frames feed each row's newest headline and sparkline. A row outlives a
 * re-listing that still names its server, so its sparkline and figures stay.
 */
export class FleetRows {
  readonly rows = new Map<string, FleetRow>();
  /** The ids the listing under way has named so far; null when none is under way. */
  private listed: Set<string> | null = null;
  /** Whether the listing under way has had its first frame. */
  private heard = false;

  constructor(private readonly sparkSecs: number) {}

  /** Whether a listing was acknowledged and has not ended yet. */
  get listing(): boolean {
    return this.listed !== null;
  }

  /**
   * Applies what the fleet subscription delivered; true when the list changed (rows came, went,
   * or a server's name, host name, tags or owner changed), false for figures only.
   */
  apply(event: FleetEvent): boolean {
    switch (event.type) {
      case 'subscribed':
        this.listed = new Set();
        this.heard = false;
        return false;
      case 'servers': {
        const frame = event.data;
        let changed = false;
        if (frame.initial && this.listed) {
          this.heard = true;
          for (const s of frame.added) this.listed.add(s.id);
        } else if (!frame.initial) {
          changed = this.endListing();
        }
        for (const server of [...frame.added, ...frame.changed]) {
          this.put(server);
          changed = true;
        }
        for (const id of frame.removed) {
          this.listed?.delete(id);
          changed = this.rows.delete(id) || changed;
        }
        // The gateway marks the listing's last frame (older gateways did not: then the first
        // figures or a quiet spell end it).
        if (frame.initial && frame.complete) changed = this.endListing() || changed;
        return changed;
      }
      case 'metrics': {
        // The listing's frames all come before the first figures.
        const changed = this.endListing();
        for (const sample of event.data.samples) {
          const row = this.rows.get(sample.serverId);
          if (!row) continue;
          const h = headlineOf(sample);
          if (!row.latest || h.t >= row.latest.t) row.latest = h;
          row.spark.push(h.t, h.cpu);
        }
        return changed;
      }
    }
  }

  /**
   * The listing is complete: rows it did not name are gone (deleted or given away while the
   * socket was down). A listing not heard from yet removes nothing: an empty fleet is listed by
   * an empty frame, never by silence.
   */
  endListing(): boolean {
    const listed = this.listed;
    if (!listed || !this.heard) return false;
    this.listed = null;
    let changed = false;
    for (const id of [...this.rows.keys()]) {
      if (!listed.has(id)) changed = this.rows.delete(id) || changed;
    }
    return changed;
  }

  /** The list from the REST API (no subscription is on): the same as one complete listing. */
  replace(servers: readonly Server[]): void {
    this.apply({ type: 'subscribed' });
    this.apply({ type: 'servers', data: { initial: true, added: [...servers], changed: [], removed: [] } });
    this.endListing();
  }

  remove(serverId: string): boolean {
    this.listed?.delete(serverId);
    return this.rows.delete(serverId);
  }

  clear(): void {
    this.rows.clear();
    this.listed = null;
  }

  private put(server: Server): void {
    const row = this.rows.get(server.id);
    if (row) row.server = server;
    else this.rows.set(server.id, { server, latest: null, spark: new Sparkline(this.sparkSecs), alerts: { count: 0, severity: null } });
  }
}

export type SortKey = 'name' | 'status' | 'cpu' | 'memory' | 'disk' | 'network' | 'alerts';
export type SortDir = 'asc' | 'desc';

export const SORT_KEYS: readonly SortKey[] = ['name', 'status', 'cpu', 'memory', 'disk', 'network', 'alerts'];

/** A server with no sample for this long is offline (the gateway's `offline_after_secs`). */
export const OFFLINE_AFTER_SECS = 30;

/** Online when a sample arrived recently; before the first live sample, what the API said. */
export function rowStatus(row: FleetRow, nowSecs: number): ServerStatus {
  if (row.latest) return nowSecs - row.latest.t <= OFFLINE_AFTER_SECS ? 'online' : 'offline';
  const seen = row.server.lastSeenAt ? Date.parse(row.server.lastSeenAt) / 1000 : null;
  if (row.server.status === 'online' && seen !== null && nowSecs - seen > 2 * OFFLINE_AFTER_SECS) return 'offline';
  return row.server.status;
}

/** Case-insensitive: every word of the query must occur in the name, host name, a tag or the id. */
export function matches(server: Server, query: string): boolean {
  const words = query.toLowerCase().split(/\s+/).filter(Boolean);
  if (words.length === 0) return true;
  const hay = [server.name, server.hostname ?? '', server.id, ...server.tags].join('\u0000').toLowerCase();
  return words.every((w) => hay.includes(w));
}

const STATUS_RANK: Record<ServerStatus, number> = { offline: 0, unknown: 1, online: 2 };
const SEVERITY_RANK = (s: Severity | null): number => (s === 'critical' ? 2 : s === 'warning' ? 1 : 0);

function metric(row: FleetRow, key: SortKey): number | null {
  const l = row.latest;
  switch (key) {
    case 'cpu':
      return l ? l.cpu : null;
    case 'memory':
      return l ? l.memory : null;
    case 'disk':
      return l ? l.disk : null;
    case 'network':
      return l ? l.network : null;
    default:
      return null;
  }
}

const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' });

/** Each row's place in name order, computed once per list (a collator is too slow per compare). */
const nameRanks = new WeakMap<FleetRow, { server: Server; rank: number }>();

function rankNames(rows: readonly FleetRow[]): void {
  const stale = rows.some((r) => nameRanks.get(r)?.server !== r.server);
  if (!stale) return;
  const sorted = [...rows].sort(
    (a, b) => collator.compare(a.server.name, b.server.name) || (a.server.id < b.server.id ? -1 : a.server.id > b.server.id ? 1 : 0),
  );
  sorted.forEach((r, i) => nameRanks.set(r, { server: r.server, rank: i }));
}

/**
 * Sorts in place by `key`; servers without a value go last whichever the direction, and ties
 * fall back to the name so rows do not swap places between updates.
 */
export function sortRows(rows: FleetRow[], key: SortKey, dir: SortDir, nowSecs: number): FleetRow[] {
  const sign = dir === 'asc' ? 1 : -1;
  rankNames(rows);
  const byName = (a: FleetRow, b: FleetRow) => nameRanks.get(a)!.rank - nameRanks.get(b)!.rank;
  let compare: (a: FleetRow, b: FleetRow) => number;
  if (key === 'name') {
    compare = (a, b) => sign * byName(a, b);
  } else if (key === 'status') {
    compare = (a, b) =>
      sign * (STATUS_RANK[rowStatus(a, nowSecs)] - STATUS_RANK[rowStatus(b, nowSecs)]) || byName(a, b);
  } else if (key === 'alerts') {
    compare = (a, b) =>
      sign * (SEVERITY_RANK(a.alerts.severity) - SEVERITY_RANK(b.alerts.severity) || a.alerts.count - b.alerts.count) ||
      byName(a, b);
  } else {
    compare = (a, b) => {
      const va = metric(a, key);
      const vb = metric(b, key);
      if (va === null && vb === null) return byName(a, b);
      if (va === null) return 1;
      if (vb === null) return -1;
      return sign * (va - vb) || byName(a, b);
    };
  }
  return rows.sort(compare);
}

/** `cpu:desc` from the URL, or the default (name ascending). */
export function parseSort(text: string | null | undefined): { key: SortKey; dir: SortDir } {
  const [k, d] = (text ?? '').split(':');
  const key = (SORT_KEYS as readonly string[]).includes(k ?? '') ? (k as SortKey) : 'name';
  return { key, dir: d === 'desc' ? 'desc' : 'asc' };
}

/** The worse severity of the two. */
export function worse(a: Severity | null, b: Severity | null): Severity | null {
  return SEVERITY_RANK(a) >= SEVERITY_RANK(b) ? a : b;
}

/** Rows visible in a scrolled list of fixed-height rows, with some spare above and below. */
export function visibleRange(
  scrollTop: number,
  viewport: number,
  rowHeight: number,
  total: number,
  overscan = 6,
): { start: number; end: number } {
  const first = Math.floor(Math.max(0, scrollTop) / rowHeight);
  const count = Math.ceil(Math.max(0, viewport) / rowHeight) + 1;
  const start = Math.max(0, first - overscan);
  const end = Math.min(total, first + count + overscan);
  return { start, end: Math.max(start, end) };
}
