-- The optional temperature rule (the hottest sensor, °C): thresholds up to 150 for it, 100
-- for the percentages. Off unless the alerter's `temperature_enabled` or a server's rule says so.
ALTER TABLE alert_rules DROP CONSTRAINT alert_rules_metric_check;
ALTER TABLE alert_rules ADD CONSTRAINT alert_rules_metric_check
    CHECK (metric IN ('cpu', 'memory', 'disk', 'temperature', 'offline'));
ALTER TABLE alert_rules DROP CONSTRAINT alert_rules_warning_check;
ALTER TABLE alert_rules ADD CONSTRAINT alert_rules_warning_check
    CHECK (warning BETWEEN 0 AND CASE WHEN metric = 'temperature' THEN 150 ELSE 100 END);
ALTER TABLE alert_rules DROP CONSTRAINT alert_rules_critical_check;
ALTER TABLE alert_rules ADD CONSTRAINT alert_rules_critical_check
    CHECK (critical BETWEEN 0 AND CASE WHEN metric = 'temperature' THEN 150 ELSE 100 END);

ALTER TABLE alert_defaults DROP CONSTRAINT alert_defaults_metric_check;
ALTER TABLE alert_defaults ADD CONSTRAINT alert_defaults_metric_check
    CHECK (metric IN ('cpu', 'memory', 'disk', 'temperature', 'offline'));
ALTER TABLE alert_defaults DROP CONSTRAINT alert_defaults_warning_check;
ALTER TABLE alert_defaults ADD CONSTRAINT alert_defaults_warning_check
    CHECK (warning BETWEEN 0 AND CASE WHEN metric = 'temperature' THEN 150 ELSE 100 END);
ALTER TABLE alert_defaults DROP CONSTRAINT alert_defaults_critical_check;
ALTER TABLE alert_defaults ADD CONSTRAINT alert_defaults_critical_check
    CHECK (critical BETWEEN 0 AND CASE WHEN metric = 'temperature' THEN 150 ELSE 100 END);

ALTER TABLE silences DROP CONSTRAINT silences_metric_check;
ALTER TABLE silences ADD CONSTRAINT silences_metric_check CHECK (metric IN
    ('cpu', 'memory', 'disk', 'temperature', 'offline',
     'container_stopped', 'container_restarting', 'container_unhealthy'));
