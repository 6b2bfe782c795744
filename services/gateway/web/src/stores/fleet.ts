// The fleet as the browser knows it: the servers the API lists, each one's newest sample and a
// few minutes of per-second CPU for its sparkline, and the alerts firing on it. Fed by the live
// socket; the REST API only for the list and for what a reconnection may have missed.

import { allPages, api } from '../api';
import { type AlertSummary, type FleetRow, worse } from '../lib/fleet';
import { headlineOf, type Headline } from '../lib/samples';
import { Sparkline } from '../lib/series';
import { live } from '../live';
import { withRecent } from './recentAlerts';
import type { Alert, AlertEvent, MetricSample, Server, Severity } from '../types';

/** The sparkline's window. */
export const SPARK_SECS = 300;

type Listener = () => void;

export class FleetStore {
  readonly rows = new Map<string, FleetRow>();
  /** Firing alerts by alert id. */
  private readonly firing = new Map<string, { serverId: string; severity: Severity }>();
  loaded = false;
  error: string | null = null;
  /** Bumped when rows are added or removed (the list must be re-filtered). */
  listVersion = 0;
  /** Bumped on every change. */
  version = 0;
  private readonly listeners = new Set<Listener>();
  private stops: (() => void)[] = [];
  private users = 0;
  private loading: Promise<void> | null = null;

  /** Starts listening (the first page that needs the fleet); the returned function stops. */
  use(): () => void {
    this.users += 1;
    if (this.users === 1) {
      this.stops.push(
        live.onSample((s) => this.onSample(s)),
        live.onAlert((e) => this.onAlert(e)),
        live.onGone((id) => this.remove(id)),
        live.onReconnect(() => void this.loadAlerts()),
      );
    }
    return () => {
      this.users -= 1;
      if (this.users === 0) {
        this.stops.forEach((stop) => stop());
        this.stops = [];
      }
    };
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private notify(): void {
    this.version += 1;
    for (const l of this.listeners) l();
  }

  /** Loads (or reloads) the server list and the firing alerts. */
  load(): Promise<void> {
    this.loading ??= (async () => {
      try {
        const servers = await api.servers();
        this.setServers(servers);
        this.error = null;
        await this.loadAlerts();
      } catch (err) {
        this.error = err instanceof Error ? err.message : String(err);
      } finally {
        this.loaded = true;
        this.loading = null;
        this.notify();
      }
    })();
    return this.loading;
  }

  setServers(servers: readonly Server[]): void {
    const seen = new Set<string>();
    let changed = false;
    for (const server of servers) {
      seen.add(server.id);
      const row = this.rows.get(server.id);
      if (row) {
        row.server = server;
      } else {
        this.rows.set(server.id, { server, latest: null, spark: new Sparkline(SPARK_SECS), alerts: { count: 0, severity: null } });
        changed = true;
      }
    }
    for (const id of [...this.rows.keys()]) {
      if (!seen.has(id)) {
        this.rows.delete(id);
        changed = true;
      }
    }
    // Only a change of membership re-subscribes; names and tags are read at the next redraw.
    if (changed) this.listVersion += 1;
  }

  async loadAlerts(): Promise<void> {
    try {
      const alerts = await allPages<Alert>((cursor) => api.alerts({ state: 'firing', limit: 500, cursor }), 10);
      this.firing.clear();
      for (const a of withRecent(alerts, (x) => x.state === 'firing')) {
        if (a.state === 'firing') this.firing.set(a.id, { serverId: a.serverId, severity: a.severity });
      }
      this.summarise();
      this.notify();
    } catch {
      // The counts stay as they were; the live alert frames keep them moving.
    }
  }

  private summarise(): void {
    const by = new Map<string, AlertSummary>();
    for (const { serverId, severity } of this.firing.values()) {
      const s = by.get(serverId) ?? { count: 0, severity: null };
      s.count += 1;
      s.severity = worse(s.severity, severity);
      by.set(serverId, s);
    }
    for (const [id, row] of this.rows) row.alerts = by.get(id) ?? { count: 0, severity: null };
  }

  onSample(sample: MetricSample): void {
    const row = this.rows.get(sample.serverId);
    if (!row) return;
    const h: Headline = headlineOf(sample);
    if (!row.latest || h.t >= row.latest.t) row.latest = h;
    row.spark.push(h.t, h.cpu);
    this.version += 1;
    // No notification per sample: the page redraws on its own clock.
  }

  onAlert(event: AlertEvent): void {
    // An alert of a server the list does not hold yet: a new server became visible.
    if (!this.rows.has(event.serverId)) void this.load();
    if (event.state === 'firing') this.firing.set(event.alertId, { serverId: event.serverId, severity: event.severity });
    else this.firing.delete(event.alertId);
    this.summarise();
    this.notify();
  }

  remove(serverId: string): void {
    if (this.rows.delete(serverId)) {
      this.listVersion += 1;
      this.notify();
    }
  }

  /** Forgets everything (signed out: the next user must not glimpse this one's fleet). */
  reset(): void {
    this.rows.clear();
    this.firing.clear();
    this.loaded = false;
    this.error = null;
    this.listVersion += 1;
    this.notify();
  }

  /** Servers with firing alerts: for the navigation badge. */
  firingCount(): number {
    return this.firing.size;
  }
}

export const fleet = new FleetStore();
