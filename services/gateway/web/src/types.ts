// The shapes of the REST API and the live WebSocket (see /api/v1/openapi.json and README.md).

export type Role = 'admin' | 'user';
export type ServerStatus = 'online' | 'offline' | 'unknown';
export type Severity = 'warning' | 'critical';
export type AlertState = 'firing' | 'resolved';

export interface User {
  id: string;
  email: string;
  role: Role;
  createdAt: string;
}

export interface Session {
  accessToken: string;
  tokenType: string;
  expiresIn: number;
  /** Absent: the refresh token is the HttpOnly cookie. */
  refreshToken?: string;
  user: User;
}

export interface Server {
  id: string;
  name: string;
  hostname?: string | null;
  tags: string[];
  status: ServerStatus;
  ownerId?: string | null;
  lastSeenAt?: string | null;
  createdAt: string;
  updatedAt: string;
  hasCredentials: boolean;
  /** `enrolled` (by a token), `registered` (created in the API) or `discovered` (reported by a service identity). */
  origin?: ServerOrigin;
}

export type ServerOrigin = 'registered' | 'enrolled' | 'discovered';

/** An enrolment token just created: the token and the commands are shown once. */
export interface CreatedEnrollment {
  id: string;
  name?: string | null;
  tags: string[];
  expiresAt: string;
  usesLeft: number;
  createdAt: string;
  token: string;
  /** Run as root on the host: installs the collector as a systemd service, enrols and starts it. */
  command: string;
  /** Only enrols a collector already installed. */
  enrollCommand: string;
  caSha256?: string | null;
  /** Where enrolled hosts will connect to NATS. */
  natsUrls: string[];
}

export interface LatestSample {
  timestamp: string;
  cpuUsage: number;
  memoryUsage: number;
  diskUsage: number;
  networkUsage: number;
  cpuCores?: number[] | null;
  memoryTotal?: number | null;
  memoryUsed?: number | null;
  swapTotal?: number | null;
  swapUsed?: number | null;
  load1?: number | null;
  load5?: number | null;
  load15?: number | null;
  uptimeSecs?: number | null;
  processes?: number | null;
  networkRx?: number | null;
  networkTx?: number | null;
  diskRead?: number | null;
  diskWrite?: number | null;
  mounts?: unknown;
  interfaces?: unknown;
}

export interface ServerDetail extends Server {
  latest?: LatestSample | null;
}

export interface MountUsage {
  mountPoint: string;
  device?: string;
  fileSystem?: string;
  totalBytes: number;
  /** Total minus free blocks, as df's "Used". */
  usedBytes: number;
  /** What a non-root writer can still use, as df's "Avail"; absent from older collectors. */
  availableBytes?: number;
}

/** One temperature sensor, degrees Celsius. */
export interface Temperature {
  label: string;
  celsius: number;
  maxCelsius?: number;
  criticalCelsius?: number;
}

export interface InterfaceRates {
  name: string;
  rxBytesPerSec: number;
  txBytesPerSec: number;
}

/** The `data` of a `resource_metrics` frame. */
export interface MetricSample {
  v: number;
  serverId: string;
  timestamp: string;
  cpuUsage: number;
  memoryUsage: number;
  diskUsage: number;
  networkUsage: number;
  hostname?: string;
  cpuCores?: number[];
  memory?: { totalBytes: number; usedBytes: number; availableBytes: number };
  swap?: { totalBytes: number; usedBytes: number };
  loadAverage?: { one: number; five: number; fifteen: number };
  uptimeSecs?: number;
  processCount?: number;
  mounts?: MountUsage[];
  diskIo?: { readBytesPerSec: number; writeBytesPerSec: number };
  network?: { rxBytesPerSec: number; txBytesPerSec: number };
  interfaces?: InterfaceRates[];
  /** Absent where the host has no sensors. */
  temperatures?: Temperature[];
  /** The host's containers, on the first sample after each refresh of the list (absent: no new list). */
  containers?: ContainerUsage[];
}

/** The `data` of an `alert` frame. */
export interface AlertEvent {
  v: number;
  id: string;
  alertId: string;
  serverId: string;
  metric: string;
  severity: Severity;
  state: AlertState;
  value?: number | null;
  threshold?: number | null;
  startedAt: string;
  at: string;
  message?: string | null;
  /** Container alerts: the container's name. */
  container?: string | null;
}

/** The `limits` of the `auth` ack: what the gateway allows this connection. */
export interface GatewayLimits {
  /** Servers one connection may subscribe to (a fleet subscription does not count). */
  subscriptions: number;
  /** Client messages per second, and the burst allowed above that rate. */
  messagesPerSecond: number;
  messageBurst: number;
  /** Frames queued for the client before the gateway drops it as too slow. */
  queuedFrames?: number;
  /** The largest client message, in bytes. */
  messageBytes?: number;
}

/** The `data` of a `server_metrics.replayed` frame: the `since` replay is over, live follows. */
export interface Replayed {
  serverId: string;
  /** How many samples were replayed. */
  samples: number;
  /** The timestamp of the last sample the replay covered (null: none). */
  until: string | null;
  /** False when the replay stopped short (a bound, or the stream not answering): `reason`. */
  complete?: boolean;
  reason?: string;
}

/** The `data` of a `fleet.servers` frame. */
export interface FleetServers {
  /** The listing that follows a `fleet.subscribe` (one or more frames): it replaces the list. */
  initial: boolean;
  /** The last frame of what the gateway announced at once (the listing may take several). */
  complete?: boolean;
  added: Server[];
  changed: Server[];
  /** Ids of servers no longer visible (deleted, or given to another owner). */
  removed: string[];
}

/** One entry of a `fleet.metrics` frame: a sample's headline figures, under the same names. */
export type FleetSample = Pick<
  MetricSample,
  'serverId' | 'timestamp' | 'cpuUsage' | 'memoryUsage' | 'diskUsage' | 'networkUsage' | 'uptimeSecs'
>;

/** The `data` of a `fleet.metrics` frame: the newest sample of each server since the last frame. */
export interface FleetMetrics {
  samples: FleetSample[];
}

export interface Alert {
  id: string;
  serverId: string;
  serverName?: string | null;
  metric: string;
  severity: Severity;
  state: AlertState;
  value?: number | null;
  threshold?: number | null;
  startedAt: string;
  resolvedAt?: string | null;
  acknowledgedAt?: string | null;
  acknowledgedBy?: string | null;
  message?: string | null;
  /** Container alerts: the container's name. */
  container?: string | null;
}

export interface LogEntry {
  id: string;
  serverId: string;
  timestamp: string;
  level: string;
  message: string;
  source?: string | null;
  fields?: Record<string, unknown> | null;
}

export interface Page<T> {
  items: T[];
  nextCursor?: string | null;
}

export interface Stat {
  avg?: number | null;
  min?: number | null;
  max?: number | null;
}

export interface HistoryPoint {
  t: string;
  samples: number;
  cpu: Stat;
  memory: Stat;
  disk: Stat;
  network: Stat;
  networkRx?: number | null;
  networkTx?: number | null;
  load1?: number | null;
}

export interface History {
  serverId: string;
  from: string;
  to: string;
  bucketSecs: number;
  source: string;
  points: HistoryPoint[];
}

export type RuleMetric = 'cpu' | 'memory' | 'disk' | 'temperature' | 'offline';

export interface Rule {
  warning?: number | null;
  critical?: number | null;
  forSecs: number;
  margin: number;
  enabled: boolean;
  source: 'default' | 'server';
}

export interface Thresholds {
  serverId: string;
  rules: Partial<Record<RuleMetric, Rule>>;
  /** `alerter`: the defaults the alerter recorded; `built-in`: no alerter has recorded any yet. */
  defaultsFrom?: 'alerter' | 'built-in';
  defaultsRecordedAt?: string | null;
}

/** An alert a rule would have fired over stored samples (`POST …/thresholds/preview`). */
export interface PreviewAlert {
  alertId: string;
  severity: 'warning' | 'critical';
  firedAt: string;
  resolvedAt: string | null;
  peak: number;
  threshold: number;
}

export interface Preview {
  serverId: string;
  metric: 'cpu' | 'memory' | 'disk';
  from: string;
  to: string;
  rule: Rule;
  samples: number;
  alerts: PreviewAlert[];
}

export interface RuleChange {
  warning?: number | null;
  critical?: number | null;
  forSecs?: number | null;
  margin?: number | null;
  enabled?: boolean | null;
}

export type ChannelKind = 'webhook' | 'standard_webhook' | 'slack' | 'discord' | 'telegram' | 'ntfy' | 'email';

export interface Channel {
  id: string;
  name: string;
  kind: ChannelKind;
  /** A URL that is a credential (Slack, Discord, with a password or a query) shows `…` for it. */
  url: string;
  enabled: boolean;
  settings: Record<string, unknown>;
  hasSecret: boolean;
  criticalOnly: boolean;
  tags: string[];
  repeatSecs?: number | null;
  headerNames: string[];
  signed: boolean;
  createdAt: string;
}

export interface NewChannel {
  name: string;
  kind: ChannelKind;
  url: string;
  settings?: Record<string, unknown>;
  secret?: string | null;
  signingSecret?: string | null;
  headers?: Record<string, string>;
  criticalOnly?: boolean;
  tags?: string[];
  repeatSecs?: number | null;
}

export type SilenceStatus = 'pending' | 'active' | 'expired';

export interface Silence {
  id: string;
  serverId?: string | null;
  tags: string[];
  metric?: string | null;
  startsAt: string;
  endsAt: string;
  comment: string;
  author: string;
  ownerId: string;
  createdAt: string;
  status: SilenceStatus;
}

export interface NewSilence {
  serverId?: string | null;
  tags?: string[];
  metric?: string | null;
  startsAt?: string;
  durationSecs?: number;
  endsAt?: string;
  comment?: string;
}

/** What an API token may do: every read, every change, log writing only, Prometheus scraping only. */
export type TokenScope = 'read' | 'write' | 'write:logs' | 'metrics:scrape';

/** `GET /tokens`: one of the caller's live API tokens (the secret is never shown again). */
export interface ApiToken {
  id: string;
  name: string;
  /** The account the token acts as. */
  ownerId: string;
  ownerEmail: string;
  scopes: TokenScope[];
  createdAt: string;
  /** `null`: until revoked. */
  expiresAt: string | null;
  /** Recorded at most once a minute. */
  lastUsedAt: string | null;
  lastUsedIp: string | null;
  /** The token's first characters (`flk_1a2b3c4d…`). */
  hint: string;
}

export interface NewApiToken {
  name: string;
  scopes: TokenScope[];
  expiresAt?: string | null;
}

/** An API token just created: `token` (`flk_<id>_<secret>`) is shown this once. */
export interface CreatedApiToken extends ApiToken {
  token: string;
}

export interface DeliveryAttempt {
  attempt: number;
  at: string;
  outcome: 'delivered' | 'failed' | 'refused';
  latencyMs: number;
  error?: string | null;
}

/** A notice the alerter sent (or tried to) to one channel: one page, maybe for several alerts. */
export interface Notification {
  id: string;
  channelId?: string | null;
  channelName: string;
  summary: string;
  alertIds: string[];
  serverIds: string[];
  repeat: boolean;
  test: boolean;
  status: 'sending' | 'delivered' | 'given_up' | 'unknown';
  createdAt: string;
  finishedAt?: string | null;
  attempts: DeliveryAttempt[];
}

export type DetailSeries = 'cores' | 'mounts' | 'interfaces' | 'swap' | 'load' | 'disk_io' | 'temperatures';

export interface DetailPoint {
  t: string;
  samples: number;
  avg?: number | null;
  min?: number | null;
  max?: number | null;
}

/** `GET /servers/{id}/metrics/detail`: a line per core, mount, interface direction… */
export interface DetailHistory {
  serverId: string;
  series: DetailSeries;
  unit: 'percent' | 'bytesPerSecond' | 'load' | 'celsius';
  from: string;
  to: string;
  bucketSecs: number;
  lines: { name: string; points: DetailPoint[] }[];
}

export interface ProcessUsage {
  pid: number;
  name: string;
  user?: string | null;
  /** Percent of the whole host (all cores). */
  cpuPercent: number;
  residentBytes: number;
  command?: string;
}

/** `GET /servers/{id}/processes`. */
export interface Processes {
  serverId: string;
  timestamp: string | null;
  byCpu: ProcessUsage[];
  byMemory: ProcessUsage[];
}

/** One container of a host, as its Docker or Podman engine reports it. */
export interface ContainerUsage {
  id: string;
  name: string;
  image?: string;
  /** `created`, `running`, `paused`, `restarting`, `removing`, `exited`, `dead`. */
  state: string;
  /** `starting`, `healthy`, `unhealthy`; absent without a health check. */
  health?: string | null;
  exitCode?: number | null;
  restarts: number;
  /** Percent of the whole host (all cores). */
  cpuPercent: number;
  memoryBytes: number;
  memoryLimitBytes?: number | null;
  /** Since the container started. */
  netRxBytes: number;
  netTxBytes: number;
  blockReadBytes: number;
  blockWriteBytes: number;
}

/** `GET /servers/{id}/containers`. */
export interface Containers {
  serverId: string;
  timestamp: string | null;
  containers: ContainerUsage[];
}
