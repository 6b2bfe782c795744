-- SQL for Grafana (issue 20): a schema of views, `flick_api`, whose names, columns and units
-- are a public interface like the NATS subjects, and a role, `flick_api_reader`, that may read
-- those views and nothing else. Grafana's built-in PostgreSQL data source can then chart FLick
-- through a login the operator makes a member of the role (docs/grafana/README.md), without a
-- plugin and without seeing a table. The tables stay free to change, the views do not: a later
-- migration may add columns to a view (CREATE OR REPLACE VIEW appends them), never rename,
-- drop or retype one. PostgreSQL refuses to drop or retype a table column a view reads, so a
-- migration that must recreates the view around it, same columns.
--
-- The views are ordinary views, not security_invoker ones: they read the tables with the
-- rights of their owner (the role that migrates), so the reader needs SELECT on the views
-- alone. They leave out whatever a dashboard must not see: password hashes, tokens, sealed
-- credentials and channel secrets are in tables no view reads, and the top-process lists of
-- alerts are left out because command lines can carry secrets (an alert's message names the
-- processes already).
--
-- A deleted server's data from before its deletion is hidden at once: `DELETE /servers/{id}`
-- only writes a tombstone and the persister's purge removes the rows later, in batches
-- (services/persister/src/purge.rs, whose bounds the filters below repeat), which matters once
-- a collector still reporting under the id brings the server back. A bucket that began before
-- the deletion is hidden until the purge is done (`purged_at`): until then it still counts the
-- old samples. Samples and aggregates are those of the servers in `flick_api.servers`, so every
-- server_id charted has a name to show.

-- Roles belong to the cluster, not to a database: the role is created once, by whichever
-- database migrates first, and every database grants to it on its own (below). Test databases
-- migrate many at a time on one cluster, and a CREATE ROLE racing another transaction's
-- uncommitted one waits for it and then fails with unique_violation, not duplicate_object:
-- both mean the role is there. A migrating role that may not create roles (a database owner
-- without CREATEROLE) must not stop the services from starting: the schema is still created,
-- with a warning, and an administrator creates the role and applies the grants by hand
-- (docs/grafana/README.md says how).
DO $role$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'flick_api_reader') THEN
        CREATE ROLE flick_api_reader NOLOGIN;
    END IF;
EXCEPTION
    WHEN duplicate_object OR unique_violation THEN
        NULL;
    WHEN insufficient_privilege THEN
        RAISE WARNING 'role flick_api_reader not created: % (see docs/grafana/README.md)', SQLERRM;
END
$role$;

CREATE SCHEMA flick_api;
COMMENT ON SCHEMA flick_api IS
    'FLick''s stable SQL interface for dashboards (Grafana): views with documented columns and units. See docs/grafana/README.md.';
-- New schemas give PUBLIC nothing; said here so that no one adds a grant to PUBLIC instead of
-- to the reader.
REVOKE ALL ON SCHEMA flick_api FROM PUBLIC;

-- The credentials column (sealed) and updated_at's bookkeeping stay out; owner_id is the
-- owner's user id, not their e-mail address: account data is not monitoring data, and a
-- dashboard login that lists every address is a list for phishing.
CREATE VIEW flick_api.servers AS
SELECT s.id,
       s.name,
       s.hostname,
       s.owner_id,
       s.tags,
       s.created_at,
       s.last_seen_at
FROM public.servers s;
COMMENT ON VIEW flick_api.servers IS
    'Monitored servers. owner_id: the owning user''s id (NULL: a discovered server, visible to admins only in FLick).';

-- The headline figures of every sample, under names that carry their units (the wire's units:
-- shared/src/wire/metric_sample.rs). The hottest temperature sensor is worked out of the JSON
-- only when a query asks for it (a view's unused columns are never computed).
CREATE VIEW flick_api.samples AS
SELECT m.ts           AS time,
       m.server_id,
       m.cpu          AS cpu_percent,
       m.memory       AS memory_percent,
       m.disk         AS disk_percent,
       m.network      AS network_bytes_per_second,
       m.network_rx   AS network_rx_bytes_per_second,
       m.network_tx   AS network_tx_bytes_per_second,
       m.load1,
       m.load5,
       m.load15,
       m.memory_used  AS memory_used_bytes,
       m.memory_total AS memory_total_bytes,
       m.swap_used    AS swap_used_bytes,
       m.swap_total   AS swap_total_bytes,
       m.disk_read    AS disk_read_bytes_per_second,
       m.disk_write   AS disk_write_bytes_per_second,
       m.uptime_secs  AS uptime_seconds,
       m.processes,
       (SELECT max((t.sensor ->> 'celsius')::double precision)
        FROM json_array_elements(CASE WHEN json_typeof(m.temperatures) = 'array'
                                      THEN m.temperatures END) AS t (sensor))
                      AS temperature_max_celsius
FROM public.metrics m
JOIN public.servers s ON s.id = m.server_id
LEFT JOIN public.server_tombstones d ON d.server_id = m.server_id
WHERE d.deleted_at IS NULL OR m.ts > d.deleted_at;
COMMENT ON VIEW flick_api.samples IS
    'One row per sample (raw, every few seconds per server). Percentages 0-100, rates in bytes per second, sizes in bytes.';

-- One-minute and one-hour buckets with the same columns on both kinds of server. Means are
-- true means (sums over counts), never averages of averages.
--
-- With TimescaleDB they read the continuous aggregates, which exist only where the TimescaleDB
-- migration found the extension: the test is whether they exist, not whether the extension does
-- (a server that gained TimescaleDB later has the extension and no aggregates). Those
-- aggregates keep sums and one count per bucket, so the means of network_rx, network_tx and
-- load1 divide by every sample of the bucket: equal to the plain figure whenever every sample
-- carries them (FLick's collector always sends them), lower when a publisher left some out.
--
-- Without TimescaleDB the buckets are computed from the samples at query time. A GROUP BY over
-- date_bin would read every stored sample of a server whatever the time range asked for (a
-- filter on the bucket cannot become a range of ts), so each server's series of bucket starts
-- is generated instead, filtered by the query's time range, and each bucket left aggregates its
-- own range of the (server_id, ts) key: a dashboard's six hours cost six hours of samples.
-- date_bin with time_bucket's origin (a Monday, 2000-01-03 UTC) gives the same buckets as
-- TimescaleDB in every time zone, which date_trunc would not.
-- The minute and the hour views differ only in their width and the aggregate they read: one
-- definition of each kind serves both.
DO $aggregates$
DECLARE
    timescale constant boolean := to_regclass('public.metrics_1m') IS NOT NULL
                                  AND to_regclass('public.metrics_1h') IS NOT NULL;
    bucket record;
BEGIN
    FOR bucket IN
        SELECT * FROM (VALUES ('samples_1m', 'metrics_1m', interval '1 minute'),
                              ('samples_1h', 'metrics_1h', interval '1 hour'))
                      AS v (view_name, aggregate, width)
    LOOP
        IF timescale THEN
            -- metrics_1h's counts and sums are sums of the minutes' (numeric where they add up
            -- bigints): cast, so the columns have the types of the plain view.
            EXECUTE format($$
                CREATE VIEW flick_api.%1$I AS
                SELECT c.bucket                                                         AS time,
                       c.server_id,
                       c.samples::bigint                                                AS samples,
                       c.cpu_sum::double precision / c.samples::double precision        AS cpu_percent_avg,
                       c.cpu_min::double precision                                      AS cpu_percent_min,
                       c.cpu_max::double precision                                      AS cpu_percent_max,
                       c.memory_sum::double precision / c.samples::double precision     AS memory_percent_avg,
                       c.memory_min::double precision                                   AS memory_percent_min,
                       c.memory_max::double precision                                   AS memory_percent_max,
                       c.disk_sum::double precision / c.samples::double precision       AS disk_percent_avg,
                       c.disk_min::double precision                                     AS disk_percent_min,
                       c.disk_max::double precision                                     AS disk_percent_max,
                       c.network_sum::double precision / c.samples::double precision    AS network_bytes_per_second_avg,
                       c.network_min::bigint                                            AS network_bytes_per_second_min,
                       c.network_max::bigint                                            AS network_bytes_per_second_max,
                       c.network_rx_sum::double precision / c.samples::double precision AS network_rx_bytes_per_second_avg,
                       c.network_tx_sum::double precision / c.samples::double precision AS network_tx_bytes_per_second_avg,
                       c.load1_sum::double precision / c.samples::double precision      AS load1_avg,
                       c.load1_max::double precision                                    AS load1_max
                FROM public.%2$I c
                JOIN public.servers s ON s.id = c.server_id
                LEFT JOIN public.server_tombstones d ON d.server_id = c.server_id
                WHERE d.deleted_at IS NULL OR d.purged_at IS NOT NULL OR c.bucket > d.deleted_at$$,
                bucket.view_name, bucket.aggregate);
        ELSE
            EXECUTE format($$
                CREATE VIEW flick_api.%1$I AS
                SELECT b.time,
                       s.id AS server_id,
                       a.samples,
                       a.cpu_percent_avg, a.cpu_percent_min, a.cpu_percent_max,
                       a.memory_percent_avg, a.memory_percent_min, a.memory_percent_max,
                       a.disk_percent_avg, a.disk_percent_min, a.disk_percent_max,
                       a.network_bytes_per_second_avg, a.network_bytes_per_second_min, a.network_bytes_per_second_max,
                       a.network_rx_bytes_per_second_avg, a.network_tx_bytes_per_second_avg,
                       a.load1_avg, a.load1_max
                FROM public.servers s
                LEFT JOIN public.server_tombstones d ON d.server_id = s.id
                CROSS JOIN LATERAL generate_series(
                    date_bin(%2$L::interval,
                             (SELECT min(m.ts) FROM public.metrics m WHERE m.server_id = s.id),
                             timestamptz '2000-01-03 00:00:00+00'),
                    (SELECT max(m.ts) FROM public.metrics m WHERE m.server_id = s.id),
                    %2$L::interval) AS b (time)
                CROSS JOIN LATERAL (
                    SELECT count(*)                         AS samples,
                           avg(m.cpu)                       AS cpu_percent_avg,
                           min(m.cpu)::double precision     AS cpu_percent_min,
                           max(m.cpu)::double precision     AS cpu_percent_max,
                           avg(m.memory)                    AS memory_percent_avg,
                           min(m.memory)::double precision  AS memory_percent_min,
                           max(m.memory)::double precision  AS memory_percent_max,
                           avg(m.disk)                      AS disk_percent_avg,
                           min(m.disk)::double precision    AS disk_percent_min,
                           max(m.disk)::double precision    AS disk_percent_max,
                           avg(m.network)::double precision AS network_bytes_per_second_avg,
                           min(m.network)                   AS network_bytes_per_second_min,
                           max(m.network)                   AS network_bytes_per_second_max,
                           avg(m.network_rx)::double precision AS network_rx_bytes_per_second_avg,
                           avg(m.network_tx)::double precision AS network_tx_bytes_per_second_avg,
                           avg(m.load1)                     AS load1_avg,
                           max(m.load1)::double precision   AS load1_max
                    FROM public.metrics m
                    WHERE m.server_id = s.id AND m.ts >= b.time AND m.ts < b.time + %2$L::interval
                ) AS a
                WHERE a.samples > 0
                  AND (d.deleted_at IS NULL OR d.purged_at IS NOT NULL OR b.time > d.deleted_at)$$,
                bucket.view_name, bucket.width);
        END IF;
    END LOOP;
END
$aggregates$;
COMMENT ON VIEW flick_api.samples_1m IS
    'One-minute buckets per server: time (bucket start), samples (count), avg/min/max of cpu, memory and disk (percent) and network (bytes per second), rx/tx and load1 means.';
COMMENT ON VIEW flick_api.samples_1h IS
    'One-hour buckets per server, the columns of samples_1m.';

-- Alerts of the host carry container '' in the tables; NULL here, which a table panel shows
-- as empty. `time` is when the alert started firing, for Grafana's time filter and
-- annotations; duration_seconds runs on while the alert fires.
CREATE VIEW flick_api.alerts AS
SELECT a.id,
       a.started_at AS time,
       a.server_id,
       NULLIF(a.container, '') AS container,
       a.metric,
       a.severity,
       a.state,
       a.value,
       a.threshold,
       a.started_at,
       a.resolved_at,
       extract(epoch FROM COALESCE(a.resolved_at, now()) - a.started_at)::double precision
           AS duration_seconds,
       a.message,
       a.acknowledged_at IS NOT NULL AS acknowledged,
       a.acknowledged_at,
       a.acknowledged_by,
       a.updated_at
FROM public.alerts a
LEFT JOIN public.server_tombstones d ON d.server_id = a.server_id
WHERE d.deleted_at IS NULL OR a.started_at > d.deleted_at;
COMMENT ON VIEW flick_api.alerts IS
    'One row per alert, firing until resolved. value and threshold in the metric''s unit (percent; °C for temperature).';

CREATE VIEW flick_api.alert_events AS
SELECT e.id,
       e.at AS time,
       e.alert_id,
       e.server_id,
       NULLIF(e.container, '') AS container,
       e.metric,
       e.severity,
       e.state,
       e.value,
       e.threshold,
       e.started_at,
       e.message
FROM public.alert_events e
LEFT JOIN public.server_tombstones d ON d.server_id = e.server_id
WHERE d.deleted_at IS NULL OR e.started_at > d.deleted_at;
COMMENT ON VIEW flick_api.alert_events IS
    'Every alert transition (firing, resolved) as published; time is when it happened.';

-- SELECT on what is in the schema now: a migration that adds a view grants on it the same way
-- (and the test that lists every view of the schema fails until it does).
DO $grants$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'flick_api_reader') THEN
        GRANT USAGE ON SCHEMA flick_api TO flick_api_reader;
        GRANT SELECT ON ALL TABLES IN SCHEMA flick_api TO flick_api_reader;
    ELSE
        RAISE WARNING 'role flick_api_reader missing: flick_api granted to no one (see docs/grafana/README.md)';
    END IF;
END
$grants$;
