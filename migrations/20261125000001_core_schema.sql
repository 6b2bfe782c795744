-- FLick's core schema, for plain PostgreSQL 15 and TimescaleDB alike. The TimescaleDB
-- features (hypertable, compression, continuous aggregates) are added by the next migration
-- only when the extension is available.

-- One row per monitored server. The persister creates it the first time a sample arrives
-- (owner NULL: visible to admins only); the gateway creates and edits them for users.
CREATE TABLE servers (
    id           text COLLATE "C" PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_-]{1,64}$'),
    name         text NOT NULL,
    hostname     text,
    owner_id     uuid,
    tags         text[] NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz
);
CREATE INDEX servers_owner_idx ON servers (owner_id);

-- One row per sample, keyed (server_id, ts) so a redelivered sample is a no-op. The headline
-- figures have a column each (they are charted, aggregated and alerted on); the per-core,
-- per-mount and per-interface detail is variable in length and read only for one server's
-- detail view: cores as a real[] (4 bytes a core), mounts and interfaces as the wire's JSON
-- objects, so new detail fields within payload version 1 need no migration. They are `json`
-- (validated text, returned whole), not `jsonb`: they are never searched, and converting to
-- jsonb costs a quarter of the insert time.
--
-- Server ids are ASCII tokens: every server_id column uses the "C" collation, so the
-- (server_id, ts) key compares bytes instead of calling the locale's collation (15-25 % of the
-- insert time on the hot path).
CREATE TABLE metrics (
    server_id    text        COLLATE "C" NOT NULL,
    ts           timestamptz NOT NULL,
    cpu          real        NOT NULL,
    memory       real        NOT NULL,
    disk         real        NOT NULL,
    network      bigint      NOT NULL,
    network_rx   bigint,
    network_tx   bigint,
    load1        real,
    load5        real,
    load15       real,
    memory_used  bigint,
    memory_total bigint,
    swap_used    bigint,
    swap_total   bigint,
    disk_read    bigint,
    disk_write   bigint,
    uptime_secs  bigint,
    processes    integer,
    cpu_cores    real[],
    mounts       json,
    interfaces   json,
    PRIMARY KEY (server_id, ts)
);

-- Every alert transition exactly as published (idempotent on the transition id) …
CREATE TABLE alert_events (
    id         uuid PRIMARY KEY,
    alert_id   uuid        NOT NULL,
    server_id  text        COLLATE "C" NOT NULL,
    metric     text        NOT NULL,
    severity   text        NOT NULL CHECK (severity IN ('warning', 'critical')),
    state      text        NOT NULL CHECK (state IN ('firing', 'resolved')),
    value      double precision,
    threshold  double precision,
    started_at timestamptz NOT NULL,
    at         timestamptz NOT NULL,
    message    text,
    stored_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alert_events_alert_idx ON alert_events (alert_id);
CREATE INDEX alert_events_at_idx ON alert_events (at);

-- … and one row per alert, firing until its resolution arrives (whatever order they arrive in).
CREATE TABLE alerts (
    id          uuid PRIMARY KEY,
    server_id   text        COLLATE "C" NOT NULL,
    metric      text        NOT NULL,
    severity    text        NOT NULL CHECK (severity IN ('warning', 'critical')),
    state       text        NOT NULL CHECK (state IN ('firing', 'resolved')),
    value       double precision,
    threshold   double precision,
    started_at  timestamptz NOT NULL,
    resolved_at timestamptz,
    message     text,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alerts_server_started_idx ON alerts (server_id, started_at DESC);
CREATE INDEX alerts_started_idx ON alerts (started_at DESC);
CREATE INDEX alerts_firing_idx ON alerts (server_id) WHERE state = 'firing';

-- Log entries, idempotent on their id; read newest first per server or overall.
CREATE TABLE logs (
    id        uuid PRIMARY KEY,
    server_id text        COLLATE "C" NOT NULL,
    ts        timestamptz NOT NULL,
    level     text        NOT NULL CHECK (level IN ('trace', 'debug', 'info', 'warn', 'error')),
    message   text        NOT NULL,
    source    text,
    fields    jsonb,
    stored_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX logs_server_ts_idx ON logs (server_id, ts DESC, id DESC);
CREATE INDEX logs_ts_idx ON logs (ts DESC, id DESC);
