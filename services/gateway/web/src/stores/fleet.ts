// The fleet as the browser knows it: the servers the user may see, each one's newest headline
// and a few minutes of per-second CPU for its sparkline, and the alerts firing on it. While the
// fleet page is open one fleet subscription keeps the list and the figures (`stream`); otherwise
// the list is the REST API's. Firing alerts come from the REST API, then from the alert stream.

import { allPages, api } from '../api';
import { type AlertSummary, FleetRows, worse } from '../lib/fleet';
import { type FleetEvent, live } from '../live';
import { withRecent } from './recentAlerts';
import type { Alert, AlertEvent, Server, Severity } from '../types';

/** The sparkline's window. */
export const SPARK_SECS = 300;

/**
 * At most one `fleet.metrics` frame this often. Shorter than the collectors' 1 Hz on purpose: a
 * frame carries only each server's newest sample since the previous frame, so with frames every
 * second exactly, a sample that arrives a little early shares its frame with the next one and
 * one of the two never reaches the sparkline.
 */
export const FLEET_INTERVAL_MS = 900;

/**
 * A listing (the `fleet.servers` frames after a subscription) is taken as complete when the
 * figures start or after this long without another of its frames (a fleet where none reports).
 */
const LISTING_QUIET_MS = 2_000;

type Listener = () => void;

export class FleetStore {
  private readonly list = new FleetRows(SPARK_SECS);
  readonly rows = this.list.rows;
  /** Firing alerts by alert id. */
  private readonly firing = new Map<string, { serverId: string; severity: Severity }>();
  loaded = false;
  error: string | null = null;
  /** Bumped when the list changes (servers come, go, or are renamed or retagged). */
  listVersion = 0;
  /** Bumped on every change. */
  version = 0;
  private readonly listeners = new Set<Listener>();
  private stops: (() => void)[] = [];
  private users = 0;
  private loading: Promise<void> | null = null;
  /** Whether the fleet subscription keeps the list (the REST list is then not applied). */
  private streaming = false;
  private listingTimer: ReturnType<typeof setTimeout> | undefined;

  /** Starts listening (the first page that needs the fleet); the returned function stops. */
  use(): () => void {
    this.users += 1;
    if (this.users === 1) {
      this.stops.push(
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

  /**
   * The fleet subscription, until the returned function is called: one subscription on one
   * socket however many servers there are, which also announces servers that appear, disappear
   * or change (after a reconnection, its new listing replaces the list).
   */
  stream(): () => void {
    this.streaming = true;
    const stopEvents = live.onFleet((e) => this.onFleet(e));
    const stopWatch = live.watchFleet({ intervalMs: FLEET_INTERVAL_MS });
    return () => {
      this.streaming = false;
      stopWatch();
      stopEvents();
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

  /**
   * Loads (or reloads) the firing alerts, and the server list unless the fleet is streaming
   * (then its listing loads the list: `loaded` waits for it).
   */
  load(): Promise<void> {
    this.loading ??= (async () => {
      try {
        if (!this.streaming) {
          const servers = await api.servers();
          // A subscription that started meanwhile knows better than this older answer.
          if (!this.streaming) {
            this.setServers(servers);
            this.loaded = true;
          }
        }
        this.error = null;
        await this.loadAlerts();
      } catch (err) {
        this.error = err instanceof Error ? err.message : String(err);
        if (!this.streaming) this.loaded = true;
      } finally {
        this.loading = null;
        this.notify();
      }
    })();
    return this.loading;
  }

  setServers(servers: readonly Server[]): void {
    this.list.replace(servers);
    this.listVersion += 1;
    this.summarise();
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

  onFleet(event: FleetEvent): void {
    const listChanged = this.list.apply(event);
    clearTimeout(this.listingTimer);
    if (this.list.listing) this.listingTimer = setTimeout(() => this.endListing(), LISTING_QUIET_MS);
    if (event.type === 'metrics' && !listChanged) {
      // Figures only: no notification, the page redraws on its own clock.
      this.version += 1;
      return;
    }
    if (event.type === 'servers') {
      this.loaded = true;
      this.error = null;
    }
    if (listChanged) this.listChanged();
    this.notify();
  }

  private endListing(): void {
    if (this.list.endListing()) {
      this.listChanged();
      this.notify();
    }
  }

  private listChanged(): void {
    this.listVersion += 1;
    this.summarise();
  }

  onAlert(event: AlertEvent): void {
    // An alert of a server the list does not hold yet: a new server became visible (while the
    // fleet streams, its listing says so itself).
    if (!this.rows.has(event.serverId) && !this.streaming) void this.load();
    if (event.state === 'firing') this.firing.set(event.alertId, { serverId: event.serverId, severity: event.severity });
    else this.firing.delete(event.alertId);
    this.summarise();
    this.notify();
  }

  remove(serverId: string): void {
    if (this.list.remove(serverId)) {
      this.listVersion += 1;
      this.notify();
    }
  }

  /** Forgets everything (signed out: the next user must not glimpse this one's fleet). */
  reset(): void {
    clearTimeout(this.listingTimer);
    this.list.clear();
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
