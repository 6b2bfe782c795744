-- What the alerter reads and remembers.

-- Per-server rules: a row replaces the configured default for that server and metric.
-- For `offline`, for_secs is the silence that fires the alert and the thresholds are unused.
-- A NULL threshold means no alert of that severity; a NULL margin means the default hysteresis.
CREATE TABLE alert_rules (
    server_id  text COLLATE "C" NOT NULL,
    metric     text NOT NULL CHECK (metric IN ('cpu', 'memory', 'disk', 'offline')),
    warning    real CHECK (warning BETWEEN 0 AND 100),
    critical   real CHECK (critical BETWEEN 0 AND 100),
    for_secs   integer NOT NULL DEFAULT 10 CHECK (for_secs BETWEEN 0 AND 86400),
    margin     real CHECK (margin BETWEEN 0 AND 100),
    enabled    boolean NOT NULL DEFAULT true,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (server_id, metric),
    CHECK (warning IS NULL OR critical IS NULL OR warning <= critical)
);

-- The alerter's memory: every threshold that is pending or firing (ok is the absence of a
-- row). Written in the same transaction as the outbox and the progress below.
CREATE TABLE alert_state (
    server_id  text COLLATE "C" NOT NULL,
    metric     text NOT NULL,
    severity   text NOT NULL CHECK (severity IN ('warning', 'critical')),
    phase      text NOT NULL CHECK (phase IN ('pending', 'firing')),
    since      timestamptz NOT NULL,
    alert_id   uuid,
    value      double precision,
    threshold  double precision,
    PRIMARY KEY (server_id, metric, severity)
);

-- Transitions decided but not yet acknowledged by JetStream. A transition is committed here
-- with the state that caused it, then published; a crash in between is recovered by
-- publishing what is left (JetStream drops a repeat by its Nats-Msg-Id).
CREATE TABLE alert_outbox (
    id         uuid PRIMARY KEY,
    subject    text NOT NULL,
    payload    text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- How far the alerter got in the metrics stream, and the fencing epoch of the current leader:
-- a replica that lost its lease can no longer commit.
CREATE TABLE alerter_progress (
    stream     text PRIMARY KEY,
    -- NULL until the first leader records where it started.
    sequence   bigint,
    epoch      bigint NOT NULL DEFAULT 0,
    leader     text,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Where alert transitions are sent. Secrets are sealed with the shared AES-256-GCM envelope
-- (fresh nonce, the channel id as associated data, key id): a JSON object of extra headers, and
-- the key the body is signed with (HMAC-SHA256).
CREATE TABLE notification_channels (
    id             uuid PRIMARY KEY,
    name           text NOT NULL,
    kind           text NOT NULL DEFAULT 'webhook' CHECK (kind IN ('webhook')),
    url            text NOT NULL CHECK (url ~ '^https?://'),
    secret_headers bytea,
    signing_secret bytea,
    enabled        boolean NOT NULL DEFAULT true,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
