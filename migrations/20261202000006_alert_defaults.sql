-- The default rules the alerter applies where `alert_rules` has no row, as the alerter itself
-- recorded them: the gateway shows these beside per-server overrides instead of guessing from
-- its own configuration. Every alerter replica records its defaults at start where none are
-- recorded, and each leader records its own at the start of its leadership term (overwriting),
-- so once a leader runs these are the ones in force. `recorded_by` names the replica
-- (`host:pid`). No row: no alerter has started yet, and the gateway shows the built-in defaults.
--
-- The CHECKs are the shared rule validation's ranges (flick_shared::alerting::validate); for
-- `offline`, for_secs is the silence that fires it and there are no thresholds. Thresholds are
-- double precision, as the alerter holds them, so a default of 80.1 is shown as 80.1.
CREATE TABLE alert_defaults (
    metric      text PRIMARY KEY CHECK (metric IN ('cpu', 'memory', 'disk', 'offline')),
    warning     double precision CHECK (warning BETWEEN 0 AND 100),
    critical    double precision CHECK (critical BETWEEN 0 AND 100),
    for_secs    integer NOT NULL CHECK (for_secs BETWEEN 0 AND 86400),
    margin      double precision NOT NULL CHECK (margin BETWEEN 0 AND 50),
    enabled     boolean NOT NULL DEFAULT true,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    recorded_by text NOT NULL,
    CHECK (warning IS NULL OR critical IS NULL OR warning <= critical),
    CHECK (metric <> 'offline' OR (warning IS NULL AND critical IS NULL AND for_secs >= 2))
);
