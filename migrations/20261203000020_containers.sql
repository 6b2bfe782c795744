-- Containers (issue 18, item 3): the container lists that ride on samples (`containers`), one
-- row per container per list, kept for `retention.metrics_days` like the samples they came
-- with; and container alerts, one per container: the container's name joins the key of the
-- alerter's state, of every stored alert and transition and of acknowledgements ('' for the
-- alerts of the host itself, so every existing row keeps its meaning).
CREATE TABLE containers (
    server_id          text        COLLATE "C" NOT NULL,
    ts                 timestamptz NOT NULL,
    name               text        NOT NULL,
    container_id       text        NOT NULL,
    image              text        NOT NULL DEFAULT '',
    state              text        NOT NULL,
    health             text,
    exit_code          bigint,
    restarts           bigint      NOT NULL DEFAULT 0,
    cpu_percent        real        NOT NULL DEFAULT 0,
    memory_bytes       bigint      NOT NULL DEFAULT 0,
    memory_limit_bytes bigint,
    net_rx_bytes       bigint      NOT NULL DEFAULT 0,
    net_tx_bytes       bigint      NOT NULL DEFAULT 0,
    block_read_bytes   bigint      NOT NULL DEFAULT 0,
    block_write_bytes  bigint      NOT NULL DEFAULT 0,
    PRIMARY KEY (server_id, ts, name)
);
-- Retention deletes by time across servers.
CREATE INDEX containers_ts_idx ON containers (ts);

ALTER TABLE alert_state ADD COLUMN container text NOT NULL DEFAULT '';
ALTER TABLE alert_state DROP CONSTRAINT alert_state_pkey;
ALTER TABLE alert_state ADD PRIMARY KEY (server_id, metric, severity, container);

ALTER TABLE alert_events ADD COLUMN container text NOT NULL DEFAULT '';
ALTER TABLE alerts ADD COLUMN container text NOT NULL DEFAULT '';

ALTER TABLE alert_acks ADD COLUMN container text NOT NULL DEFAULT '';
ALTER TABLE alert_acks DROP CONSTRAINT alert_acks_pkey;
ALTER TABLE alert_acks ADD PRIMARY KEY (server_id, metric, container);

-- A silence may name a container alert's metric (it then covers every container of its servers).
ALTER TABLE silences DROP CONSTRAINT IF EXISTS silences_metric_check;
ALTER TABLE silences ADD CONSTRAINT silences_metric_check CHECK (metric IN
    ('cpu', 'memory', 'disk', 'offline', 'container_stopped', 'container_restarting', 'container_unhealthy'));
