-- TimescaleDB when the server has it; plain PostgreSQL otherwise. The same migration runs on
-- both: every TimescaleDB call is inside the guarded branch and sent with EXECUTE, so plain
-- PostgreSQL never parses it.
--
-- TimescaleDB counts as available only when it is preloaded (shared_preload_libraries) or
-- already installed: when the library exists but is not preloaded, CREATE EXTENSION is a FATAL
-- error that drops the connection, so pg_available_extensions alone is not enough.
--
-- Compression and retention policies are applied by the persister at start-up from its
-- configuration (they are settings, not schema).
DO $migration$
DECLARE
    available boolean;
BEGIN
    available := EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')
        OR 'timescaledb' = ANY (
            SELECT btrim(lib)
            FROM unnest(string_to_array(current_setting('shared_preload_libraries', true), ',')) AS lib
        );

    IF NOT available THEN
        -- Plain PostgreSQL: rows arrive in time order, so a BRIN index on ts is tiny and makes
        -- retention deletes and time-range scans cheap.
        CREATE INDEX metrics_ts_brin ON metrics USING brin (ts) WITH (pages_per_range = 32);
        RETURN;
    END IF;

    EXECUTE 'CREATE EXTENSION IF NOT EXISTS timescaledb';
    EXECUTE $$SELECT create_hypertable('metrics', 'ts', chunk_time_interval => interval '1 day',
                                       if_not_exists => true, migrate_data => true)$$;
    EXECUTE $$ALTER TABLE metrics SET (timescaledb.compress,
                                       timescaledb.compress_segmentby = 'server_id',
                                       timescaledb.compress_orderby = 'ts DESC')$$;

    -- One-minute buckets keep sums and counts beside min/max, so the hourly aggregate built on
    -- them has true means, not averages of averages.
    EXECUTE $$
        CREATE MATERIALIZED VIEW metrics_1m WITH (timescaledb.continuous) AS
        SELECT server_id,
               time_bucket(interval '1 minute', ts) AS bucket,
               count(*)          AS samples,
               sum(cpu)          AS cpu_sum,    min(cpu)     AS cpu_min,     max(cpu)     AS cpu_max,
               sum(memory)       AS memory_sum, min(memory)  AS memory_min,  max(memory)  AS memory_max,
               sum(disk)         AS disk_sum,   min(disk)    AS disk_min,    max(disk)    AS disk_max,
               sum(network)      AS network_sum, min(network) AS network_min, max(network) AS network_max,
               sum(network_rx)   AS network_rx_sum,
               sum(network_tx)   AS network_tx_sum,
               sum(load1)        AS load1_sum,  max(load1)   AS load1_max
        FROM metrics
        GROUP BY server_id, bucket
        WITH NO DATA$$;
    EXECUTE $$
        CREATE MATERIALIZED VIEW metrics_1h WITH (timescaledb.continuous) AS
        SELECT server_id,
               time_bucket(interval '1 hour', bucket) AS bucket,
               sum(samples)        AS samples,
               sum(cpu_sum)        AS cpu_sum,     min(cpu_min)     AS cpu_min,     max(cpu_max)     AS cpu_max,
               sum(memory_sum)     AS memory_sum,  min(memory_min)  AS memory_min,  max(memory_max)  AS memory_max,
               sum(disk_sum)       AS disk_sum,    min(disk_min)    AS disk_min,    max(disk_max)    AS disk_max,
               sum(network_sum)    AS network_sum, min(network_min) AS network_min, max(network_max) AS network_max,
               sum(network_rx_sum) AS network_rx_sum,
               sum(network_tx_sum) AS network_tx_sum,
               sum(load1_sum)      AS load1_sum,   max(load1_max)   AS load1_max
        FROM metrics_1m
        GROUP BY server_id, time_bucket(interval '1 hour', bucket)
        WITH NO DATA$$;
    -- Real-time aggregation: buckets not yet materialized are computed from raw rows, so the
    -- aggregates are never behind, whatever the refresh schedule.
    EXECUTE 'ALTER MATERIALIZED VIEW metrics_1m SET (timescaledb.materialized_only = false)';
    EXECUTE 'ALTER MATERIALIZED VIEW metrics_1h SET (timescaledb.materialized_only = false)';
    EXECUTE $$SELECT add_continuous_aggregate_policy('metrics_1m',
                 start_offset => interval '3 hours', end_offset => interval '1 minute',
                 schedule_interval => interval '1 minute', if_not_exists => true)$$;
    EXECUTE $$SELECT add_continuous_aggregate_policy('metrics_1h',
                 start_offset => interval '3 days', end_offset => interval '1 hour',
                 schedule_interval => interval '30 minutes', if_not_exists => true)$$;
END
$migration$;
