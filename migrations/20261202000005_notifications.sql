-- What reaches a person: channels of every kind with their routes, silences, acknowledged
-- incidents, and every notice sent with each attempt to send it.

ALTER TABLE notification_channels DROP CONSTRAINT IF EXISTS notification_channels_kind_check;
ALTER TABLE notification_channels ADD CONSTRAINT notification_channels_kind_check
    CHECK (kind IN ('webhook', 'standard_webhook', 'slack', 'discord', 'telegram', 'ntfy', 'email'));
ALTER TABLE notification_channels DROP CONSTRAINT IF EXISTS notification_channels_url_check;
ALTER TABLE notification_channels ADD CONSTRAINT notification_channels_url_check
    CHECK (url ~ '^(https?|smtps?)://');
ALTER TABLE notification_channels
    -- Non-secret settings of the kind (telegram chatId; email from, to, username; ntfy priority).
    ADD COLUMN settings jsonb NOT NULL DEFAULT '{}',
    -- Sealed like the other secrets: the telegram bot token, the SMTP password, an ntfy token.
    ADD COLUMN secret bytea,
    -- Routing: only critical transitions; only servers carrying one of these tags (none: all).
    ADD COLUMN critical_only boolean NOT NULL DEFAULT false,
    ADD COLUMN tags text[] NOT NULL DEFAULT '{}',
    -- A still-firing incident notified again this often; NULL: never.
    ADD COLUMN repeat_secs integer CHECK (repeat_secs BETWEEN 60 AND 604800);

-- Transitions waiting to be notified: written in the alerter's commit with the transition
-- itself, taken by the notifier in the transaction that records the notices they become.
CREATE TABLE notification_queue (
    seq        bigserial PRIMARY KEY,
    event_id   uuid NOT NULL UNIQUE,
    payload    text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Every notice, to one channel: the transitions it carried and how it ended. A notice is
-- recorded (status 'sending') before its first attempt, in the leader's fenced transaction; one
-- still 'sending' when its leader died is marked 'unknown' by the next and never sent again.
CREATE TABLE notifications (
    id           uuid PRIMARY KEY,
    channel_id   uuid REFERENCES notification_channels (id) ON DELETE SET NULL,
    channel_name text NOT NULL,
    summary      text NOT NULL,
    event_ids    uuid[] NOT NULL,
    alert_ids    uuid[] NOT NULL,
    server_ids   text[] NOT NULL,
    repeat       boolean NOT NULL DEFAULT false,
    test         boolean NOT NULL DEFAULT false,
    status       text NOT NULL CHECK (status IN ('sending', 'delivered', 'given_up', 'unknown')),
    epoch        bigint NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz
);
CREATE INDEX notifications_alert_ids_idx ON notifications USING gin (alert_ids);
CREATE INDEX notifications_channel_idx ON notifications (channel_id, created_at);
CREATE INDEX notifications_created_idx ON notifications (created_at);

CREATE TABLE notification_attempts (
    notification_id uuid NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    attempt         integer NOT NULL,
    at              timestamptz NOT NULL DEFAULT now(),
    outcome         text NOT NULL CHECK (outcome IN ('delivered', 'failed', 'refused')),
    latency_ms      double precision NOT NULL,
    error           text,
    PRIMARY KEY (notification_id, attempt)
);

-- "Send test" asked through the gateway, sent by the leading alerter.
CREATE TABLE notification_tests (
    id           uuid PRIMARY KEY,
    channel_id   uuid NOT NULL REFERENCES notification_channels (id) ON DELETE CASCADE,
    requested_by uuid REFERENCES users (id) ON DELETE SET NULL,
    requested_at timestamptz NOT NULL DEFAULT now(),
    taken_at     timestamptz
);

-- Silences: while one matches a transition (its server, all its tags, its metric), the
-- transition is recorded and published but not notified. A user's silence covers only the
-- servers that user owns (an admin's, every server).
CREATE TABLE silences (
    id         uuid PRIMARY KEY,
    owner_id   uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    server_id  text COLLATE "C",
    tags       text[] NOT NULL DEFAULT '{}',
    metric     text CHECK (metric IN ('cpu', 'memory', 'disk', 'offline')),
    starts_at  timestamptz NOT NULL,
    ends_at    timestamptz NOT NULL,
    comment    text NOT NULL DEFAULT '',
    author     text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK (ends_at > starts_at)
);
CREATE INDEX silences_ends_idx ON silences (ends_at);

-- Acknowledged incidents (a server and metric while any of its alerts fires): no repeats,
-- and no new page while it flaps, until it has stayed resolved for the alerter's
-- `ack_clear_secs`.
CREATE TABLE alert_acks (
    server_id   text COLLATE "C" NOT NULL,
    metric      text NOT NULL,
    acked_by    uuid REFERENCES users (id) ON DELETE SET NULL,
    author      text NOT NULL,
    comment     text NOT NULL DEFAULT '',
    acked_at    timestamptz NOT NULL DEFAULT now(),
    resolved_at timestamptz,
    PRIMARY KEY (server_id, metric)
);
