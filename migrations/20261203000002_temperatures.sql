-- A sample's temperature sensors (`MetricSample.temperatures`: label, celsius, maxCelsius,
-- criticalCelsius) as JSON, like its mounts and interfaces: the number and names of sensors
-- differ from host to host, so one column per sensor is impossible. NULL where the host
-- reported none (absent, never an empty array or 0). A chart of one sensor over time reads
--   SELECT ts, (t->>'celsius')::real FROM metrics, json_array_elements(temperatures) t
--   WHERE server_id = $1 AND t->>'label' = $2;
-- `ADD COLUMN` with no default is a catalogue change only, on plain PostgreSQL and on a
-- TimescaleDB hypertable with compressed chunks alike.
ALTER TABLE metrics ADD COLUMN temperatures json;
