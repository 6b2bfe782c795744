-- A deleted server leaves a tombstone: its data (samples, aggregates, alerts, logs) is removed
-- in bounded batches in the background by the persister, and its id stays remembered, so that
-- another user cannot take the id over and read, or receive, what was someone else's.

CREATE TABLE server_tombstones (
    server_id  text COLLATE "C" PRIMARY KEY,
    -- The owner when it was deleted; NULL when it was a discovered server.
    owner_id   uuid,
    deleted_by uuid,
    deleted_at timestamptz NOT NULL DEFAULT now(),
    -- Set once a purge pass found nothing left (and the deletion is old enough that no late
    -- message, such as the alerter's resolution of the server's alerts, can still arrive).
    purged_at  timestamptz
);
CREATE INDEX server_tombstones_pending_idx ON server_tombstones (deleted_at) WHERE purged_at IS NULL;
