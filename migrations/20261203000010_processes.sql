-- Top-process lists (`<prefix>.processes.<serverId>`, every few seconds per host), kept for
-- `retention.processes_days`, and the processes attached to each firing CPU or memory alert,
-- kept with the alert (`retention.alerts_days`). Lists are the wire's JSON: read whole, never
-- searched.
CREATE TABLE process_lists (
    server_id text        COLLATE "C" NOT NULL,
    ts        timestamptz NOT NULL,
    by_cpu    json        NOT NULL,
    by_memory json        NOT NULL,
    PRIMARY KEY (server_id, ts)
);

ALTER TABLE alert_events ADD COLUMN top_processes json;
ALTER TABLE alerts ADD COLUMN top_processes json;
